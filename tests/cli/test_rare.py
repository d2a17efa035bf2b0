"""``engine probe rare`` end to end: Wilde+22 Table 6 classes on a tiny model."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.probes.rare import RARE_CLASSES, recall_row
from lensfind.testing import make_test_model


@pytest.fixture(scope="module")
def test_model(tmp_path_factory):
    return make_test_model(tmp_path_factory.mktemp("model") / "m", name="flux-model")


def test_recall_row_counts_and_interval():
    row = recall_row(np.array([0.1, 0.5, 0.7, 0.2]), 0.5)
    assert row["n"] == 4 and row["n_above"] == 2 and row["frac_above"] == 0.5
    assert row["ci_lo"] < 0.5 < row["ci_hi"]
    assert row["q50"] == pytest.approx(0.35)


def test_probe_rare_writes_a_consistent_table(tmp_path, test_model):
    out = tmp_path / "rare"
    args = ["probe", "rare", "--model", str(test_model), "--n", "12", "--seed", "3",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = pq.read_table(out / "rare.parquet").to_pylist()
    scores = pq.read_table(out / "rare_scores.parquet").to_pydict()
    assert [r["class"] for r in summary] == list(RARE_CLASSES)
    meta = json.loads((out / "rare.json").read_text())
    threshold = meta["thresholds"]["flux-model"]
    assert meta["threshold_source"] == "model card" and meta["n_per_class"] == 12
    assert len(meta["models"]["flux-model"]) == 64 and "numpy" in meta["versions"]
    s = np.asarray(scores["score"])
    cls = np.asarray(scores["class"])
    for r in summary:
        mine = s[cls == r["class"]]
        assert r["n"] == mine.size == 12
        assert 0.0 <= r["frac_above"] <= 1.0
        assert r["frac_above"] == pytest.approx((mine >= threshold).mean())
        assert r["ci_lo"] <= r["frac_above"] <= r["ci_hi"]
        assert r["mean_score"] == pytest.approx(mine.mean())
    kinds = np.asarray(scores["kind"])
    assert set(kinds[cls == "double_ring"]) == {"double_ring"}
    assert np.isfinite(np.asarray(scores["z_source2"], float)[cls == "compound_arc"]).all()
    for name in ("rare_recall.png", "rare_scores.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "| red_source |" in (out / "rare.md").read_text()
    # a threshold from the command line replaces the card's
    again = ["probe", "rare", "--model", str(test_model), "--n", "12", "--seed", "3",
             "--threshold", "0.0", "--out", str(tmp_path / "t0"), "--quiet"]  # fmt: skip
    assert main(again) == 0
    t0 = pq.read_table(tmp_path / "t0" / "rare.parquet").to_pylist()
    assert all(r["frac_above"] == 1.0 for r in t0)


def test_probe_rare_simulates_on_the_models_input_grid(tmp_path):
    """OU-66 takes Euclid on the NISP grid (0.3"/px, 66 px): the probe simulates there,
    not on the survey's mixed VIS/NISP grids (which no one grid can hold)."""
    out = tmp_path / "rare"
    args = ["probe", "rare", "--model", "ou66", "--survey", "euclid_wide", "--n", "6",
            "--seed", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = pq.read_table(out / "rare.parquet").to_pylist()
    assert [r["n"] for r in summary] == [6] * len(RARE_CLASSES)


def test_probe_of_models_on_different_grids_is_a_usage_error(tmp_path, test_model, capsys):
    args = ["probe", "blur", "--model", "ou66", "--model", str(test_model), "--survey",
            "euclid_wide", "--n", "4", "--out", str(tmp_path / "p"), "--quiet"]  # fmt: skip
    assert main(args) == 2
    assert "probe them separately" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
