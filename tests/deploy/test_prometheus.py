"""deploy/prometheus: promtool accepts the scrape configs and the alert rules, and the rules'
unit tests pass and cover every alert both firing and not firing."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

FILES = {
    "config": ["prometheus.yml", "prometheus.compose.yml"],
    "rules": ["alerts.yml"],
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        msg = "promtool not found (Debian/Ubuntu: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "kind, name", [(kind, name) for kind, names in FILES.items() for name in names]
)
def test_promtool_check(deploy_dir, kind, name):
    proc = _run("check", kind, name, cwd=deploy_dir / "prometheus")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_test_rules(deploy_dir):
    proc = _run("test", "rules", "alerts_test.yml", cwd=deploy_dir / "prometheus")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_configs_load_the_alert_rules(deploy_dir):
    for name in FILES["config"]:
        config = yaml.safe_load((deploy_dir / "prometheus" / name).read_text())
        assert config["rule_files"] == ["alerts.yml"], name
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert jobs["lensfind"]["scrape_interval"] == "5s", name


def test_rule_tests_fire_and_hold_every_alert(deploy_dir):
    rules = yaml.safe_load((deploy_dir / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {
        "LensfindNoShardCommitted",
        "LensfindFailureRatioHigh",
        "LensfindShardsQuarantined",
        "LensfindGPUIdleWhileWorkQueued",
    }
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"warning", "critical"}, r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]

    tests = yaml.safe_load((deploy_dir / "prometheus" / "alerts_test.yml").read_text())
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    held = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert fired == alerts, "alerts with no test that fires them"
    assert held == alerts, "alerts with no test in which they stay silent"


def test_dashboard_queries_parse(deploy_dir, tmp_path):
    """Every dashboard query is valid PromQL (checked as recording rules by promtool)."""
    dashboard = json.loads((deploy_dir / "grafana" / "lensfind.json").read_text())
    variables = {"$__rate_interval": "20s", "$instance": ".*", "${datasource}": "x"}
    exprs = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']}"
            exprs.append(expr)
    assert len(exprs) >= 20
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = _run("check", "rules", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout + proc.stderr
