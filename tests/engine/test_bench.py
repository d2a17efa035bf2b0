"""``engine bench scan``: both throughputs measured in one run, written as JSON."""

import json

from lensfind.engine.cli import main


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
    assert r["n_cutouts"] > 0 and r["config"]["model_sha256"]
    assert set(r["stage_cpu_seconds_per_cutout"]) == {
        "read", "cutout", "store", "inject", "score", "write"
    }  # fmt: skip
    inj = r["injection"]
    assert inj["inject_rate"] == 0.5 and inj["n_injected"] > 0
    assert len(inj["end_to_end_cutouts_per_s"]["runs"]) == 2
    assert inj["slowdown"] == e2e["median"] / inj["end_to_end_cutouts_per_s"]["median"]
    assert inj["budget"] == 1.5 * 1.1
    assert inj["within_budget"] == (inj["slowdown"] <= inj["budget"])
    assert {"numpy", "onnxruntime", "lensfind"} <= set(r["versions"])
    assert "end_to_end_over_model" in capsys.readouterr().out
