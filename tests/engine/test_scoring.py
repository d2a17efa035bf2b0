"""``--provider`` for ``engine scan`` / ``engine score``: config, CLI errors, workers."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from lensfind.cli.main import main
from lensfind.engine import scoring
from lensfind.engine.config import ScanConfig, ScoreConfig, build_config
from lensfind.engine.scoring import check_provider, score_batches, scorer_for
from lensfind.errors import ConfigError
from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import resolve_provider

AVAILABLE = onnxruntime.get_available_providers()
no_cuda = pytest.mark.skipif(
    "CUDAExecutionProvider" in AVAILABLE, reason="this onnxruntime has CUDA"
)
MESSAGE = f"error: provider 'cuda' requested but onnxruntime has {AVAILABLE}; install lensfind[gpu]"


def test_provider_config_default_env_and_validation():
    assert ScanConfig().provider == "auto"
    env = {"LENSFIND_SCAN__PROVIDER": "cpu"}
    assert build_config(ScanConfig, {}, env).provider == "cpu"
    assert build_config(ScanConfig, {"provider": "tensorrt"}, env).provider == "tensorrt"
    score_env = {"LENSFIND_SCORE__PROVIDER": "cuda"}
    cfg = build_config(ScoreConfig, {"cutouts": Path("s.zarr"), "model": "m"}, score_env)
    assert cfg.provider == "cuda"
    with pytest.raises(ConfigError, match="provider must be one of auto, cpu, cuda, tensorrt"):
        ScanConfig(provider="gpu")


@no_cuda
def test_scan_with_cuda_exits_2_before_any_work(capsys, tmp_path):
    cache = Path(os.environ["LENSFIND_CACHE"])
    before = sorted(cache.rglob("*")) if cache.exists() else []
    code = main(["scan", "--provider", "cuda", "--out", str(tmp_path / "run"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [MESSAGE]
    assert captured.out == ""
    assert not (tmp_path / "run").exists()
    after = sorted(cache.rglob("*")) if cache.exists() else []
    assert after == before  # no embedded region generated


@no_cuda
def test_provider_from_the_environment_fails_the_same_way(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LENSFIND_SCAN__PROVIDER", "cuda")
    assert main(["scan", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines() == [MESSAGE]


@no_cuda
def test_score_with_tensorrt_exits_2(capsys, tmp_path):
    args = ["score", "--cutouts", str(tmp_path), "--model", "des_y3",
            "--provider", "tensorrt", "--out", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: provider 'tensorrt' requested but onnxruntime has {AVAILABLE}; "
                   "install lensfind[gpu]"]  # fmt: skip


def test_unknown_provider_is_a_usage_error(capsys):
    assert main(["scan", "--provider", "gpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice 'gpu'" in err and "(known: auto, cpu, cuda, tensorrt)" in err


def test_scan_on_the_cpu_records_the_provider(capsys, region, model_dir, tmp_path):
    out = tmp_path / "run"
    args = ["scan", "--data", str(region), "--model", str(model_dir), "--out", str(out),
            "--workers", "0", "--shard-size", "16", "--inject-rate", "0", "--provider", "cpu",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provider"] == "cpu"
    assert summary["n_scored"] > 0 and summary["n_failed"] == 0


def test_remote_workers_check_the_provider_themselves():
    assert check_provider(ScanConfig(scheduler="tcp://127.0.0.1:1", provider="cuda")) is None
    assert check_provider(ScanConfig(provider="cpu")) == "cpu"
    assert check_provider(ScanConfig()) == resolve_provider("auto")


def test_one_session_per_model_and_provider(model_dir, monkeypatch):
    monkeypatch.setattr(scoring, "_SCORERS", {})
    sha = load_card(model_dir).sha256
    a = scorer_for(str(model_dir), sha, "cpu")
    assert scorer_for(str(model_dir), sha, "cpu", batch_size=64) is a
    b = scorer_for(str(model_dir), sha, "auto")
    assert b is not a
    assert len(scoring._SCORERS) == 2
    assert a.settings.threads == 1  # one thread per worker process by default


def test_session_threads_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setattr(scoring, "_SCORERS", {})
    monkeypatch.setenv("LENSFIND_ORT__THREADS", "2")
    sha = load_card(model_dir).sha256
    assert scorer_for(str(model_dir), sha, "cpu").settings.threads == 2


@dataclass(frozen=True)
class _Work:
    model_dir: str
    model_sha256: str
    provider: str
    batch_size: int = 4
    bands: tuple[str, ...] = ()


@no_cuda
def test_a_worker_without_the_provider_fails_its_objects_loudly(model_dir, monkeypatch):
    monkeypatch.setattr(scoring, "_SCORERS", {})
    work = _Work(str(model_dir), load_card(model_dir).sha256, "cuda")
    n = 6
    status = np.full(n, "failed", dtype=object)
    reason = np.full(n, "", dtype=object)
    score = np.full(n, np.nan, dtype=np.float32)
    stamps = np.zeros((n, 4, 100, 100), np.float32)
    assert score_batches(work, stamps, np.arange(n), status, reason, score) == []
    assert set(status) == {"failed"}
    assert set(reason) == {f"model unusable: {MESSAGE.removeprefix('error: ')}"}


def test_doctor_says_whether_the_gpu_path_is_used(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for word in ("numpy", "onnxruntime", "tensorrt", "torch", "CUDA", "GPUs:",
                 "ONNX Runtime providers: ", "native TensorRT scorer:"):  # fmt: skip
        assert word in out, word
    auto = resolve_provider("auto")
    line = next(x for x in out.splitlines() if x.startswith("GPU scoring path:"))
    assert f"--provider auto -> {auto}" in line
    used = "not used" if auto == "cpu" else "used"
    assert line.startswith(f"GPU scoring path: {used};")
