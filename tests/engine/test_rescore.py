"""``engine score``: re-scoring a scan's cutout store into a run directory."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import generate_latest

from lensfind.cli.main import main
from lensfind.engine.config import ScoreConfig
from lensfind.engine.manifest import MANIFEST_NAME
from lensfind.engine.metrics import METRIC_NAMES
from lensfind.engine.rescore import run_score
from lensfind.engine.store import (
    STORE_NAME,
    list_shards,
    read_shard_catalog,
    read_shard_cutouts,
    start_shard_cutouts,
)
from lensfind.errors import ConfigError, ResumeError
from lensfind.testing import make_test_model, metric_families


def _config(full_run, model_dir, out, **kw) -> ScoreConfig:
    kw.setdefault("workers", 0)
    return ScoreConfig(
        cutouts=full_run.run_dir / "cutouts.zarr", model=str(model_dir), out=out, quiet=True, **kw
    )


def test_rescoring_with_the_same_model_reproduces_the_scan(full_run, model_dir, tmp_path):
    result = run_score(_config(full_run, model_dir, tmp_path / "rescore"))
    s = result.summary
    assert s["n_objects"] == s["n_scored"] == full_run.summary["n_scored"]
    assert s["n_skipped"] == s["n_failed"] == 0
    assert s["cutouts"] == str(full_run.run_dir / "cutouts.zarr")
    scan = pq.read_table(full_run.run_dir / "candidates.parquet")
    again = pq.read_table(result.run_dir / "candidates.parquet")
    for col in ("object_id", "ra", "dec", "tile", "score", "rank", "model_sha256"):
        assert again[col].to_pylist() == scan[col].to_pylist(), col
    rows = pq.read_table(result.run_dir / "scores").to_pylist()
    assert {r["status"] for r in rows} == {"scored"} and all(r["reason"] == "" for r in rows)
    assert result.exit_code == 0


def test_rescoring_exports_the_same_metrics(full_run, model_dir, tmp_path):
    result = run_score(_config(full_run, model_dir, tmp_path / "rescore"))
    fams = metric_families(generate_latest(result.metrics.registry).decode())
    assert set(fams) == METRIC_NAMES
    scored = sum(s.value for s in fams["lensfind_cutouts_scored_total"].samples
                 if s.name.endswith("_total"))  # fmt: skip
    assert scored == result.summary["n_scored"]


def test_resume_recomputes_only_lost_shards(full_run, model_dir, tmp_path):
    out = tmp_path / "rescore"
    first = run_score(_config(full_run, model_dir, out))
    reference = (out / "candidates.parquet").read_bytes()
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    (out / MANIFEST_NAME).write_text("\n".join(lines[:-1]) + "\n")
    again = run_score(_config(full_run, model_dir, out, resume=True))
    assert again.summary["n_shards_this_run"] == 1
    assert (out / "candidates.parquet").read_bytes() == reference
    assert again.summary["n_scored"] == first.summary["n_scored"]


def test_resume_refuses_a_changed_store(full_run, model_dir, tmp_path):
    store = tmp_path / "cutouts.zarr"
    shutil.copytree(full_run.run_dir / "cutouts.zarr", store)
    config = ScoreConfig(cutouts=store, model=str(model_dir), out=tmp_path / "r", workers=0,
                         quiet=True)  # fmt: skip
    run_score(config)
    victim = sorted(p for p in store.iterdir() if p.is_dir())[0]
    shutil.rmtree(victim)
    with pytest.raises(ResumeError, match="inputs changed"):
        run_score(ScoreConfig(cutouts=store, model=str(model_dir), out=tmp_path / "r",
                              workers=0, quiet=True, resume=True))  # fmt: skip


def test_a_model_for_other_bands_is_refused(full_run, tmp_path):
    kids = make_test_model(tmp_path / "kids", survey="kids_dr3")
    with pytest.raises(
        ConfigError,
        match=r"model .* takes r at 101x101 px; the cutouts are g, r, i, z at \d+x\d+ px",
    ):
        run_score(_config(full_run, kids, tmp_path / "r"))


def test_a_store_in_another_band_order_scores_the_same(full_run, model_dir, tmp_path):
    """Stores keep their own band order (here z, i, r, g); the scorer reorders to the card's."""
    source = full_run.run_dir / STORE_NAME
    store = tmp_path / "reversed.zarr"
    for shard_id in list_shards(source):
        ids, ra, dec, tile = read_shard_catalog(source, shard_id)
        _, images = read_shard_cutouts(source, shard_id)
        reversed_images = np.ascontiguousarray(images[:, ::-1])
        start_shard_cutouts(store, shard_id, ids, reversed_images, ra, dec, tile,
                            bands=("z", "i", "r", "g"), compression="none").finish()  # fmt: skip
    as_stored = run_score(_config(full_run, model_dir, tmp_path / "a"))
    reversed_ = run_score(ScoreConfig(cutouts=store, model=str(model_dir), out=tmp_path / "b",
                                      workers=0, quiet=True))  # fmt: skip
    a = pq.read_table(as_stored.run_dir / "scores").to_pydict()
    b = pq.read_table(reversed_.run_dir / "scores").to_pydict()
    assert reversed_.summary["n_scored"] == as_stored.summary["n_scored"] > 0
    assert dict(zip(a["object_id"], a["score"], strict=True)) == dict(
        zip(b["object_id"], b["score"], strict=True)
    )


