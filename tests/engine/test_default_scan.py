"""``engine scan --survey des_y3`` as a user runs it: the embedded default region and model.

The first scan generates the default region into a private LENSFIND_CACHE (~50 s on
2 cores), then scans it with the shipped model on a local Dask cluster (~6 s); a
second scan reuses the region and must reproduce the catalogue byte for byte.
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.runtime.shipped import resolve_model
from lensfind.training.metrics import auroc


def _scan(out: Path) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["scan", "--survey", "des_y3", "--out", str(out), "--quiet"])
    return code, buf.getvalue()


def _region_state(region: Path) -> dict:
    st = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(region.iterdir())}
    st["."] = (region.stat().st_ino, region.stat().st_mtime_ns)
    return st


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("default_scan")
    cache = tmp / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LENSFIND_CACHE", str(cache))
        code1, out1 = _scan(tmp / "run")
        summary1 = json.loads((tmp / "run" / "summary.json").read_text())
        region = Path(summary1["data_dir"])
        before = _region_state(region)
        code2, out2 = _scan(tmp / "run2")
        after = _region_state(region)
    return {
        "cache": cache,
        "run": tmp / "run",
        "run2": tmp / "run2",
        "codes": (code1, code2),
        "stdout": (out1, out2),
        "summary": summary1,
        "region": region,
        "region_before": before,
        "region_after": after,
    }


def _scores(run: Path) -> pa.Table:
    files = sorted((run / "scores").glob("*.parquet"))
    assert files, f"{run}: no scores files"
    return pa.concat_tables([pq.read_table(f) for f in files])


def test_exit_code_and_stdout(runs):
    assert runs["codes"] == (0, 0), runs["stdout"]
    for out, run in zip(runs["stdout"], (runs["run"], runs["run2"]), strict=True):
        assert f"run directory: {run}" in out, out
        assert "cutouts/s" in out, out


def test_summary_uses_the_embedded_region_in_the_cache(runs):
    s = runs["summary"]
    assert s["embedded_default"] is True
    data_dir = Path(s["data_dir"])
    assert data_dir.is_relative_to(runs["cache"]), (data_dir, runs["cache"])
    assert (data_dir / "truth.parquet").is_file()
    assert (data_dir / "catalog.parquet").is_file()
    assert s["model_sha256"] == resolve_model(None, "des_y3").sha256
    assert s["cutouts_per_s"] and s["cutouts_per_s"] > 0


def test_counts_add_up_to_the_catalogue(runs):
    s = runs["summary"]
    catalog = pq.read_table(runs["region"] / "catalog.parquet")
    assert s["n_objects"] == catalog.num_rows
    assert s["n_scored"] + s["n_skipped"] + s["n_failed"] == catalog.num_rows
    assert s["n_failed"] == 0, s["fail_reasons"]
    assert s["n_scored"] > 0
    scores = _scores(runs["run"])
    assert scores.num_rows == catalog.num_rows
    ids = scores["object_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids)
    assert set(ids.tolist()) == set(catalog["object_id"].to_numpy().tolist())
    status = scores["status"].to_numpy(zero_copy_only=False)
    assert int((status == "scored").sum()) == s["n_scored"]
    assert int((status == "skipped").sum()) == s["n_skipped"]


def test_planted_lenses_are_recovered(runs):
    threshold = runs["summary"]["threshold"]
    scores = _scores(runs["run"])
    status = scores["status"].to_numpy(zero_copy_only=False)
    scored = status == "scored"
    ids = scores["object_id"].to_numpy()[scored]
    p = scores["score"].to_numpy()[scored]
    assert np.isfinite(p).all()

    truth = pq.read_table(runs["region"] / "truth.parquet")
    t_ids = truth["object_id"].to_numpy()
    t_lens = truth["is_lens"].to_numpy(zero_copy_only=False).astype(bool)
    order = np.argsort(t_ids)
    pos = np.searchsorted(t_ids, ids, sorter=order)
    assert np.all(pos < len(t_ids)), "scored objects missing from truth.parquet"
    row = order[pos]
    assert np.array_equal(t_ids[row], ids), "scored objects missing from truth.parquet"
    is_lens = t_lens[row]
    n_lens = int(is_lens.sum())
    assert 0 < n_lens < len(is_lens)

    auc = auroc(is_lens, p)
    recall = float(np.mean(p[is_lens] >= threshold))
    msg = (
        f"AUROC {auc:.4f}, recall {recall:.3f} at threshold {threshold} "
        f"({n_lens} lenses among {len(p)} scored objects)"
    )
    print(msg)
    assert auc >= 0.95, msg
    assert recall >= 0.8, msg


def test_second_scan_reuses_the_region(runs):
    assert runs["summary"]["data_dir"] == str(runs["region"])
    s2 = json.loads((runs["run2"] / "summary.json").read_text())
    assert s2["data_dir"] == str(runs["region"])
    assert runs["region_after"] == runs["region_before"], "the default region was regenerated"


def test_second_scan_is_byte_identical(runs):
    a = (runs["run"] / "candidates.parquet").read_bytes()
    b = (runs["run2"] / "candidates.parquet").read_bytes()
    assert a == b, "candidates.parquet differs between two scans of the same region"
    s1 = runs["summary"]
    s2 = json.loads((runs["run2"] / "summary.json").read_text())
    for key in ("n_objects", "n_scored", "n_skipped", "n_failed", "n_candidates"):
        assert s1[key] == s2[key], key
