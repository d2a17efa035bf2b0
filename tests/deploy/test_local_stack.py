"""The one-command local monitoring stack (deploy/local/monitor-scan.sh), run as written."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lensfind.testing import free_port, make_test_model, make_test_region

ROOT = Path(__file__).resolve().parents[2]


def test_monitor_scan_runs_a_scan_under_prometheus_and_plots_it(tmp_path):
    if shutil.which("prometheus") is None or shutil.which("engine") is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus (apt-get install prometheus) and engine must be on PATH")
        pytest.skip("needs Debian's prometheus and lensfind's engine on PATH")
    region = make_test_region(tmp_path / "region", tile_px=800)
    model = make_test_model(tmp_path / "model")
    env = dict(
        os.environ,
        STATE_DIR=str(tmp_path / "state"),
        SCRAPE="1s",
        PROM_PORT=str(free_port()),
        METRICS_PORT=str(free_port()),
    )
    (tmp_path / "state").mkdir()
    proc = subprocess.run(
        ["bash", str(ROOT / "deploy/local/monitor-scan.sh"), "--data", str(region), "--model",
         str(model), "--out", str(tmp_path / "run"), "--workers", "0", "--shard-size", "2",
         "--quiet"],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Prometheus: http://127.0.0.1:" in proc.stdout
    assert (tmp_path / "run" / "summary.json").is_file()
    png = tmp_path / "state" / "scan-metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # four panels with data, not an empty figure
