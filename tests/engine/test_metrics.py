"""Prometheus metrics of a scan: exact names, agreement with summary.json, a real
Prometheus server scraping a running scan, a real Pushgateway, quarantine counters."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import generate_latest

from lensfind.engine import scan
from lensfind.engine.dispatch import QUARANTINE_NAME
from lensfind.engine.metrics import METRIC_NAMES, ScanMetrics
from lensfind.engine.scan import EXIT_WITH_QUARANTINE, run_scan
from lensfind.engine.shard import process_shard
from lensfind.testing import free_port, make_test_region, metric_families


def _server_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it (apt-get install {name})")
        pytest.skip(f"{name} not installed (apt-get install {name})")
    return path


def _value(fam, suffix: str = "", **labels: str) -> float:
    return sum(
        s.value
        for s in fam.samples
        if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def test_exact_metric_names_and_counters_match_the_summary(region, scan_config, tmp_path):
    result = run_scan(scan_config(region, tmp_path / "run"))
    fams = metric_families(generate_latest(result.metrics.registry).decode())
    assert set(fams) == METRIC_NAMES
    s = result.summary
    objects = fams["lensfind_objects_total"]
    for status in ("scored", "skipped", "failed"):
        assert _value(objects, "_total", status=status) == s[f"n_{status}"], status
    assert _value(fams["lensfind_cutouts_scored_total"]) == s["n_scored"]
    assert _value(fams["lensfind_shards_committed_total"]) == s["n_shards"]
    assert _value(fams["lensfind_scan_objects"]) == s["n_objects"]
    assert _value(fams["lensfind_shards_in_flight"]) == 0
    # stage histograms: one observation per shard that reached the stage
    assert _value(fams["lensfind_stage_duration_seconds"], "_count", stage="write") == s["n_shards"]
    # model calls score the survey's cutouts and the injected-lens copies alike
    n_injected = s["selection_function"]["n_injected_scored"]
    assert _value(fams["lensfind_score_batch_size"], "_sum") == s["n_scored"] + n_injected
    # reasons are classes, never object ids
    reasons = {smp.labels["reason"] for smp in objects.samples}
    assert reasons <= {"", "edge", "masked", "off-tile", "tile unreadable"}, reasons
    # planted lenses: recovered + missed = lenses that were scored
    truth = pq.read_table(region / "truth.parquet").to_pydict()
    lens_ids = {i for i, lens in zip(truth["object_id"], truth["is_lens"], strict=True) if lens}
    rows = [pq.read_table(p).to_pylist() for p in (result.run_dir / "scores").glob("*.parquet")]
    scored = [
        r for rs in rows for r in rs if r["status"] == "scored" and r["object_id"] in lens_ids
    ]
    hit = sum(r["score"] >= s["threshold"] for r in scored)
    injected = fams["lensfind_injected_lenses_total"]
    assert _value(injected, "_total", outcome="recovered") == hit
    assert _value(injected, "_total", outcome="missed") == len(scored) - hit
    info = fams["lensfind_build_info"].samples[0].labels
    assert info["model_sha256"] == s["model_sha256"] and info["survey"] == "des_y3"


def test_metrics_server_binds_to_loopback_by_default():
    metrics = ScanMetrics("des_y3", "0" * 64)
    port = metrics.serve(0)
    try:
        assert metrics._server.server_address[0] == "127.0.0.1"
        text = _get(f"http://127.0.0.1:{port}/metrics").decode()
        assert "lensfind_build_info" in text
    finally:
        metrics.close()


def test_repeated_crashes_quarantine_the_shard(region, scan_config, tmp_path, monkeypatch):
    calls: dict[str, int] = {}

    def flaky(task):
        calls[task.shard_id] = calls.get(task.shard_id, 0) + 1
        if task.shard_id.endswith("-0000") and task.tile.endswith("a"):
            raise RuntimeError("worker lost")  # always
        if task.shard_id.endswith("-0001") and calls[task.shard_id] == 1:
            raise RuntimeError("transient")  # once
        return process_shard(task)

    monkeypatch.setattr(scan, "process_shard", flaky)
    result = run_scan(scan_config(region, tmp_path / "run", shard_attempts=3))
    bad = [k for k in calls if k.endswith("-0000") and calls[k] == 3]
    assert len(bad) == 1, calls
    lines = [json.loads(x) for x in (result.run_dir / QUARANTINE_NAME).read_text().splitlines()]
    assert [(q["shard_id"], q["attempts"]) for q in lines] == [(bad[0], 3)]
    assert "worker lost" in lines[0]["error"]
    assert result.summary["n_shards_quarantined"] == 1
    assert result.exit_code == EXIT_WITH_QUARANTINE
    rows = pq.read_table(result.run_dir / "scores" / f"{bad[0]}.parquet").to_pylist()
    assert rows and all(r["status"] == "failed" for r in rows)
    assert all(r["reason"].startswith("quarantined: task crashed 3 time(s)") for r in rows)
    fams = metric_families(generate_latest(result.metrics.registry).decode())
    n_transient = sum(1 for k in calls if k.endswith("-0001"))
    assert _value(fams["lensfind_shard_failures_total"]) == 3 + n_transient
    assert _value(fams["lensfind_shards_quarantined_total"]) == 1
    assert _value(fams["lensfind_objects_total"], "_total", reason="quarantined") == len(rows)


def test_pushgateway_receives_the_final_counters(region, scan_config, tmp_path):
    binary = _server_binary("prometheus-pushgateway")
    port = free_port()
    gw = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until(lambda: _get(f"http://127.0.0.1:{port}/-/ready"), 20)
        url = f"http://127.0.0.1:{port}"
        result = run_scan(scan_config(region, tmp_path / "pushed", pushgateway=url))
        fams = metric_families(_get(f"{url}/metrics").decode())
        pushed = fams["lensfind_cutouts_scored_total"]
        assert _value(pushed, job="lensfind_scan", run="pushed") == result.summary["n_scored"]
    finally:
        gw.terminate()
        gw.wait(10)


def _wait_until(fn, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = fn()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        time.sleep(0.2)


def test_real_prometheus_scrapes_a_running_scan(model_dir, tmp_path):
    """Debian's prometheus scrapes `engine scan --metrics-port` and sees counters rise."""
    binary = _server_binary("prometheus")
    # ~550 objects, one per shard: a few seconds of scan, several scrapes at 250 ms
    data = make_test_region(tmp_path / "region", tiles_ra=2, tiles_dec=1, tile_px=2000)
    scan_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 250ms, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: lensfind\n    static_configs: [{{targets: ['127.0.0.1:{scan_port}']}}]\n"
    )
    prom = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    scan = None
    try:
        _wait_until(lambda: _get(f"http://127.0.0.1:{prom_port}/-/ready"), 30)
        scan = subprocess.Popen(
            [sys.executable, "-m", "lensfind", "scan", "--data", str(data), "--model",
             str(model_dir), "--out", str(tmp_path / "run"), "--workers", "0",
             "--shard-size", "1", "--metrics-port", str(scan_port), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

        def scored() -> float | None:
            q = urllib.parse.quote("lensfind_cutouts_scored_total")
            body = json.loads(_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={q}"))
            res = body["data"]["result"]
            return float(res[0]["value"][1]) if res else None

        seen = []
        deadline = time.monotonic() + 60
        while scan.poll() is None and time.monotonic() < deadline:
            value = scored()
            if value is not None and (not seen or value != seen[-1]):
                seen.append(value)
            time.sleep(0.5)
        assert scan.wait(60) == 0, scan.stderr.read().decode() if scan.stderr else ""
        assert len(seen) >= 2, f"Prometheus saw {seen}: the scan finished before two scrapes"
        assert all(np.diff(seen) > 0), seen
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert seen[-1] <= summary["n_scored"]
    finally:
        if scan is not None and scan.poll() is None:
            scan.kill()
        prom.terminate()
        prom.wait(20)
