"""The documented model-making commands, on a tiny scale, through the CLI ``main``:

simulate -> train -> export -> survey make -> scan with the new model.
"""

import json

import numpy as np
import pytest
import zarr

from lensfind.cli.main import main
from lensfind.hashing import sha256_of
from lensfind.runtime.card import load_card
from lensfind.testing import run_cli

pytest.importorskip("torch")
pytest.importorskip("onnx")

# `engine export` uses torch's legacy TorchScript exporter (dynamo=False), which
# torch >= 2.9 flags with DeprecationWarnings; the pytest config turns warnings into errors.


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("pipeline")
    steps: dict[str, tuple[int, str]] = {}
    steps["simulate_train"] = run_cli(
        "simulate", "--survey", "des_y3", "--n", "64", "--seed", "1",
        "--out", str(tmp / "A.zarr"), "--quiet",
    )  # fmt: skip
    steps["simulate_test"] = run_cli(
        "simulate", "--survey", "des_y3", "--n", "64", "--seed", "2",
        "--out", str(tmp / "B.zarr"), "--quiet",
    )  # fmt: skip
    steps["train"] = run_cli(
        "train", "--train-set", str(tmp / "A.zarr"), "--test-set", str(tmp / "B.zarr"),
        "--out", str(tmp / "ckpt"), "--epochs", "1", "--batch-size", "32", "--threads", "1",
        "--quiet",
    )  # fmt: skip
    steps["export"] = run_cli(
        "export", "--checkpoint", str(tmp / "ckpt" / "checkpoint.pt"),
        "--out", str(tmp / "model"), "--test-set", str(tmp / "B.zarr"), "--quiet",
    )  # fmt: skip
    steps["survey_make"] = run_cli(
        "survey", "make", "--survey", "des_y3", "--out", str(tmp / "region"),
        "--tiles-ra", "1", "--tiles-dec", "1", "--tile-px", "400", "--quiet",
    )  # fmt: skip
    steps["scan"] = run_cli(
        "scan", "--data", str(tmp / "region"), "--model", str(tmp / "model"),
        "--out", str(tmp / "run"), "--workers", "0", "--quiet",
    )  # fmt: skip
    return {"tmp": tmp, "steps": steps}


def test_every_step_exits_0(pipeline):
    failed = {k: v for k, v in pipeline["steps"].items() if v[0] != 0}
    assert not failed, failed


def test_step_outputs(pipeline):
    tmp, steps = pipeline["tmp"], pipeline["steps"]
    assert (tmp / "A.zarr").is_dir() and not (tmp / "A.zarr.tmp").exists()
    assert f"wrote 64 objects to {tmp / 'A.zarr'}" in steps["simulate_train"][1]
    assert (tmp / "ckpt" / "checkpoint.pt").is_file()
    assert (tmp / "ckpt" / "train_report.json").is_file()
    assert "best validation AUROC" in steps["train"][1]
    assert "held-out:" in steps["train"][1]
    assert "parity max |diff|" in steps["export"][1]
    assert "held-out (ONNX Runtime):" in steps["export"][1]
    for name in ("catalog.parquet", "truth.parquet", "region.json"):
        assert (tmp / "region" / name).is_file(), name
    assert len(list((tmp / "region").glob("*_[griz].fits"))) == 4


def test_exported_card(pipeline):
    tmp = pipeline["tmp"]
    card = load_card(tmp / "model")
    assert card.sha256 == sha256_of(tmp / "model" / "model.onnx")
    assert card.raw["test_metrics"]["n"] == 64
    assert card.raw["test_set"]["seed"] == 2
    assert card.raw["training"]["train_set"]["seed"] == 1
    assert card.raw["parity"]["max_abs_diff"] <= 1e-5


def test_scan_run_directory_is_complete(pipeline):
    tmp = pipeline["tmp"]
    run = tmp / "run"
    code, out = pipeline["steps"]["scan"]
    assert code == 0
    assert f"run directory: {run}" in out
    for name in (
        "summary.json",
        "candidates.parquet",
        "candidates.fits",
        "manifest.jsonl",
        "plan.json",
    ):
        assert (run / name).is_file(), name
    assert list((run / "scores").glob("*.parquet"))
    summary = json.loads((run / "summary.json").read_text())
    card = load_card(tmp / "model")
    assert summary["model_sha256"] == card.sha256
    assert summary["model"] == card.name
    assert summary["embedded_default"] is False
    assert summary["data_dir"] == str(tmp / "region")
    assert summary["n_objects"] == 16  # one 400 px tile, 100 px grid
    assert summary["n_scored"] + summary["n_skipped"] + summary["n_failed"] == 16
    assert summary["n_failed"] == 0
    for line in (run / "manifest.jsonl").read_text().splitlines():
        assert json.loads(line)["model_sha256"] == card.sha256


def test_simulate_is_deterministic(pipeline):
    tmp = pipeline["tmp"]
    code, _ = run_cli(
        "simulate", "--survey", "des_y3", "--n", "64", "--seed", "1",
        "--out", str(tmp / "A2.zarr"), "--quiet",
    )  # fmt: skip
    assert code == 0
    a = zarr.open_group(str(tmp / "A.zarr"), mode="r")
    b = zarr.open_group(str(tmp / "A2.zarr"), mode="r")
    assert np.array_equal(a["images"][:], b["images"][:])
    assert np.array_equal(a["label"][:], b["label"][:])
    keys = sorted(a["truth"].array_keys())
    assert keys == sorted(b["truth"].array_keys())
    for key in keys:
        x, y = a[f"truth/{key}"][:], b[f"truth/{key}"][:]
        nan_ok = np.issubdtype(x.dtype, np.floating)  # non-lenses have NaN lens parameters
        assert np.array_equal(x, y, equal_nan=nan_ok), key
    # a different seed gives a different set
    c = zarr.open_group(str(tmp / "B.zarr"), mode="r")
    assert not np.array_equal(a["images"][:], c["images"][:])


def test_doctor(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out
    assert "CPUExecutionProvider" in out
    assert "des_y3" in out  # shipped models


def test_train_on_a_tiny_set_fails_cleanly(tmp_path, capsys):
    assert (
        run_cli("simulate", "--n", "10", "--seed", "0", "--out", str(tmp_path / "s.zarr"))[0] == 0
    )
    capsys.readouterr()
    code, _ = run_cli(
        "train", "--train-set", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "ckpt"),
        "--epochs", "1", "--batch-size", "8", "--threads", "1", "--quiet",
    )  # fmt: skip
    if code != 0:  # either train anyway, or refuse with a clear message naming the set
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith("error: ") and "s.zarr" in err, err
