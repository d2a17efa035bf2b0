"""``engine bench models``: the quick run writes JSON + Markdown + PNG with sound numbers."""

import json

import numpy as np
import onnxruntime
import pytest
from matplotlib import image as mpimg

from lensfind.bench.models import goal_check
from lensfind.bench.report import machine_slug
from lensfind.cli.main import main
from lensfind.runtime.shipped import shipped_models


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-models")
    assert main(["bench", "models", "--quick", "--quiet", "--results", str(out)]) == 0
    files = sorted(out.iterdir())
    return out, files


def test_writes_json_markdown_and_png(quick_run):
    _, files = quick_run
    assert [f.suffix for f in files] == [".json", ".md", ".png"]
    stem = files[0].stem
    assert stem.endswith("-models") and all(f.stem == stem for f in files)
    result = json.loads(files[0].read_text())
    assert stem == f"{result['date_utc'][:10]}-{result['machine_slug']}-models"
    png = mpimg.imread(files[2])
    assert png.ndim == 3 and png.shape[0] > 200 and png.shape[1] > 300
    md = files[1].read_text()
    assert "## des_y3 (shipped, 4x100x100): cutouts/s" in md
    assert "| ort-cpu | fp32 | host |" in md
    assert "## Goal" in md


def test_record_has_machine_versions_and_command(quick_run):
    result = json.loads(quick_run[1][0].read_text())
    assert result["benchmark"] == "models"
    assert {"cpu", "cpus", "gpus", "platform"} <= set(result["machine"])
    assert result["versions"]["onnxruntime"] == onnxruntime.__version__
    assert result["command"].startswith("engine bench models ") and "--quick" in result["command"]
    assert result["settings"]["batch_sizes"] == [1, 8]
    assert result["settings"]["repeats"] == 2
    assert [m["name"] for m in result["models"]] == shipped_models()  # des_y3, ou66


def test_every_runtime_precision_and_batch_is_measured_or_explained(quick_run):
    result = json.loads(quick_run[1][0].read_text())
    measured = {(r["runtime"], r["precision"], r["batch_size"]) for r in result["results"]}
    skipped = {(s.get("runtime"), s.get("precision"), s.get("batch_size"))
               for s in result["skipped"]}  # fmt: skip
    for runtime in result["settings"]["runtimes"]:
        for precision in ("fp32", "fp16", "int8"):
            for b in (1, 8):
                key = (runtime, precision, b)
                assert (key in measured) != (key in skipped), key
    assert {("ort-cpu", p, b) for p in ("fp32", "fp16", "int8") for b in (1, 8)} <= measured
    for r in result["results"]:
        t = r["cutouts_per_s"]
        assert len(t["runs"]) == 2 and t["min"] <= t["median"] <= t["max"]
        # throughput and latency are the same timings: b / t and 1000 t
        np.testing.assert_allclose(
            np.array(t["runs"]) * np.array(r["latency_ms"]["runs"]),
            1e3 * r["batch_size"], rtol=1e-3,
        )  # fmt: skip
    gpu_runtimes = {"torch-cuda", "ort-cuda", "ort-tensorrt", "tensorrt"}
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert {s["runtime"] for s in result["skipped"] if "model" not in s} >= {
            "ort-cuda", "ort-tensorrt"
        }  # fmt: skip
        assert not gpu_runtimes & set(result["settings"]["runtimes"])


def test_goal_compares_onnxruntime_with_torch_in_the_same_run(quick_run):
    result = json.loads(quick_run[1][0].read_text())
    if "torch-cpu" not in result["settings"]["runtimes"]:
        pytest.skip("torch not installed")
    goal = result["goal"]
    assert set(goal["ort_over_torch"]["des_y3"]) == {"1", "8"}
    med = {(r["runtime"], r["batch_size"]): r["cutouts_per_s"]["median"] for r in result["results"]
           if r["precision"] == "fp32" and r["model"] == "des_y3"}  # fmt: skip
    for b in (1, 8):
        assert goal["ort_over_torch"]["des_y3"][str(b)] == pytest.approx(
            med[("ort-cpu", b)] / med[("torch-cpu", b)], rel=1e-2
        )
    ratios = [v for per_model in goal["ort_over_torch"].values() for v in per_model.values()]
    assert goal["met"] == all(v >= 1 for v in ratios)


def test_goal_check_logic():
    def row(runtime, b, rate):
        return {"model": "m", "runtime": runtime, "precision": "fp32", "mode": "host",
                "batch_size": b, "cutouts_per_s": {"median": rate}}  # fmt: skip

    rows = [row("ort-cpu", 1, 300), row("torch-cpu", 1, 100), row("ort-cpu", 8, 90),
            row("torch-cpu", 8, 100)]  # fmt: skip
    goal = goal_check(rows, ["m"])
    assert goal["ort_over_torch"] == {"m": {"1": 3.0, "8": 0.9}}
    assert goal["met"] is False
    assert goal_check(rows[:2], ["m"])["met"] is True
    assert goal_check([], ["m"])["met"] is None  # nothing to compare


def test_machine_slug():
    cpu = {"cpu": "AMD EPYC 7B13", "cpus": 2, "gpus": []}
    assert machine_slug(cpu) == "amd-epyc-7b13-2cpu"
    gpu = {**cpu, "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}
    assert machine_slug(gpu) == "nvidia-h100-80gb-hbm3"


@pytest.mark.skipif(
    "CUDAExecutionProvider" in onnxruntime.get_available_providers(), reason="has CUDA"
)
def test_asking_for_a_missing_gpu_runtime_is_an_error(capsys, tmp_path):
    code = main(["bench", "models", "--quick", "--provider", "cuda", "--results", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: provider 'cuda': onnxruntime has")
    assert not list(tmp_path.iterdir())


@pytest.mark.gpu
def test_gpu_runtimes_keep_host_and_device_apart(tmp_path):
    assert main(["bench", "models", "--quick", "--quiet", "--provider", "all",
                 "--results", str(tmp_path)]) == 0  # fmt: skip
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    modes = {(r["runtime"], r["mode"]) for r in result["results"]}
    assert {("ort-cuda", "host"), ("ort-cuda", "device")} <= modes
