"""``engine train --finetune``: graded candidates of a scan -> a fine-tuned, exported model."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.engine.config import ScanConfig
from lensfind.engine.scan import run_scan
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.hashing import sha256_of
from lensfind.runtime.card import load_card
from lensfind.runtime.shipped import resolve_model
from lensfind.testing import run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from lensfind.training.labels import (  # noqa: E402
    DEFAULT_WEIGHTS,
    LabelError,
    build_labelled_set,
    read_grades,
)


def _stored_ids(run: Path) -> np.ndarray:
    store = run / STORE_NAME
    return np.concatenate([read_shard_cutouts(store, s)[0] for s in list_shards(store)])


def _write_grades(path: Path, rows: list[tuple[int, str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["object_id", "grade", "graded_utc", "grader"])
        w.writerows([(i, g, "2026-01-01T00:00:00Z", "truth") for i, g in rows])
    return path


@pytest.fixture(scope="module")
def graded_run(full_run, region: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the test scan with grades from the region's truth (A lens, X not)."""
    run = tmp_path_factory.mktemp("graded") / "run"
    shutil.copytree(full_run.run_dir, run)
    truth = pq.read_table(region / "truth.parquet").to_pydict()
    is_lens = dict(zip(truth["object_id"], truth["is_lens"], strict=True))
    ids = _stored_ids(run)
    _write_grades(run / "grades.csv", [(int(i), "A" if is_lens[int(i)] else "X") for i in ids])
    return run


def test_grades_last_row_wins_and_c_is_left_out(graded_run: Path, tmp_path: Path):
    ids = _stored_ids(graded_run)
    rows = [(int(i), "X") for i in ids[:6]] + [(int(ids[0]), "a"), (int(ids[1]), "C")]
    rows += [(int(ids[2]), "B")]
    grades = _write_grades(tmp_path / "g.csv", rows)
    assert read_grades(grades)[int(ids[0])] == "A"
    labelled = build_labelled_set(graded_run, grades)
    assert int(ids[1]) not in labelled.object_id.tolist()
    assert labelled.record["counts"] == {
        "A": 1, "B": 1, "X": 3, "random": 0, "injection": 0, "C_left_out": 1
    }  # fmt: skip
    by_id = dict(zip(labelled.object_id.tolist(), labelled.weight.tolist(), strict=True))
    assert by_id[int(ids[2])] == DEFAULT_WEIGHTS["B"] == 0.5
    assert labelled.record["labels_sha256"] == sha256_of(grades)
    # the images are the store's cutouts of those ids, in counts
    store = graded_run / STORE_NAME
    sid, simg = read_shard_cutouts(store, list_shards(store)[0])
    k = np.flatnonzero(labelled.object_id == sid[0])
    if len(k):
        np.testing.assert_array_equal(labelled.images[k[0]], simg[0])


def test_random_objects_are_ungraded_non_candidates(graded_run: Path, tmp_path: Path):
    ids = _stored_ids(graded_run)
    grades = _write_grades(tmp_path / "g.csv", [(int(i), "A") for i in ids[:2]])
    labelled = build_labelled_set(graded_run, grades, n_random=5, seed=1)
    rnd = labelled.object_id[labelled.origin == "random"]
    cands = set(pq.read_table(graded_run / "candidates.parquet")["object_id"].to_pylist())
    assert len(rnd) == min(5, len(set(ids.tolist()) - cands - set(ids[:2].tolist())))
    assert not set(rnd.tolist()) & (cands | set(ids[:2].tolist()))
    assert not labelled.is_lens[labelled.origin == "random"].any()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no grades file"),
        ("unknown", "not in"),
        ("no_store", "no cutout store"),
        ("one_class", "needs at least"),
        ("bad_grade", "is not A, B, C or X"),
        ("resume", "does not resume"),
    ],
)
def test_bad_labels_are_one_line_errors(graded_run: Path, tmp_path: Path, capsys, case, message):
    run, grades = graded_run, graded_run / "grades.csv"
    ids = _stored_ids(graded_run)
    if case == "missing":
        grades = tmp_path / "none.csv"
    elif case == "unknown":
        grades = _write_grades(tmp_path / "g.csv", [(int(ids[0]), "A"), (987654321, "X")])
    elif case == "no_store":
        run = tmp_path / "run"
        run.mkdir()
    elif case == "one_class":  # one lens: none left for training beside validation
        rows = [(int(ids[0]), "A")] + [(int(i), "X") for i in ids[1:8]]
        grades = _write_grades(tmp_path / "g.csv", rows)
    elif case == "bad_grade":
        grades = _write_grades(tmp_path / "g.csv", [(int(ids[0]), "maybe")])
    extra = ["--resume"] if case == "resume" else []
    code, _ = run_cli("train", "--finetune", "des_y3", "--labels", str(grades), "--run", str(run),
                      "--out", str(tmp_path / "out"), "--epochs", "1", "--quiet",
                      *extra)  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err
    assert not (tmp_path / "out" / "model_card.json").exists()


