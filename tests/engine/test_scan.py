"""lensfind.engine.scan end to end: run directory contract, resume, bad input, Dask."""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from lensfind.engine.manifest import Manifest
from lensfind.engine.plan import NO_TILE, Plan, available_tiles
from lensfind.engine.scan import run_scan
from lensfind.engine.shard import OFF_TILE
from lensfind.engine.store import read_shard_cutouts
from lensfind.errors import ConfigError, ResumeError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.surveys import get_survey
from lensfind.testing import make_test_region

DES = get_survey("des_y3")
SCORE_COLUMNS = ["object_id", "ra", "dec", "tile", "status", "reason", "score"]
SUMMARY_KEYS = {
    "n_objects",
    "n_scored",
    "n_skipped",
    "n_failed",
    "threshold",
    "data_dir",
    "model_sha256",
    "elapsed_s",
    "cutouts_per_s",
}


def read_all_scores(run_dir: Path) -> pa.Table:
    """Every scores file of a run, sorted by object_id."""
    tables = [pq.read_table(p) for p in sorted((run_dir / "scores").glob("*.parquet"))]
    table = pa.concat_tables(tables)
    return table.sort_by("object_id")


def scores_by_id(run_dir: Path) -> dict[int, tuple[str, str, float]]:
    t = read_all_scores(run_dir).to_pydict()
    return {
        i: (s, r, c)
        for i, s, r, c in zip(t["object_id"], t["status"], t["reason"], t["score"], strict=True)
    }


# --- the run directory contract -------------------------------------------------------------


def test_run_directory_layout(full_run):
    run = full_run.run_dir
    for name in (
        "plan.json",
        "manifest.jsonl",
        "candidates.parquet",
        "candidates.fits",
        "summary.json",
        "cutouts.zarr",
    ):
        assert (run / name).exists(), name
    plan = Plan.read(run / "plan.json")
    scores = sorted(p.name for p in (run / "scores").glob("*.parquet"))
    assert scores == sorted(f"{s.shard_id}.parquet" for s in plan.shards)
    assert not [p for p in run.rglob("*") if p.name.startswith(".")], "temporary files left"


def test_scores_rows(full_run, catalog):
    scores = read_all_scores(full_run.run_dir)
    carried = [c for c in catalog.column_names if c not in SCORE_COLUMNS]
    assert scores.column_names == SCORE_COLUMNS + carried
    assert "mag_r" in carried
    assert scores.schema.field("score").type == pa.float32()
    assert scores.num_rows == catalog.num_rows
    ids = scores["object_id"].to_pylist()
    assert ids == sorted(catalog["object_id"].to_pylist()), "each object exactly once"
    cat = catalog.sort_by("object_id")
    for name in ["ra", "dec", "tile", *carried]:
        assert scores[name].to_pylist() == cat[name].to_pylist(), name

    status = np.array(scores["status"].to_pylist())
    reason = np.array(scores["reason"].to_pylist())
    score = scores["score"].to_numpy()
    assert set(status) <= {"scored", "skipped", "failed"}
    np.testing.assert_array_equal(reason == "", status == "scored")
    np.testing.assert_array_equal(np.isfinite(score), status == "scored")
    assert ((score[status == "scored"] >= 0) & (score[status == "scored"] <= 1)).all()
    # the test region gives every kind of outcome
    assert {r.split(":")[0] for r in reason[status == "skipped"]} == {"edge", "masked"}
    assert (status == "scored").sum() >= 10

    s = full_run.summary
    assert s["n_scored"] + s["n_skipped"] + s["n_failed"] == s["n_objects"] == catalog.num_rows
    assert s["n_scored"] == (status == "scored").sum()
    assert s["n_skipped"] == (status == "skipped").sum()
    assert s["n_failed"] == 0
    assert full_run.exit_code == 0


