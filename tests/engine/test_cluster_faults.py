"""A scan on a separately started Dask cluster (scheduler + two worker processes on
loopback) survives one worker being killed mid-scan, with the same catalogue."""

import os
import signal
import subprocess
import sys
import time

import pytest

from lensfind.engine.scan import run_scan
from lensfind.testing import free_port, make_test_region


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def test_killing_a_worker_mid_scan_gives_the_same_catalogue(model_dir, scan_config, tmp_path):
    region = make_test_region(tmp_path / "region", tile_px=900)
    reference = run_scan(scan_config(region, tmp_path / "reference", shard_size=2))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                      "--no-dashboard")  # fmt: skip
    worker_args = ("worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1")
    workers = [_dask(*worker_args, "--no-dashboard") for _ in range(2)]
    run = tmp_path / "run"
    scan = None
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        with Client(address, timeout=60) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "the two workers never joined"
                time.sleep(0.2)
        scan = subprocess.Popen(
            [sys.executable, "-m", "lensfind", "scan", "--data", str(region), "--model",
             str(model_dir), "--out", str(run), "--scheduler", address, "--shard-size", "2",
             "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        manifest = run / "manifest.jsonl"
        deadline = time.monotonic() + 120
        while not (manifest.exists() and len(manifest.read_text().splitlines()) >= 3):
            assert scan.poll() is None, f"scan ended early: {scan.communicate()}"
            assert time.monotonic() < deadline, "no shard committed in time"
            time.sleep(0.05)
        assert scan.poll() is None, "the scan finished before the kill: make it longer"
        os.killpg(workers[0].pid, signal.SIGKILL)
        _, err = scan.communicate(timeout=180)
        assert scan.returncode == 0, err
        n_shards = len(manifest.read_text().splitlines())
        assert n_shards == reference.summary["n_shards"], "every shard committed exactly once"
        assert (run / "candidates.parquet").read_bytes() == (
            reference.run_dir / "candidates.parquet"
        ).read_bytes()
    finally:
        for proc in [scan, *workers, scheduler]:
            if proc is not None and proc.poll() is None:
                if proc is scan:
                    proc.kill()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Loopback traffic only."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