def test_finetune_writes_a_model_a_scan_runs(
    graded_run: Path, region: Path, tmp_path: Path, tiny_set: Path
):
    out = tmp_path / "ft"
    code, text = run_cli(
        "train", "--finetune", "des_y3", "--labels", str(graded_run / "grades.csv"),
        "--run", str(graded_run), "--out", str(out), "--epochs", "1", "--random", "0",
        "--freeze", "features", "--threads", "1", "--test-set", str(tiny_set), "--quiet",
    )  # fmt: skip
    assert code == 0, text
    card = json.loads((out / "model_card.json").read_text())
    assert card["test_set"]["n"] == 96 and 0 <= card["test_metrics"]["auroc"] <= 1
    parent = resolve_model("des_y3", "")
    ft = card["training"]["finetune"]
    weights_sha = parent.raw["torch_weights"]["sha256"]
    assert ft["parent"] == {
        "name": "des_y3", "sha256": parent.sha256, "torch_weights_sha256": weights_sha
    }  # fmt: skip
    assert ft["labels_sha256"] == sha256_of(graded_run / "grades.csv")
    n = len(_stored_ids(graded_run))
    assert ft["counts"]["A"] + ft["counts"]["X"] == n and ft["frozen"] == ["features"]
    assert card["parity"]["max_abs_diff"] < 1e-5
    # frozen features: those weights are the parent's, the head's are not
    with np.load(out / "weights.npz") as new, np.load(parent.directory / "weights.npz") as old:
        feats = [k for k in new.files if k.startswith("features.")]
        assert all(np.array_equal(new[k], old[k]) for k in feats)
        assert not all(np.array_equal(new[k], old[k]) for k in new.files if k.startswith("head"))
    # the exported model is what a scan takes
    result = run_scan(ScanConfig(data_dir=region, model=str(out), out=tmp_path / "scan",
                                 workers=0, quiet=True, inject_rate=0.0))  # fmt: skip
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["model_sha256"] == load_card(out).sha256 == card["sha256"]
    assert summary["n_scored"] == n


def test_three_grades_as_in_an_inspection_session(graded_run: Path, tmp_path: Path):
    """a, a, x in engine inspect: three rows; the default random non-candidates do the rest."""
    stored = _stored_ids(graded_run)
    cands = pq.read_table(graded_run / "candidates.parquet")["object_id"].to_pylist()
    other = next(int(i) for i in stored[::-1] if int(i) not in cands[:2])
    rows = [(int(cands[0]), "A"), (int(cands[1]), "A"), (other, "X")]
    grades = _write_grades(tmp_path / "grades.csv", rows)
    out = tmp_path / "ft"
    code, text = run_cli("train", "--finetune", "des_y3", "--labels", str(grades),
                         "--run", str(graded_run), "--out", str(out), "--epochs", "1",
                         "--quiet")  # fmt: skip
    assert code == 0, text
    counts = json.loads((out / "model_card.json").read_text())["training"]["finetune"]["counts"]
    assert counts["A"] == 2 and counts["X"] == 1 and counts["random"] > 0
    assert load_card(out).sha256 == sha256_of(out / "model.onnx")


def test_too_few_labels_raise(graded_run: Path, tmp_path: Path):
    ids = _stored_ids(graded_run)
    grades = _write_grades(tmp_path / "g.csv", [(int(ids[0]), "A")])
    with pytest.raises(LabelError):
        build_labelled_set(tmp_path, grades)
