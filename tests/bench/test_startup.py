"""``engine bench startup`` and its baseline, the plain astropy + ONNX Runtime loop."""

import json

import numpy as np
import pyarrow.parquet as pq

from lensfind.bench import plain_loop
from lensfind.cli.main import main
from lensfind.runtime.card import load_card


def _scan_scores(run_dir):
    out = {}
    for f in sorted((run_dir / "scores").glob("*.parquet")):
        t = pq.read_table(f).to_pydict()
        out |= {i: s for i, s, st in zip(t["object_id"], t["score"], t["status"], strict=True)
                if st == "scored"}  # fmt: skip
    return out


def test_the_plain_loop_reproduces_the_scans_scores(full_run, region, model_dir, tmp_path):
    """An independent check of cutting, band order, normalisation and scoring: astropy's
    Cutout2D and a bare ONNX Runtime session give the scan's scores, up to the float16
    store's rounding (the scan scores what its store holds)."""
    n, inference_s = plain_loop.main(region, model_dir, tmp_path / "loop.parquet")
    assert inference_s > 0
    loop = pq.read_table(tmp_path / "loop.parquet").to_pydict()
    raw = dict(zip(loop["object_id"], loop["score"], strict=True))
    scan = _scan_scores(full_run.run_dir)
    assert n == len(raw) == len(scan) > 0
    assert raw.keys() == scan.keys()
    ids = sorted(scan)
    calibrated = load_card(model_dir).calibrate(np.array([raw[i] for i in ids], np.float32))
    np.testing.assert_allclose(calibrated, [scan[i] for i in ids], atol=2e-3)


def test_bench_startup_alternates_the_scan_and_the_loop(region, model_dir, tmp_path, capsys):
    results = tmp_path / "results"
    code = main(["bench", "startup", "--data", str(region), "--model", str(model_dir),
                 "--repeats", "1", "--results", str(results), "--quiet"])  # fmt: skip
    assert code == 0
    (path,) = results.glob("startup-des_y3-*.json")
    r = json.loads(path.read_text())
    scan, loop = r["scan_wall_s"]["runs"], r["plain_loop_wall_s"]["runs"]
    assert len(scan) == len(loop) == 1 and scan[0] > 0 and loop[0] > 0
    assert r["scan_over_plain_loop_per_repeat"] == [scan[0] / loop[0]]
    assert r["scan_over_plain_loop"] == scan[0] / loop[0]
    assert r["goal"]["met"] == (r["scan_over_plain_loop"] <= r["goal"]["ratio_at_most"])
    assert r["n_scored"]["scan"] == r["n_scored"]["plain_loop"] > 0
    assert len(r["load_average"]["before"]) == 3
    floor = r["model_floor"]  # the loop's model seconds per cutout x the scan's cutouts
    assert 0 < floor["plain_loop_inference_s"] < loop[0]
    assert floor["scan_cutouts_scored"] > r["n_scored"]["scan"]  # the injected copies too
    per_cutout = floor["plain_loop_inference_s"] / r["n_scored"]["plain_loop"]
    assert floor["scan_inference_floor_s"] == per_cutout * floor["scan_cutouts_scored"]
    assert floor["ratio_floor"] == floor["scan_inference_floor_s"] / loop[0]
    assert "scan_over_plain_loop" in capsys.readouterr().out
