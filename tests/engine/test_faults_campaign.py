"""The fault campaign's cases, recreated end to end through the ``engine`` command line.

Each test makes one bad input or fault (a model that cannot score, a tile changed
under a resumed run, a damaged cutout store, a run directory that cannot be
written, a disk that fills up mid-scan, a misregistered band, ...) and checks what
the command does about it: its exit status (2: refused, one line on stderr;
3: completed with failed objects), the message, and that every object is
accounted for. docs/reliability.md lists them.
"""

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from lensfind.cli.main import main
from lensfind.engine.manifest import MANIFEST_NAME, Manifest
from lensfind.engine.plan import PLAN_NAME
from lensfind.engine.store import STORE_NAME
from lensfind.hashing import sha256_of
from lensfind.testing import free_port, make_test_model, make_test_region


def engine(capsys, *argv: str) -> tuple[int, str, str]:
    """``engine ARGV`` in this process: exit status, stdout, stderr (a traceback fails the test)."""
    code = main([*argv, "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def scan(capsys, data: Path, model: Path, out: Path, *flags: str) -> tuple[int, str, str]:
    return engine(capsys, "scan", "--data", str(data), "--model", str(model), "--out", str(out),
                  "--workers", "0", "--shard-size", "8", *flags)  # fmt: skip


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def rows(run: Path) -> list[dict]:
    return pq.read_table(run / "scores").to_pylist()


def _resign(model: Path) -> None:
    """Make the card's sha256 match whatever model.onnx now holds."""
    card = json.loads((model / "model_card.json").read_text())
    card["sha256"] = sha256_of(model / "model.onnx")
    (model / "model_card.json").write_text(json.dumps(card))


# --- D1: a model that cannot score stops the run before any shard ------------------------------


def _per_band_model(out: Path) -> Path:
    """A model whose output is (batch, 4): one sigmoid per band, not one probability."""
    from onnx import TensorProto, helper

    model = make_test_model(out)
    x = helper.make_tensor_value_info("cutouts", TensorProto.FLOAT, ["batch", 4, 100, 100])
    y = helper.make_tensor_value_info("lens_probability", TensorProto.FLOAT, ["batch", 4])
    nodes = [helper.make_node("ReduceMean", ["cutouts"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("Sigmoid", ["m"], ["lens_probability"])]  # fmt: skip
    graph = helper.make_graph(nodes, "per_band", [x], [y])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    (model / "model.onnx").write_bytes(onnx_model.SerializeToString())
    _resign(model)
    return model


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("nan", "returns non-finite scores (NaN/inf) for 4 of 4 test cutouts"),
        ("unloadable", "onnxruntime cannot load it"),
        ("three_channels", "the graph's input 'cutouts' has shape ['batch', 3, 100, 100]"),
        ("per_band_output", "has shape (4, 4) for 4 cutouts; a lens finder returns one"),
    ],
)
def test_a_model_that_cannot_score_stops_the_scan_before_any_shard(
    region, tmp_path, capsys, fault, message
):
    model = tmp_path / "model"
    if fault == "nan":
        make_test_model(model, gain=float("nan"))
    elif fault == "unloadable":  # garbage with a matching sha256
        make_test_model(model)
        (model / "model.onnx").write_bytes(b"not an onnx graph" * 64)
        _resign(model)
    elif fault == "three_channels":  # a g, r, i graph under a card that says g, r, i, z
        make_test_model(model)
        make_test_model(tmp_path / "gri", bands=("g", "r", "i"))
        shutil.copy(tmp_path / "gri" / "model.onnx", model / "model.onnx")
        _resign(model)
    else:
        _per_band_model(model)
    run = tmp_path / "run"
    code, _, err = scan(capsys, region, model, run)  # injections on (the default rate)
    assert code == 2
    line = one_error_line(err)
    assert str(model / "model.onnx") in line and message in line
    assert not run.exists()  # not a shard, not a plan: nothing to resume


def test_a_model_that_goes_non_finite_mid_scan_fails_those_objects(
    region, model_dir, tmp_path, capsys, monkeypatch
):
    import lensfind.engine.scoring as scoring

    real = scoring.scorer_for

    calls = []

    class EveryOtherNaN:  # sound for the start's check, then NaN for every other cutout
        def __init__(self, scorer):
            self.scorer = scorer

        def __getattr__(self, name):  # card, session, input_bands: the real scorer's
            return getattr(self.scorer, name)

        def with_input_bands(self, bands):
            return EveryOtherNaN(self.scorer.with_input_bands(bands))

        def __call__(self, cutouts, overwrite=False):
            p = self.scorer(cutouts, overwrite=overwrite).copy()
            calls.append(len(p))
            if len(calls) > 1:  # the model check's dry batch is the first call
                p[::2] = np.nan
            return p

    monkeypatch.setattr(scoring, "scorer_for", lambda *a, **k: EveryOtherNaN(real(*a, **k)))
    run = tmp_path / "run"
    code, _, err = scan(capsys, region, model_dir, run)
    assert code == 3 and "Traceback" not in err
    table = rows(run)
    failed = [r for r in table if r["status"] == "failed"]
    scored = [r for r in table if r["status"] == "scored"]
    assert failed and scored and len(table) == 32
    assert {r["reason"] for r in failed} == {scoring.NON_FINITE}
    assert all(np.isfinite(r["score"]) and r["reason"] == "" for r in scored)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_failed"] == len(failed) and summary["n_scored"] == len(scored)


def test_the_report_prints_n_a_for_undefined_figures():
    from lensfind.cli.common import figure, purity_line, selection_line

    assert figure(None, ".1%") == figure(float("nan"), ".1f") == "n/a"
    assert figure(0.25, ".1%") == "25.0%"
    sel = {"n_injected": 80, "completeness": None}
    assert "none scored" in selection_line(sel, Path("run"))
    purity = {"thresholds": [{"expected_purity": None, "expected_true_lenses": None,
                              "n_candidates": 0}], "calibrated_scores": False,
              "inspect_to_find": {}, "prior_lens_rate": 1e-3, "prior_consistent": False,
              "expected_lenses_scanned": None}  # fmt: skip
    line = purity_line(purity)
    assert "n/a of 0" in line and "more than the n/a" in line


# --- D2: --resume refuses changed inputs and result-changing options ----------------------------


def _manifest_lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_a_tile_changed_at_the_same_size_after_a_kill_is_refused_on_resume(
    model_dir, tmp_path, capsys
):
    region = make_test_region(tmp_path / "region", tiles_ra=1, tile_px=1000, seed=3)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lensfind", "scan", "--data", str(region), "--model",
           str(model_dir), "--out", str(run), "--workers", "0", "--shard-size", "2",
           "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _manifest_lines(run / MANIFEST_NAME) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no commits within 60 s"
            time.sleep(0.002)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    committed = Manifest(run).committed()
    assert committed
    tile = sorted(region.glob("*_r.fits"))[0]
    size = tile.stat().st_size
    with fits.open(tile, mode="update") as hdul:  # new pixels, same bytes on disk
        hdul[0].data[:] = hdul[0].data[::-1].copy()
    assert tile.stat().st_size == size
    code, _, err = engine(capsys, *cmd[3:-1], "--resume")
    assert code == 2
    assert "inputs changed since the run started" in one_error_line(err)
    assert Manifest(run).committed() == committed  # nothing more was computed


def test_a_pixel_change_with_the_old_modification_time_is_still_seen(tmp_path, monkeypatch):
    import lensfind.digests as digests

    monkeypatch.setattr(digests, "RACY_NS", 0)  # cache even a file written just now
    path = tmp_path / "tile.fits"
    path.write_bytes(bytes(4096))
    before, st = digests.file_digest(path), path.stat()
    time.sleep(0.05)  # a few ticks of the file system's clock
    path.write_bytes(b"\1" + bytes(4095))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r: same size, same mtime
    assert digests.file_digest(path) == sha256_of(path) != before


def test_digests_are_cached_by_file_identity(tmp_path, monkeypatch):
    import lensfind.digests as digests

    path = tmp_path / "tile.fits"
    path.write_bytes(os.urandom(10_000))
    calls = []
    real = digests.sha256_of
    monkeypatch.setattr(digests, "sha256_of", lambda p: calls.append(p) or real(p))
    first = digests.file_digest(path)  # written just now: not cached
    monkeypatch.setattr(digests, "RACY_NS", 0)
    assert digests.file_digest(path) == first and len(calls) == 2  # now cached
    digests._MEMO.clear()  # a new process: only the cache file is left
    digests._LOADED.clear()
    assert digests.file_digest(path) == first == sha256_of(path)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "changed",
    [("--inject-rate", "0.2"), ("--inject-seed", "7"), ("--store-dtype", "float32"),
     ("--store-compression", "zstd")],
)  # fmt: skip
def test_resume_refuses_an_option_that_changes_what_shards_store(
    region, model_dir, tmp_path, capsys, changed
):
    run = tmp_path / "run"
    assert scan(capsys, region, model_dir, run, "--inject-rate", "0.1")[0] == 0
    lines = (run / MANIFEST_NAME).read_text().splitlines()
    (run / MANIFEST_NAME).write_text(lines[0] + "\n")  # as if killed after one commit
    flags = {"--inject-rate": "0.1", **dict([changed])}
    code, _, err = scan(capsys, region, model_dir, run, "--resume", *sum(flags.items(), ()))
    assert code == 2 and "inputs changed since the run started" in one_error_line(err)
    # the same options resume
    assert scan(capsys, region, model_dir, run, "--resume", "--inject-rate", "0.1")[0] == 0


# --- D3: a damaged cutout store never invents ids --------------------------------------------


@pytest.fixture
def store_copy(full_run, tmp_path) -> Path:
    store = tmp_path / STORE_NAME
    shutil.copytree(full_run.run_dir / STORE_NAME, store)
    return store


def _score(capsys, store: Path, model: Path, out: Path) -> tuple[int, str, str]:
    return engine(capsys, "score", "--cutouts", str(store), "--model", str(model), "--out",
                  str(out), "--workers", "0")  # fmt: skip


def _biggest_shard(store: Path) -> Path:
    groups = [p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return max(groups, key=lambda g: json.loads((g / "object_id" / "zarr.json").read_text())
               ["shape"][0])  # fmt: skip


def test_a_deleted_object_id_chunk_fails_its_objects_without_inventing_ids(
    store_copy, model_dir, tmp_path, capsys
):
    victim = _biggest_shard(store_copy)
    (victim / "object_id" / "c" / "0").unlink()
    out = tmp_path / "run"
    code, _, err = _score(capsys, store_copy, model_dir, out)
    assert code == 3 and "Traceback" not in err
    table = pq.read_table(out / "scores")
    ids = table["object_id"]
    assert 0 not in ids.drop_null().to_pylist()
    assert len(set(ids.drop_null().to_pylist())) == len(ids.drop_null())  # no duplicates
    lost = [r for r in table.to_pylist() if r["object_id"] is None]
    assert lost and all(r["status"] == "failed" for r in lost)
    assert all("object_id/c/0: missing" in r["reason"] and "values are unknown" in r["reason"]
               for r in lost)  # fmt: skip
    assert not pq.read_table(out / "candidates.parquet")["object_id"].null_count


def test_a_damaged_coordinate_chunk_fails_its_objects(store_copy, model_dir, tmp_path, capsys):
    victim = _biggest_shard(store_copy)
    chunk = victim / "dec" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0xFF
    chunk.write_bytes(bytes(data))
    out = tmp_path / "run"
    assert _score(capsys, store_copy, model_dir, out)[0] == 3
    shard = pq.read_table(out / "scores" / f"{victim.name}.parquet").to_pylist()
    assert all(r["status"] == "failed" and "dec/c/0: fails its crc32c" in r["reason"]
               and r["object_id"] is not None and r["dec"] is None for r in shard)  # fmt: skip


def test_score_resume_refuses_changed_image_bytes_with_valid_checksums(
    store_copy, model_dir, tmp_path, capsys
):
    import google_crc32c

    out = tmp_path / "run"
    assert _score(capsys, store_copy, model_dir, out)[0] == 0
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    (out / MANIFEST_NAME).write_text(lines[0] + "\n")  # as if killed after one commit
    (image,) = (p for p in (_biggest_shard(store_copy) / "images" / "c").rglob("*") if p.is_file())
    raw = bytearray(image.read_bytes())
    offset, length = np.frombuffer(bytes(raw[-20:-4]), "<u8")[:2].tolist()  # the last chunk
    raw[offset + 8] ^= 0x10  # another pixel value ...
    piece = bytes(raw[offset : offset + length - 4])
    raw[offset + length - 4 : offset + length] = google_crc32c.value(piece).to_bytes(4, "little")
    image.write_bytes(bytes(raw))  # ... with a valid crc32c: a changed store, not a damaged one
    code, _, err = engine(capsys, "score", "--cutouts", str(store_copy), "--model", str(model_dir),
                          "--out", str(out), "--workers", "0", "--resume")  # fmt: skip
    assert code == 2 and "inputs changed since the run started" in one_error_line(err)


def test_tampered_shard_attributes_are_refused(store_copy, model_dir, tmp_path, capsys):
    victim = _biggest_shard(store_copy)
    doc = json.loads((victim / "zarr.json").read_text())
    doc["attributes"]["encoding"]["scale"][0] *= 2  # would rescale every pixel of band g
    (victim / "zarr.json").write_text(json.dumps(doc))
    code, _, err = _score(capsys, store_copy, model_dir, tmp_path / "run")
    assert code == 2 and "attributes fail their sha256" in one_error_line(err)


# --- D4: a run directory that cannot be written ----------------------------------------------


def test_out_under_a_regular_file_is_one_line(region, model_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a file")
    code, _, err = scan(capsys, region, model_dir, tmp_path / "notes.txt" / "run")
    assert code == 2
    assert f"{tmp_path / 'notes.txt'} is a regular file, not a directory" in one_error_line(err)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_under_proc_is_one_line(region, model_dir, capsys):
    code, _, err = scan(capsys, region, model_dir, Path("/proc/lensfind-run/run"))
    assert code == 2 and "/proc/lensfind-run/run: cannot write the run directory" in (
        one_error_line(err)
    )


def test_a_read_only_run_directory_is_one_line(region, model_dir, tmp_path, capsys, monkeypatch):
    import lensfind.run_dir_checks as checks

    def read_only(*args, **kwargs):  # what a read-only mount answers, even to root
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "run"))

    monkeypatch.setattr(checks.tempfile, "mkstemp", read_only)
    code, _, err = scan(capsys, region, model_dir, tmp_path / "run")
    assert code == 2 and "Read-only file system (EROFS)" in one_error_line(err)
    assert not (tmp_path / "run" / PLAN_NAME).exists()


def test_disk_full_mid_scan_keeps_the_committed_shards_and_resumes(
    region, model_dir, tmp_path, capsys, monkeypatch
):
    import lensfind.engine.store as store

    reference = tmp_path / "reference"
    assert scan(capsys, region, model_dir, reference)[0] == 0
    real, calls = store.write_file, []
    run = tmp_path / "run"

    def fills_up(path, data):  # the run's third image file finds the disk full
        if run in Path(path).parents:  # (a write another test left queued is not ours)
            calls.append(path)
            if len(calls) >= 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(store, "write_file", fills_up)
    code, _, err = scan(capsys, region, model_dir, run)
    line = one_error_line(err)
    assert code == 2 and "No space left on device (ENOSPC)" in line
    committed = Manifest(run).committed()
    assert 0 < len(committed) < len(json.loads((run / PLAN_NAME).read_text())["shards"])
    assert f"{len(committed)} committed shard(s) stay valid" in line and "--resume" in line
    for entry in committed.values():  # the commits are intact
        assert sha256_of(run / "scores" / entry["scores_file"]) == entry["sha256"]
    monkeypatch.setattr(store, "write_file", real)  # space freed
    assert scan(capsys, region, model_dir, run, "--resume")[0] == 0
    for name in ("candidates.parquet", "selection_function.parquet"):
        assert (run / name).read_bytes() == (reference / name).read_bytes()


def test_a_busy_metrics_port_leaves_no_run_directory(region, model_dir, tmp_path, capsys):
    import socket

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        code, _, err = scan(capsys, region, model_dir, tmp_path / "run", "--metrics-port",
                            str(port))  # fmt: skip
    assert code == 2 and f"cannot serve metrics on 127.0.0.1:{port}" in one_error_line(err)
    assert not (tmp_path / "run").exists()  # a rerun needs no --resume


# --- weak points: bands, catalogues, FITS checksums -------------------------------------------


def test_a_misregistered_band_fails_its_tile(copy_region, model_dir, tmp_path, capsys):
    data = copy_region()
    tile = sorted(data.glob("*_i.fits"))[0]
    with fits.open(tile, mode="update") as hdul:
        hdul[0].header["CRVAL2"] += 20 / 3600  # 20 arcsec: 76 DES pixels
    code, _, _ = scan(capsys, data, model_dir, tmp_path / "run")
    assert code == 3
    bad = [r for r in rows(tmp_path / "run") if r["tile"] == tile.name.removesuffix("_i.fits")]
    assert bad and all(r["status"] == "failed" and "WCS differs from" in r["reason"]
                       and "tolerance 0.5 px" in r["reason"] for r in bad)  # fmt: skip


def test_a_band_within_the_wcs_tolerance_is_scored(copy_region, model_dir, tmp_path, capsys):
    data = copy_region()
    for tile in data.glob("*_i.fits"):
        with fits.open(tile, mode="update") as hdul:
            hdul[0].header["CRVAL2"] += 0.02 / 3600  # 0.08 px
    assert scan(capsys, data, model_dir, tmp_path / "run")[0] == 0


@pytest.mark.parametrize("kind", ["parquet", "fits"])
def test_a_null_object_id_is_named(copy_region, model_dir, tmp_path, capsys, kind):
    from astropy.table import MaskedColumn, Table

    data = copy_region()
    cat = pq.read_table(data / "catalog.parquet")
    ids = cat["object_id"].to_pylist()
    if kind == "parquet":
        ids[5] = None
        pq.write_table(cat.set_column(0, "object_id", pa.array(ids, pa.int64())),
                       data / "catalog.parquet")  # fmt: skip
    else:  # a FITS null (TNULL) is read as a masked value, whose fill value is a valid id
        t = Table({c: cat[c].to_numpy(zero_copy_only=False) for c in ("ra", "dec")})
        t["object_id"] = MaskedColumn(ids, mask=np.arange(len(ids)) == 5, fill_value=-99)
        t.write(data / "catalog.fits")
        (data / "catalog.parquet").unlink()
    code, _, err = scan(capsys, data, model_dir, tmp_path / "run")
    assert code == 2 and "column object_id has 1 null(s), first at row 5" in one_error_line(err)


def test_out_of_range_and_null_positions_get_precise_reasons(
    copy_region, model_dir, tmp_path, capsys
):
    data = copy_region()
    cat = pq.read_table(data / "catalog.parquet")
    dec, ra = cat["dec"].to_pylist(), cat["ra"].to_pylist()
    dec[3], ra[7] = 95.0, None
    cat = cat.set_column(cat.column_names.index("dec"), "dec", pa.array(dec, pa.float64()))
    cat = cat.set_column(cat.column_names.index("ra"), "ra", pa.array(ra, pa.float64()))
    pq.write_table(cat.drop_columns(["tile"]), data / "catalog.parquet")  # assigned by WCS
    assert scan(capsys, data, model_dir, tmp_path / "run")[0] == 0
    by_id = {r["object_id"]: r for r in rows(tmp_path / "run")}
    ids = cat["object_id"].to_pylist()
    assert by_id[ids[3]]["status"] == "skipped"
    assert by_id[ids[3]]["reason"] == "invalid: dec 95 deg outside [-90, 90]"
    expected = f"invalid: position (nan, {dec[7]:g}) deg is null or not finite"
    assert by_id[ids[7]]["reason"] == expected


def test_fits_checksums_are_verified_where_the_header_has_them(
    copy_region, model_dir, tmp_path, capsys
):
    data = copy_region()
    tiles = sorted(data.glob("*_z.fits"))
    for tile in tiles:
        with fits.open(tile) as hdul:
            hdu = fits.PrimaryHDU(np.array(hdul[0].data), hdul[0].header)
        hdu.writeto(tile, overwrite=True, checksum=True)  # DATASUM + CHECKSUM
    intact = tmp_path / "intact"
    assert scan(capsys, data, model_dir, intact)[0] == 0  # verified and scored
    with fits.open(tiles[0]) as hdul:
        assert "DATASUM" in hdul[0].header
        at = hdul.fileinfo(0)["datLoc"] + 4 * 1000 + 1  # inside pixel 1000
    raw = bytearray(tiles[0].read_bytes())
    raw[at] ^= 0x40  # one bit of one pixel
    tiles[0].write_bytes(bytes(raw))
    code, _, _ = scan(capsys, data, model_dir, tmp_path / "run")
    assert code == 3
    name = tiles[0].name.removesuffix("_z.fits")
    bad = [r for r in rows(tmp_path / "run") if r["tile"] == name]
    assert bad and all(r["status"] == "failed" and "fails its DATASUM" in r["reason"]
                       for r in bad)  # fmt: skip
    good = [r for r in rows(tmp_path / "run") if r["tile"] != name and r["tile"]]
    assert {r["status"] for r in good} <= {"scored", "skipped"}