def test_manifest_commits_every_shard(full_run):
    run = full_run.run_dir
    plan = Plan.read(run / "plan.json")
    lines = (run / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == len(plan.shards)
    committed = Manifest(run).committed()
    assert set(committed) == {s.shard_id for s in plan.shards}
    card = full_run.summary["model_sha256"]
    for shard in plan.shards:
        entry = committed[shard.shard_id]
        assert entry["input_fingerprint"] == plan.fingerprint
        assert entry["model_sha256"] == card
        assert sum(entry["counts"].values()) == len(shard.rows)
        assert entry["sha256"] == sha256_of(run / "scores" / entry["scores_file"])


def test_candidates(full_run, model_dir):
    run = full_run.run_dir
    scores = read_all_scores(run)
    threshold = full_run.summary["threshold"]
    assert threshold == load_card(model_dir).threshold
    cand = pq.read_table(run / "candidates.parquet")
    status = np.array(scores["status"].to_pylist())
    score = scores["score"].to_numpy()
    want = {
        i
        for i, s, c in zip(scores["object_id"].to_pylist(), status, score, strict=True)
        if s == "scored" and c >= threshold
    }
    assert 0 < len(want) < (status == "scored").sum(), "some scored objects are not candidates"
    assert set(cand["object_id"].to_pylist()) == want
    assert cand.num_rows == len(want) == full_run.summary["n_candidates"]
    c = cand["score"].to_numpy()
    assert (c >= threshold).all()
    assert (np.diff(c) <= 0).all(), "ranked by descending score"
    assert cand["rank"].to_pylist() == list(range(1, cand.num_rows + 1))
    assert set(cand["model_sha256"].to_pylist()) == {load_card(model_dir).sha256}
    assert "status" not in cand.column_names and "reason" not in cand.column_names
    assert {"object_id", "ra", "dec", "tile", "score", "mag_r"} <= set(cand.column_names)
    by_id = dict(zip(scores["object_id"].to_pylist(), score, strict=True))
    for i, s in zip(cand["object_id"].to_pylist(), c, strict=True):
        assert by_id[i] == s


def test_fits_candidates_have_the_same_rows(full_run):
    run = full_run.run_dir
    cand = pq.read_table(run / "candidates.parquet")
    fits_cand = Table.read(run / "candidates.fits")
    # the model's sha256 is in the header once, not in every row
    assert fits_cand.colnames == [c for c in cand.column_names if c != "model_sha256"]
    assert fits_cand.meta["MODELSHA"] == cand["model_sha256"][0].as_py()
    assert len(fits_cand) == cand.num_rows
    for name in fits_cand.colnames:
        got = fits_cand[name]
        if got.dtype.kind in "SU":  # astropy reads empty FITS strings as masked
            assert [str(v) for v in np.ma.filled(got, "")] == cand[name].to_pylist(), name
        else:
            np.testing.assert_array_equal(np.asarray(got), cand[name].to_numpy(), err_msg=name)


def test_fits_candidates_keep_integer_object_ids(copy_region, scan_config, tmp_path):
    data = copy_region()
    cat = pq.read_table(data / "catalog.parquet")
    big = pa.array(cat["object_id"].to_numpy() + 2**62 + 1, type=pa.int64())
    pq.write_table(cat.set_column(0, "object_id", big), data / "catalog.parquet")
    result = run_scan(scan_config(data, tmp_path / "run"))
    cand = pq.read_table(result.run_dir / "candidates.parquet")
    fits_cand = Table.read(result.run_dir / "candidates.fits")
    assert fits_cand["object_id"].dtype.kind == "i"
    assert fits_cand["object_id"].tolist() == cand["object_id"].to_pylist()


def test_summary(full_run, region, model_dir):
    s = json.loads((full_run.run_dir / "summary.json").read_text())
    assert s == full_run.summary
    assert SUMMARY_KEYS <= set(s)
    assert s["n_objects"] == 32
    assert s["threshold"] == 0.5
    assert s["data_dir"] == str(region)
    assert s["model_sha256"] == load_card(model_dir).sha256
    assert s["elapsed_s"] > 0
    assert s["cutouts_per_s"] > 0
    assert s["n_shards"] == s["n_shards_this_run"] == 4


def test_cutout_store_holds_the_scored_objects(full_run, model_dir):
    run = full_run.run_dir
    plan = Plan.read(run / "plan.json")
    ids, images = [], []
    for shard in plan.shards:
        i, im = read_shard_cutouts(run / "cutouts.zarr", shard.shard_id)
        ids.append(i)
        images.append(im)
    ids_all = np.concatenate(ids)
    images_all = np.concatenate(images)
    assert images_all.shape[1:] == (4, 100, 100)
    scored = {i: c for i, (s, _, c) in scores_by_id(run).items() if s == "scored"}
    assert sorted(ids_all.tolist()) == sorted(scored)
    rescored = OnnxScorer(model_dir)(images_all)
    np.testing.assert_allclose(rescored, [scored[i] for i in ids_all.tolist()], rtol=1e-6)


def test_threshold_override(region, scan_config, tmp_path):
    result = run_scan(scan_config(region, tmp_path / "run", threshold=0.8))
    cand = pq.read_table(result.run_dir / "candidates.parquet")
    assert result.summary["threshold"] == 0.8
    assert (cand["score"].to_numpy() >= 0.8).all()
    n = sum(1 for s, _, c in scores_by_id(result.run_dir).values() if s == "scored" and c >= 0.8)
    assert cand.num_rows == n


# --- resume -----------------------------------------------------------------------------------


def test_resume_recomputes_lost_commits(full_run, region, scan_config, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run)
    manifest = run / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    lost = [json.loads(line) for line in lines[-2:]]
    manifest.write_text("".join(lines[:-2]))
    for entry in lost:
        (run / "scores" / entry["scores_file"]).unlink()
    for name in ("candidates.parquet", "candidates.fits", "summary.json"):
        (run / name).unlink()

    result = run_scan(scan_config(region, run, resume=True))
    assert result.summary["n_shards_this_run"] == 2
    assert (run / "candidates.parquet").read_bytes() == (
        full_run.run_dir / "candidates.parquet"
    ).read_bytes()
    assert set(Manifest(run).committed()) == set(Manifest(full_run.run_dir).committed())
    for entry in lost:
        name = entry["scores_file"]
        assert (run / "scores" / name).read_bytes() == (
            full_run.run_dir / "scores" / name
        ).read_bytes()


def test_resume_of_a_finished_run_recomputes_nothing(full_run, region, scan_config, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run)
    result = run_scan(scan_config(region, run, resume=True))
    assert result.summary["n_shards_this_run"] == 0
    assert result.summary["cutouts_per_s"] is None
    assert len((run / "manifest.jsonl").read_text().splitlines()) == 4
    assert (run / "candidates.parquet").read_bytes() == (
        full_run.run_dir / "candidates.parquet"
    ).read_bytes()


def test_rerun_without_resume_is_refused(full_run, region, scan_config):
    before = (full_run.run_dir / "manifest.jsonl").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run; use --resume") as info:
        run_scan(scan_config(region, full_run.run_dir))
    assert str(full_run.run_dir) in str(info.value)
    assert (full_run.run_dir / "manifest.jsonl").read_bytes() == before


def test_resume_with_a_changed_catalogue_is_refused(copy_region, scan_config, tmp_path):
    data = copy_region()
    run = tmp_path / "run"
    run_scan(scan_config(data, run))
    table = pq.read_table(data / "catalog.parquet")
    extra = table.slice(0, 1).set_column(0, "object_id", pa.array([7], type=pa.int64()))
    pq.write_table(pa.concat_tables([table, extra]), data / "catalog.parquet")
    with pytest.raises(ResumeError, match="inputs changed since the run started"):
        run_scan(scan_config(data, run, resume=True))


def test_resume_with_a_changed_shard_size_is_refused(full_run, region, scan_config):
    with pytest.raises(ResumeError, match="inputs changed"):
        run_scan(scan_config(region, full_run.run_dir, resume=True, shard_size=5))


def test_resume_with_another_model_is_refused(full_run, region, model_dir, scan_config, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(model_dir, other)
    model = onnx.load(str(other / ONNX_NAME))
    model.producer_version = "another build"  # same function, different bytes
    onnx.save(model, str(other / ONNX_NAME))
    card = json.loads((other / CARD_NAME).read_text())
    card["sha256"] = sha256_of(other / ONNX_NAME)
    (other / CARD_NAME).write_text(json.dumps(card))
    run = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run)
    config = scan_config(region, run, resume=True)
    with pytest.raises(ResumeError, match="was scored with model"):
        run_scan(dataclasses.replace(config, model=str(other)))


def _manifest_lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize(
    "kill_after",
    [2, pytest.param(17, marks=pytest.mark.slow), pytest.param(31, marks=pytest.mark.slow)],
)
def test_sigkill_then_resume_gives_the_uninterrupted_catalogue(
    model_dir, scan_config, tmp_path, kill_after
):
    # One 1000x1000 px tile, 100 objects, two objects per shard: the scan commits
    # 50 shards over a few seconds (each reads the whole tile), so the kill lands early.
    region = make_test_region(tmp_path / "region", tiles_ra=1, tile_px=1000, seed=3)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lensfind", "scan", "--data", str(region)]
    cmd += ["--model", str(model_dir), "--out", str(run)]
    cmd += ["--workers", "0", "--shard-size", "2", "--quiet"]
    log = tmp_path / "killed.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while _manifest_lines(run / "manifest.jsonl") < kill_after:
                if proc.poll() is not None:
                    pytest.fail(
                        f"scan exited (rc {proc.returncode}) before {kill_after} commits: "
                        f"{log.read_text()}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"no {kill_after} shard commits within 60 s")
                time.sleep(0.002)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    plan = Plan.read(run / "plan.json")
    n_committed = len(Manifest(run).committed())
    if (run / "summary.json").exists() or n_committed == len(plan.shards):
        pytest.fail(
            f"the scan finished ({n_committed}/{len(plan.shards)} shards) before the "
            "SIGKILL landed: make the region bigger so the kill interrupts it"
        )
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "candidates.parquet").exists()

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run directory: {run}" in resumed.stdout

    reference = run_scan(scan_config(region, tmp_path / "reference", shard_size=2))
    assert reference.summary["n_candidates"] > 0
    assert (run / "candidates.parquet").read_bytes() == (
        reference.run_dir / "candidates.parquet"
    ).read_bytes()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_shards_this_run"] == len(plan.shards) - n_committed
    for key in ("n_objects", "n_scored", "n_skipped", "n_failed", "n_candidates"):
        assert summary[key] == reference.summary[key], key
    # every shard committed exactly once over the two runs
    lines = (run / "manifest.jsonl").read_text().splitlines()
    ids = [json.loads(line)["shard_id"] for line in lines if line.endswith("}")]
    assert sorted(ids) == sorted(s.shard_id for s in plan.shards)


# --- bad input never stops the other shards ---------------------------------------------------


def test_truncated_tile_fails_only_its_objects(full_run, copy_region, scan_config, tmp_path):
    data = copy_region()
    bad_tile = available_tiles(data, DES)[1]
    bad_file = data / f"{bad_tile}_r.fits"
    os.truncate(bad_file, bad_file.stat().st_size // 2)
    result = run_scan(scan_config(data, tmp_path / "run"))
    s = result.summary
    assert result.exit_code == 3
    assert s["n_failed"] == 16
    assert s["n_scored"] + s["n_skipped"] + s["n_failed"] == s["n_objects"] == 32
    good = scores_by_id(full_run.run_dir)
    scores = read_all_scores(result.run_dir).to_pydict()
    for i, tile, status, reason, score in zip(
        scores["object_id"],
        scores["tile"],
        scores["status"],
        scores["reason"],
        scores["score"],
        strict=True,
    ):
        if tile == bad_tile:
            assert status == "failed"
            assert bad_file.name in reason
            assert reason.startswith("tile unreadable")
            assert np.isnan(score)
        else:
            assert status in ("scored", "skipped")
            assert (status, reason) == good[i][:2]
            assert score == good[i][2] or (np.isnan(score) and np.isnan(good[i][2]))
    assert s["fail_reasons"] == {"tile unreadable": 16}


def test_objects_on_no_tile_are_skipped_off_tile(full_run, copy_region, scan_config, tmp_path):
    data = copy_region()
    cat = pq.read_table(data / "catalog.parquet").drop_columns(["tile"])
    ra0 = cat["ra"][0].as_py()
    far = pa.table(
        {
            "object_id": pa.array([11, 12], type=pa.int64()),
            "ra": pa.array([ra0 + 5.0, ra0 - 40.0]),
            "dec": pa.array([-30.0, 10.0]),
            **{
                c: pa.array([20.0, 21.0]).cast(cat.schema.field(c).type)
                for c in cat.column_names[3:]
            },
        }
    )
    pq.write_table(pa.concat_tables([cat, far]), data / "catalog.parquet")
    result = run_scan(scan_config(data, tmp_path / "run"))
    plan = Plan.read(result.run_dir / "plan.json")
    assert [s.tile for s in plan.shards].count(NO_TILE) == 1
    assert result.summary["n_objects"] == 34
    assert result.summary["skip_reasons"]["off-tile"] == 2
    scores = read_all_scores(result.run_dir).to_pydict()
    good = scores_by_id(full_run.run_dir)
    for i, tile, status, reason in zip(
        scores["object_id"], scores["tile"], scores["status"], scores["reason"], strict=True
    ):
        if i in (11, 12):
            assert (tile, status, reason) == (NO_TILE, "skipped", OFF_TILE)
        else:
            assert (status, reason) == good[i][:2]


# --- Dask -------------------------------------------------------------------------------------


def test_two_dask_workers_give_the_same_catalogue(full_run, region, scan_config, tmp_path):
    result = run_scan(scan_config(region, tmp_path / "run", workers=2))
    assert result.summary["workers"] == 2
    assert (result.run_dir / "candidates.parquet").read_bytes() == (
        full_run.run_dir / "candidates.parquet"
    ).read_bytes()
    assert scores_by_id(result.run_dir).keys() == scores_by_id(full_run.run_dir).keys()
    for a, b in zip(
        scores_by_id(result.run_dir).values(), scores_by_id(full_run.run_dir).values(), strict=True
    ):
        assert a[:2] == b[:2]
        assert a[2] == b[2] or (np.isnan(a[2]) and np.isnan(b[2]))
    # the same table data (the headers differ in their DATE and checksums)
    assert _fits_datasum(result.run_dir) == _fits_datasum(full_run.run_dir)


def _fits_datasum(run_dir: Path) -> str:
    from astropy.io import fits

    with fits.open(run_dir / "candidates.fits", checksum=True) as hdus:
        return str(hdus["CANDIDATES"].header["DATASUM"])


def test_a_small_scan_runs_on_threads_with_the_same_outputs(
    full_run, region, scan_config, tmp_path
):
    """Not naming ``workers``: a small scan runs on threads here, no cluster; same bytes."""
    result = run_scan(scan_config(region, tmp_path / "run", workers=None))
    assert result.summary["executor"] == "threads"
    assert full_run.summary["executor"] == "in-process"
    for name in ("candidates.parquet", "selection_function.parquet"):
        assert (result.run_dir / name).read_bytes() == (full_run.run_dir / name).read_bytes(), name
    assert _fits_datasum(result.run_dir) == _fits_datasum(full_run.run_dir)  # headers: DATE
    assert scores_by_id(result.run_dir).keys() == scores_by_id(full_run.run_dir).keys()


def test_existing_scheduler_gives_the_same_catalogue(full_run, region, scan_config, tmp_path):
    """``--scheduler ADDRESS``: the scan runs on a cluster it did not start."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        result = run_scan(
            scan_config(region, tmp_path / "run", workers=0, scheduler=cluster.scheduler_address)
        )
    assert result.summary["workers"] == cluster.scheduler_address
    assert (result.run_dir / "candidates.parquet").read_bytes() == (
        full_run.run_dir / "candidates.parquet"
    ).read_bytes()


def test_scan_of_a_hats_catalogue_scores_the_same(full_run, copy_region, scan_config, tmp_path):
    from lensfind.testing import write_hats

    data = copy_region()
    write_hats(pq.read_table(data / "catalog.parquet"), data / "catalog.hats", order=3)
    (data / "catalog.parquet").unlink()
    result = run_scan(scan_config(data, tmp_path / "run", inject_rate=0.0))
    a = pq.read_table(full_run.run_dir / "candidates.parquet").sort_by("object_id")
    b = pq.read_table(result.run_dir / "candidates.parquet").sort_by("object_id")
    assert a["object_id"].equals(b["object_id"]) and a["score"].equals(b["score"])
    assert result.summary["n_objects"] == full_run.summary["n_objects"]


def test_a_model_with_non_finite_outputs_is_refused_before_work(region, scan_config, tmp_path):
    from lensfind.errors import ModelError
    from lensfind.testing import make_test_model

    nan_model = make_test_model(tmp_path / "nan-model", gain=float("nan"))
    config = dataclasses.replace(scan_config(region, tmp_path / "run", inject_rate=0.0),
                                 model=str(nan_model))  # fmt: skip
    with pytest.raises(ModelError, match="returns non-finite scores"):
        run_scan(config)
    assert not (tmp_path / "run").exists()  # nothing started (mid-scan NaN: test_faults_campaign)


def test_a_model_for_another_input_shape_is_refused_before_work(region, scan_config, tmp_path):
    from lensfind.errors import ConfigError
    from lensfind.testing import make_test_model

    kids = make_test_model(tmp_path / "kids-model", survey="kids_dr3")
    config = dataclasses.replace(scan_config(region, tmp_path / "run"), model=str(kids))
    with pytest.raises(ConfigError, match=r"expects bands \('r',\) at 101 px; survey des_y3"):
        run_scan(config)
    assert not (tmp_path / "run").exists()  # nothing started
