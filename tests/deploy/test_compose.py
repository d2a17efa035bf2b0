"""deploy/docker: compose.yaml parses, every file it references exists, the Dockerfiles copy
files that exist, and the services agree with each other (scheduler address, metrics port,
Prometheus and Grafana mounts) and with `engine scan --help`.

Docker itself is not needed (and not run): these are static checks of the files.
"""

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml


def _flags(args) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def _value(args, flag: str) -> str:
    return args[args.index(flag) + 1]


def _mounts(service) -> dict[str, str]:
    """Bind mounts of a service: container path -> host path (named volumes left out)."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = source
    return out


@pytest.fixture(scope="module")
def compose_dir(deploy_dir) -> Path:
    return deploy_dir / "docker"


@pytest.fixture(scope="module")
def compose(compose_dir):
    return yaml.safe_load((compose_dir / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def test_services(services):
    assert set(services) == {"dask-scheduler", "dask-worker", "scan", "prometheus", "grafana"}
    assert services["dask-worker"]["deploy"]["replicas"] == 2


def test_builds_point_at_existing_dockerfiles(services, compose_dir):
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == {"dask-scheduler", "dask-worker", "scan"}
    for name, build in built.items():
        context = (compose_dir / build["context"]).resolve()
        assert (context / "pyproject.toml").is_file(), name  # the repository root
        assert (context / build["dockerfile"]).is_file(), name
        assert build["dockerfile"].endswith("Dockerfile.cpu"), name
        assert services[name]["image"] == "lensfind:cpu", name


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_dockerfile_copies_existing_files(compose_dir, dockerfile):
    root = compose_dir.parents[1]
    text = (compose_dir / dockerfile).read_text()
    copies = re.findall(r"^COPY\s+(.+)$", text, flags=re.MULTILINE)
    assert copies
    for line in copies:
        *sources, _dest = line.split()
        for source in sources:
            assert (root / source).exists(), f"{dockerfile}: COPY {source}"
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, flags=re.MULTILINE), "non-root user"
    assert re.search(r'^ENTRYPOINT \["engine"\]$', text, flags=re.MULTILINE)
    if dockerfile.endswith("cpu"):  # CPU only: no extras (train = torch, gpu), no torch
        instructions = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        installs = [ln for ln in instructions if "pip install" in ln]
        assert installs and all("[" not in ln and "torch" not in ln for ln in installs)


def test_bind_mounts_exist(services, compose_dir):
    mounts = {name: _mounts(s) for name, s in services.items()}
    assert mounts["prometheus"] and mounts["grafana"]
    for name, by_target in mounts.items():
        for target, source in by_target.items():
            assert (compose_dir / source).exists(), f"{name}: {source} -> {target}"


def test_prometheus_finds_its_rules_and_the_scan(services, compose_dir):
    mounts = _mounts(services["prometheus"])
    config_target = _value(
        [a for c in services["prometheus"]["command"] for a in c.split("=", 1)], "--config.file"
    )
    config = yaml.safe_load((compose_dir / mounts[config_target]).read_text())
    for rule_file in config["rule_files"]:
        target = str(PurePosixPath(config_target).parent / rule_file)
        assert target in mounts, f"rule file {rule_file} is not mounted at {target}"
        assert (compose_dir / mounts[target]).is_file()
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lensfind"]
    (target,) = [t for sc in job["static_configs"] for t in sc["targets"]]
    host, port = target.split(":")
    scan = services["scan"]["command"]
    assert host == "scan"
    assert port == _value(scan, "--metrics-port")
    assert _value(scan, "--metrics-host") == "0.0.0.0"  # reachable from the prometheus container


def test_grafana_provisioning(services, compose_dir):
    mounts = _mounts(services["grafana"])
    dashboards = [t for t, s in mounts.items() if s.endswith("lensfind.json")]
    assert dashboards, "the dashboard is not mounted"
    provisioning = {t: compose_dir / s for t, s in mounts.items() if "/provisioning/" in t}
    providers = yaml.safe_load(
        (provisioning["/etc/grafana/provisioning/dashboards"] / "lensfind.yaml").read_text()
    )["providers"]
    paths = {p["options"]["path"] for p in providers}
    assert {str(PurePosixPath(t).parent) for t in dashboards} <= paths
    sources = yaml.safe_load(
        (provisioning["/etc/grafana/provisioning/datasources"] / "prometheus.yaml").read_text()
    )["datasources"]
    (source,) = sources
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service
    env = services["grafana"]["environment"]
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] in dashboards


def test_workers_and_scan_share_the_scheduler_and_data(services):
    scheduler = services["dask-scheduler"]
    port = _value(scheduler["command"], "--port")
    address = f"tcp://dask-scheduler:{port}"
    assert services["dask-worker"]["command"][0] == address
    assert _value(services["scan"]["command"], "--scheduler") == address
    data = {v for v in services["scan"]["volumes"] if v.endswith(":/data")}
    assert data and data <= set(services["dask-worker"]["volumes"])
    assert _value(services["scan"]["command"], "--out").startswith("/data/")


def test_scan_command_uses_accepted_flags(services, scan_flags):
    command = services["scan"]["command"]
    assert command[0] == "scan"
    assert sorted(_flags(command) - scan_flags) == []
    assert {"--scheduler", "--metrics-port", "--metrics-host"} <= _flags(command)
