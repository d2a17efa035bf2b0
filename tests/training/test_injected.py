"""The scan's injected lenses, re-rendered from its stored hosts, are the scan's copies."""

from pathlib import Path

import numpy as np
import pytest

from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.surveys import get_survey
from lensfind.training.injected import injection_shards, rerender_injections, usable_injections
from lensfind.training.labels import build_labelled_set, read_store_rows


def test_rerendered_copies_score_as_the_scan_scored_them(full_run, model_dir: Path):
    run = full_run.run_dir
    shards = injection_shards(run)
    assert shards, "the test scan injects lenses"
    inj = rerender_injections(run, shards)
    assert len(inj.object_id) == full_run.summary["selection_function"]["n_injected"]
    scorer = OnnxScorer(load_card(model_dir), input_bands=get_survey("des_y3").band_names)
    got = scorer(inj.images.copy())
    ok = np.isfinite(inj.scan_score)
    assert ok.sum() > 0
    # the hosts come from the float16 store: the copies agree to its rounding
    np.testing.assert_allclose(got[ok], inj.scan_score[ok], atol=2e-3)
    # and they are not the hosts: a source was added to every copy
    ids, stamps, _ = read_store_rows(run / "cutouts.zarr", set(inj.object_id.tolist()))
    where = {int(i): k for k, i in enumerate(ids)}
    added = inj.images - stamps[[where[int(i)] for i in inj.object_id]]
    assert (added.reshape(len(added), -1).max(axis=1) > 0).all()


def test_injections_join_the_labelled_set_as_lenses(full_run, tmp_path: Path):
    run = full_run.run_dir
    usable = usable_injections(run)
    grades = tmp_path / "g.csv"
    grades.write_text("object_id,grade\n")
    labelled = build_labelled_set(run, grades, n_injections=3, seed=2)
    inj = labelled.origin == "injection"
    assert inj.sum() == min(3, len(usable)) == labelled.record["counts"]["injection"]
    assert labelled.is_lens[inj].all() and (labelled.weight[inj] == 0.5).all()
    again = build_labelled_set(run, grades, n_injections=3, seed=2)
    np.testing.assert_array_equal(again.images, labelled.images)


def test_a_run_without_injections(full_run, tmp_path: Path):
    import shutil

    from lensfind.training.labels import LabelError

    run = tmp_path / "run"
    shutil.copytree(full_run.run_dir, run)
    shutil.rmtree(run / "injections")
    grades = tmp_path / "g.csv"
    grades.write_text("object_id,grade\n")
    with pytest.raises(LabelError, match="no scored injections"):
        build_labelled_set(run, grades, n_injections=2)