def test_a_store_without_a_band_of_the_model_is_refused(full_run, model_dir, tmp_path):
    source = full_run.run_dir / STORE_NAME
    store = tmp_path / "two.zarr"
    shard_id = list_shards(source)[0]
    ids, ra, dec, tile = read_shard_catalog(source, shard_id)
    _, images = read_shard_cutouts(source, shard_id)
    start_shard_cutouts(store, shard_id, ids, np.ascontiguousarray(images[:, :2]), ra, dec, tile,
                        bands=("g", "r")).finish()  # fmt: skip
    with pytest.raises(ConfigError, match=rf"{store}: .*the cutouts have g, r \(no band i, z\)"):
        run_score(ScoreConfig(cutouts=store, model=str(model_dir), out=tmp_path / "r", workers=0,
                              quiet=True))  # fmt: skip


def test_score_needs_a_model():
    with pytest.raises(ConfigError, match="needs --model"):
        ScoreConfig(cutouts="x.zarr")


def test_cli_score(full_run, model_dir, tmp_path, capsys):
    store = str(full_run.run_dir / "cutouts.zarr")
    out_dir = str(tmp_path / "run")
    code = main(["score", "--cutouts", store, "--model", str(model_dir), "--out", out_dir,
                 "--workers", "0", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert f"run directory: {tmp_path / 'run'}" in out
    assert f"scored {full_run.summary['n_scored']}" in out
    missing = tmp_path / "nowhere.zarr"
    assert main(["score", "--cutouts", str(missing), "--model", str(model_dir), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"error: engine score: argument --cutouts: {missing}: no such file or directory "
        "(see engine score --help)\n"
    )
    missing.mkdir()  # a directory, not a store
    assert main(["score", "--cutouts", str(missing), "--model", str(model_dir), "--quiet"]) == 2
    assert (
        capsys.readouterr().err == f"error: {missing}: not a lensfind cutout store (no zarr.json)\n"
    )
    scores = pq.read_table(tmp_path / "run" / "candidates.parquet")["score"].to_numpy()
    assert np.isfinite(scores).all() and (scores >= 0.5).all()


def test_a_float16_store_rescores_within_the_recorded_precision(full_run, region, scan_config,
                                                                 model_dir, tmp_path):  # fmt: skip
    """The default float16 store against float32 stamps: scores move < 1e-3."""
    from lensfind.engine.scan import run_scan

    assert full_run.summary["store_clipped_pixels"] == 0
    assert (full_run.summary["store_dtype"], full_run.summary["store_compression"]) == (
        "float16",
        "none",
    )  # the defaults, recorded
    exact = run_scan(scan_config(region, tmp_path / "scan", store_dtype="float32", inject_rate=0))
    rescored = run_score(_config(full_run, model_dir, tmp_path / "rescore"))
    a = pq.read_table(exact.run_dir / "scores").to_pydict()
    b = pq.read_table(rescored.run_dir / "scores").to_pydict()
    sa = dict(zip(a["object_id"], a["score"], strict=True))
    sb = dict(zip(b["object_id"], b["score"], strict=True))
    common = [k for k in sb if np.isfinite(sa.get(k, np.nan)) and np.isfinite(sb[k])]
    assert len(common) == full_run.summary["n_scored"] > 0
    diff = [abs(sa[k] - sb[k]) for k in common]
    assert 0 < max(diff) < 1e-3  # float16 rounding changes scores, a little


def test_a_corrupt_store_chunk_fails_only_its_cutouts(full_run, model_dir, tmp_path, capsys):
    store = tmp_path / "cutouts.zarr"
    shutil.copytree(full_run.run_dir / STORE_NAME, store)
    victim = sorted(p for p in store.iterdir() if p.is_dir())[0]
    (shard_file,) = [
        p for p in (victim / "images").rglob("*") if p.is_file() and p.suffix != ".json"
    ]
    data = bytearray(shard_file.read_bytes())
    data[10:400] = bytes(390)  # zeroed bytes inside the first compressed chunk
    shard_file.write_bytes(bytes(data))
    out = tmp_path / "run"
    code = main(["score", "--cutouts", str(store), "--model", str(model_dir), "--out", str(out),
                 "--workers", "0", "--quiet"])  # fmt: skip
    assert code == 3  # completed, with failed objects
    scores = pq.read_table(out / "scores").to_pylist()
    bad = [r for r in scores if r["status"] == "failed"]
    n_victim = pq.read_table(full_run.run_dir / "scores" / f"{victim.name}.parquet")
    n_chunk = min(16, sum(s == "scored" for s in n_victim["status"].to_pylist()))
    assert len(bad) == n_chunk  # the first 16-cutout chunk, not the whole shard
    assert all(r["reason"].startswith(f"store unreadable: {store}/{victim.name}/images/")
               and r["reason"].endswith("chunk 0 fails its crc32c") for r in bad)  # fmt: skip
    assert {r["status"] for r in scores if r not in bad} == {"scored"}
    assert "object(s) failed" in capsys.readouterr().err
