"""``engine bench scan``: both throughputs measured in one run, written as JSON."""

import json

import numpy as np
import pytest

from lensfind.cli.main import main


def test_bench_scan_writes_the_ratio(region, model_dir, tmp_path, capsys):
    results = tmp_path / "results"
    code = main(["bench", "scan", "--data", str(region), "--model", str(model_dir),
                 "--workers", "0", "--shard-size", "4", "--repeats", "2", "--results",
                 str(results), "--inject-rate", "0.5", "--quiet"])  # fmt: skip
    assert code == 0
    (path,) = results.glob("scan-des_y3-*cutouts-*.json")
    r = json.loads(path.read_text())
    model = r["model_cutouts_per_s"]
    e2e = r["end_to_end_cutouts_per_s"]
    assert len(model["runs"]) == len(e2e["runs"]) == 2
    assert all(v > 0 for v in model["runs"] + e2e["runs"])
    assert r["end_to_end_over_model"] == e2e["median"] / model["median"]
    assert r["end_to_end_over_model_per_repeat"] == [
        e / b for e, b in zip(e2e["runs"], model["runs"], strict=True)
    ]
    assert r["end_to_end_over_model_spread"] == [
        min(r["end_to_end_over_model_per_repeat"]),
        max(r["end_to_end_over_model_per_repeat"]),
    ]
    assert r["valid"] == (max(r["end_to_end_over_model_per_repeat"]) <= 1.05)
    assert r["validity"].startswith("valid" if r["valid"] else "INVALID")
    assert len(r["fixed_seconds"]["runs"]) == 2 and r["fixed_seconds"]["median"] > 0
    assert len(r["load_average"]["before"]) == len(r["load_average"]["after"]) == 3
    assert "in-process" in model["how"]  # the bare model ran on the scan's own executor
    assert r["driver_cpu_fraction"]["median"] >= 0
    assert r["n_cutouts"] > 0 and r["config"]["model_sha256"]
    assert set(r["stage_cpu_seconds_per_cutout"]) == {
        "read", "cutout", "store", "inject", "score", "write"
    }  # fmt: skip
    inj = r["injection"]
    assert inj["inject_rate"] == 0.5 and inj["n_injected"] > 0
    assert len(inj["end_to_end_cutouts_per_s"]["runs"]) == 2
    assert inj["slowdown"] == e2e["median"] / inj["end_to_end_cutouts_per_s"]["median"]
    assert inj["injected_fraction"] == inj["n_injected"] / r["n_cutouts"]
    assert inj["budget"] == pytest.approx((1 + inj["injected_fraction"]) * 1.1)
    assert inj["within_budget"] == (inj["slowdown"] <= inj["budget"])
    assert {"numpy", "onnxruntime", "lensfind"} <= set(r["versions"])
    assert "end_to_end_over_model" in capsys.readouterr().out


def test_a_rerun_adds_a_result_instead_of_overwriting(tmp_path):
    from lensfind.bench.scan import write_result

    result = {"benchmark": "scan", "date_utc": "2026-12-06T10:00:00+00:00", "n_cutouts": 7,
              "config": {"survey": "des_y3", "store_dtype": "float16",
                         "store_compression": "none"}}  # fmt: skip
    paths = [write_result({**result, "run": k}, tmp_path) for k in range(3)]
    assert [p.name for p in paths] == [
        "scan-des_y3-7cutouts-float16-none-2026-12-06.json",
        "scan-des_y3-7cutouts-float16-none-2026-12-06-2.json",
        "scan-des_y3-7cutouts-float16-none-2026-12-06-3.json",
    ]
    assert [json.loads(p.read_text())["run"] for p in paths] == [0, 1, 2]


def test_bench_score_measures_memory_per_size_in_fresh_processes(model_dir, tmp_path, capsys):
    results = tmp_path / "results"
    code = main(["bench", "score", "--sizes", "300,700", "--model", str(model_dir), "--results",
                 str(results), "--quiet"])  # fmt: skip
    assert code == 0
    (path,) = results.glob("score-des_y3-700cutouts-*.json")
    r = json.loads(path.read_text())
    assert [x["n_cutouts"] for x in r["runs"]] == [300, 700]
    assert [x["n_scored"] for x in r["runs"]] == [300, 700]
    peaks = [x["peak_rss_mb"] for x in r["runs"]]
    assert all(p > 50 for p in peaks)
    assert r["peak_rss_growth"] == max(peaks) / min(peaks) - 1
    proj = r["projection_1e9"]
    assert proj["cpu_core_hours"] == 1e9 / r["runs"][-1]["cutouts_per_s"] / 3600
    assert proj["gpu_hours"] is None and proj["assumptions"]
    assert "peak RSS growth" in capsys.readouterr().out


def test_synthetic_store_has_distinct_ids_and_shares_image_bytes(tmp_path):
    from lensfind.bench.score import make_synthetic_store
    from lensfind.engine.store import list_shards, read_shard_cutouts

    store = make_synthetic_store(tmp_path, 600, shard_size=256)
    shards = list_shards(store)
    ids = np.concatenate([read_shard_cutouts(store, s)[0] for s in shards])
    assert len(shards) == 3 and sorted(ids.tolist()) == list(range(600))
    first, second = (read_shard_cutouts(store, s)[1] for s in shards[:2])
    np.testing.assert_array_equal(first, second)
    linked = [p for p in (store / shards[1] / "images").rglob("*") if p.is_file()]
    assert all(p.stat().st_nlink == 2 for p in linked)  # hard links: no extra disk


def test_gpu_rates_from_a_bench_models_result_give_gpu_hours(tmp_path):
    from lensfind.bench.score import gpu_rates, projection

    def row(runtime, precision, batch, rate, model="des_y3"):
        return {"model": model, "runtime": runtime, "precision": precision,
                "batch_size": batch, "cutouts_per_s": {"median": rate}}  # fmt: skip

    rows = [row("ort-cpu", "fp32", 256, 1500.0), row("ort-cuda", "fp32", 64, 20000.0),
            row("ort-cuda", "fp32", 256, 36000.0), row("tensorrt", "fp16", 256, 90000.0),
            row("tensorrt", "fp16", 256, 1e9, model="other")]  # fmt: skip
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"results": rows}))
    rates = gpu_rates(path, "des_y3")
    assert rates == {"ort-cuda-fp32": 36000.0, "tensorrt-fp16": 90000.0}
    proj = projection(900.0, 2, rates)
    assert proj["gpu_hours"]["tensorrt-fp16"] == pytest.approx(1e9 / 90000 / 3600)
    assert proj["cpu_cores_per_gpu"]["ort-cuda-fp32"] == pytest.approx(40.0)
    assert any("GPU-hours: one GPU" in a for a in proj["assumptions"])
    assert projection(900.0, 2, None)["gpu_hours"] is None


def test_gpu_rates_of_a_file_that_is_not_a_result_is_an_error(tmp_path):
    from lensfind.bench.score import gpu_rates
    from lensfind.errors import ConfigError

    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match=r"x\.json"):
        gpu_rates(path, "des_y3")
