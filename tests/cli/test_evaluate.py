"""``engine evaluate``: a model on a labelled simulated set, end to end through the CLI."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.dataset import read_dataset
from lensfind.testing import NO_TORCH, make_test_model, run_cli
from lensfind.training.evaluate import by_kind
from lensfind.training.metrics import evaluate_all

METRIC_KEYS = {"auroc", "tpr0", "tpr10", "fbeta", "precision", "recall", "n", "n_lenses"}


@pytest.fixture(scope="module")
def des_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "des.zarr"
    code, text = run_cli("simulate", "--survey", "des_y3", "--n", "48", "--seed", "11",
                         "--out", str(out), "--quiet")  # fmt: skip
    assert code == 0, text
    return out


def _run_without_torch(*argv: str) -> subprocess.CompletedProcess:
    """``engine *argv`` in a fresh interpreter where importing torch fails."""
    code = (
        NO_TORCH
        + f"""
from lensfind.cli.main import main
rc = main({list(argv)!r})
assert "torch" not in sys.modules
sys.exit(rc)
"""
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_shipped_model_on_a_set_without_torch(des_set, tmp_path):
    out = tmp_path / "eval"
    done = _run_without_torch("evaluate", "--model", "des_y3", "--set", str(des_set),
                              "--out", str(out), "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "AUROC" in done.stdout and "TPR0" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    for name in ("roc.png", "fbeta_threshold.png", "scores.parquet"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the numbers, recomputed here from the set and the scorer
    data, _ = read_dataset(des_set)
    card = resolve_model("des_y3", "des_y3")
    scores = OnnxScorer(card)(data.images)
    want = evaluate_all(data.truth["is_lens"], scores, card.threshold)
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(want[key], abs=1e-6), key
    from sklearn.metrics import roc_auc_score

    assert metrics["auroc"] == pytest.approx(roc_auc_score(data.truth["is_lens"], scores), 1e-9)
    assert metrics["model"]["sha256"] == card.sha256 and metrics["set"]["n"] == 48
    table = pq.read_table(out / "scores.parquet").to_pydict()
    np.testing.assert_allclose(table["score"], scores, rtol=1e-6)
    assert table["kind"] == list(data.truth["kind"])
    # per kind: every object once, lens kinds with a recall, the others with an FPR
    kinds = metrics["by_kind"]
    assert set(kinds) == set(data.truth["kind"])
    assert sum(k["n"] for k in kinds.values()) == 48
    lens = kinds["lens"]
    is_lens, kind = data.truth["is_lens"], data.truth["kind"]
    assert lens["n_lenses"] == lens["n"] == int(is_lens.sum())
    assert lens["recall"] == pytest.approx(metrics["recall"])
    assert lens["auroc_vs_non_lenses"] == pytest.approx(metrics["auroc"])
    for name, row in kinds.items():
        if name != "lens":
            sel = kind == name
            assert row["false_positive_rate"] == pytest.approx((scores[sel] >= 0.5).mean())


def test_a_directory_model_with_its_own_band_order_and_minmax(des_set, tmp_path):
    model = make_test_model(tmp_path / "m", bands=("i", "z", "g", "r"), normalisation="minmax",
                            band_weights=(1.0, -2.0, 0.5, 3.0))  # fmt: skip
    code, text = run_cli("evaluate", "--model", str(model), "--set", str(des_set), "--out",
                         str(tmp_path / "e"), "--threshold", "0.3", "--beta", "0.5")  # fmt: skip
    assert code == 0, text
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    data, attrs = read_dataset(des_set)
    scores = OnnxScorer(load_card(model))(np.ascontiguousarray(data.images[:, [2, 3, 0, 1]]))
    want = evaluate_all(data.truth["is_lens"], scores, 0.3, 0.5)
    assert metrics["fbeta"] == pytest.approx(want["fbeta"]) and metrics["threshold"] == 0.3
    assert metrics["auroc"] == pytest.approx(want["auroc"], abs=1e-9)
    assert metrics["model"]["normalisation"] == {"kind": "minmax"}
    assert metrics["model"]["bands"] == ["i", "z", "g", "r"]
    assert metrics["set"]["bands"] == list(attrs["bands"])


def test_mismatched_inputs_are_one_line_errors(des_set, tmp_path, capsys):
    from lensfind.cli.main import main

    kids = make_test_model(tmp_path / "kids", survey="kids_dr3")
    code = main(["evaluate", "--model", str(kids), "--set", str(des_set), "--out",
                 str(tmp_path / "x")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "101x101 px" in err and "100x100 px" in err
    assert main(["evaluate", "--model", "des_y3", "--set", str(tmp_path / "none.zarr"),
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "none.zarr: no such file or directory" in capsys.readouterr().err


def test_by_kind_against_a_direct_count():
    is_lens = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    kind = np.array(["lens", "lens", "compound_arc", "star", "star", "pair", "pair", "pair"])
    scores = np.array([0.9, 0.4, 0.7, 0.8, 0.1, 0.2, 0.3, 0.6])
    got = by_kind(is_lens, kind, scores, 0.5)
    # lenses 0.9 and 0.4 against the non-lenses: above 5 and 3 of 5 -> 8 / 10 pairs
    assert got["lens"] == {"n": 2, "n_lenses": 2, "mean_score": pytest.approx(0.65),
                           "called_lens_fraction": 0.5, "recall": 0.5,
                           "auroc_vs_non_lenses": pytest.approx(0.8)}  # fmt: skip
    # one compound arc at 0.7 against non-lenses 0.8, 0.1, 0.2, 0.3, 0.6: above 4 of 5
    assert got["compound_arc"]["auroc_vs_non_lenses"] == pytest.approx(0.8)
    assert got["star"]["false_positive_rate"] == 0.5
    assert got["pair"]["false_positive_rate"] == pytest.approx(1 / 3)
    assert "recall" not in got["pair"]
