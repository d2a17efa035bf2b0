"""lensfind.training.metrics against independent references (scipy, brute force, numpy)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from lensfind.training.metrics import auroc, confusion_at, evaluate, roc_curve, tpr_at_fpr


def _random_set(seed: int, n: int = 200, levels: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Labels with both classes and scores with many ties (few distinct levels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, levels, n) / levels + 0.1 * labels * rng.integers(0, 2, n)
    return labels, scores


def _reference_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    u = mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (len(pos) * len(neg))


labelled_scores = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 5).map(lambda k: k / 5), min_size=n, max_size=n),
    )
)


@settings(max_examples=100, deadline=None)
@given(labelled_scores)
def test_auroc_equals_mann_whitney_u(data):
    labels, scores = np.array(data[0]), np.array(data[1], dtype=float)
    if labels.all() or not labels.any():
        with pytest.raises(ValueError):
            auroc(labels, scores)
        return
    assert abs(auroc(labels, scores) - _reference_auroc(labels, scores)) <= 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_mann_whitney_u_with_ties(seed):
    labels, scores = _random_set(seed)
    assert len(np.unique(scores)) < len(scores) // 4  # plenty of ties
    assert abs(auroc(labels, scores) - _reference_auroc(labels, scores)) <= 1e-12


def test_auroc_of_continuous_scores():
    rng = np.random.default_rng(42)
    labels = rng.integers(0, 2, 1000)
    scores = rng.normal(size=1000) + labels
    assert abs(auroc(labels, scores) - _reference_auroc(labels, scores)) <= 1e-12


def test_auroc_perfect_and_inverted():
    labels = np.array([0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(labels, np.full(4, 0.5)) == 0.5


@pytest.mark.parametrize("seed", range(3))
def test_roc_curve_endpoints_and_monotone(seed):
    labels, scores = _random_set(seed)
    fpr, tpr, thr = roc_curve(labels, scores)
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert thr[0] == np.inf
    assert np.all(np.diff(fpr) >= 0)
    assert np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thr) < 0)  # distinct thresholds, descending
    # one point per distinct score, plus the (0, 0) start
    assert len(thr) == len(np.unique(scores)) + 1
    # each point is the classifier score >= threshold
    for f, t, th in zip(fpr[1:], tpr[1:], thr[1:], strict=True):
        pred = scores >= th
        assert f == (pred & (labels == 0)).sum() / (labels == 0).sum()
        assert t == (pred & (labels == 1)).sum() / (labels == 1).sum()


def _brute_tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    pos, neg = labels == 1, labels == 0
    best = 0.0  # the threshold +inf: nothing predicted positive
    for th in np.unique(scores):
        pred = scores >= th
        fpr = (pred & neg).sum() / neg.sum()
        if fpr <= max_fpr:
            best = max(best, (pred & pos).sum() / pos.sum())
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_fpr", [0.0, 1e-3, 0.01, 0.1, 0.3, 1.0])
def test_tpr_at_fpr_brute_force(seed, max_fpr):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + 1.5 * labels, 1)  # continuous-ish with ties
    assert tpr_at_fpr(labels, scores, max_fpr) == pytest.approx(
        _brute_tpr_at_fpr(labels, scores, max_fpr), abs=1e-15
    )


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.3, 0.5, 0.5714285714285714, 1.0, 2.0])
def test_confusion_at_counts(threshold):
    labels, scores = _random_set(3)
    got = confusion_at(labels, scores, threshold)
    y = labels.astype(bool)
    p = scores >= threshold
    tp, fp = int(np.sum(p & y)), int(np.sum(p & ~y))
    fn, tn = int(np.sum(~p & y)), int(np.sum(~p & ~y))
    assert (got["tp"], got["fp"], got["fn"], got["tn"]) == (tp, fp, fn, tn)
    assert tp + fp + fn + tn == len(labels)
    assert got["threshold"] == threshold
    assert got["accuracy"] == pytest.approx((tp + tn) / len(labels))
    assert got["recall"] == pytest.approx(tp / (tp + fn))
    if tp + fp:
        assert got["precision"] == pytest.approx(tp / (tp + fp))
    else:
        assert np.isnan(got["precision"])


def test_evaluate_keys_and_values():
    labels, scores = _random_set(1)
    out = evaluate(labels, scores, threshold=0.5)
    assert set(out) == {
        "n",
        "n_lenses",
        "auroc",
        "tpr_at_fpr_1e-3",
        "tpr_at_fpr_1e-2",
        "threshold",
        "tp",
        "fp",
        "fn",
        "tn",
        "accuracy",
        "precision",
        "recall",
    }
    assert out["n"] == len(labels)
    assert out["n_lenses"] == int(labels.sum())
    assert out["auroc"] == auroc(labels, scores)
    assert out["tpr_at_fpr_1e-2"] == tpr_at_fpr(labels, scores, 1e-2)
    assert out["tp"] == confusion_at(labels, scores, 0.5)["tp"]


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="differ in length"):
        auroc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError):
        confusion_at(np.array([0, 1]), np.array([0.1, 0.2, 0.3]), 0.5)
    with pytest.raises(ValueError):
        evaluate(np.array([0, 1]), np.array([0.1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(bad):
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.1, bad, 0.3, 0.9])
    with pytest.raises(ValueError, match="NaN or inf"):
        auroc(labels, scores)
    with pytest.raises(ValueError):
        roc_curve(labels, scores)
    with pytest.raises(ValueError):
        tpr_at_fpr(labels, scores, 0.1)
    with pytest.raises(ValueError):
        evaluate(labels, scores)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_auroc_raises(label):
    labels = np.full(5, label)
    scores = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="both lenses and non-lenses"):
        auroc(labels, scores)
    with pytest.raises(ValueError):
        evaluate(labels, scores)
