"""lensfind.training.metrics against independent references (scipy, brute force, numpy)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from lensfind.training.metrics import (
    DEFAULT_BETA,
    accuracy,
    auroc,
    confusion_at,
    evaluate,
    f1,
    fbeta,
    fbeta_curve,
    fbeta_curve_mean,
    precision,
    recall,
    roc_curve,
    tpr0,
    tpr10,
    tpr_at_fpr,
    tpr_before_false_positives,
)


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


# --- threshold metrics against scikit-learn -------------------------------------------

THRESHOLDS = [0.0, 0.2, 0.5, 0.5714285714285714, 0.9, 1.5]


def _sk():
    return pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_threshold_metrics_match_sklearn(seed, threshold):
    sk = _sk()
    labels, scores = _random_set(seed)
    pred = (scores >= threshold).astype(int)
    assert accuracy(labels, scores, threshold) == pytest.approx(
        sk.accuracy_score(labels, pred), abs=1e-15
    )
    kw = {"zero_division": 0.0}
    assert precision(labels, scores, threshold) == pytest.approx(
        sk.precision_score(labels, pred, **kw), abs=1e-15
    )
    assert recall(labels, scores, threshold) == pytest.approx(
        sk.recall_score(labels, pred, **kw), abs=1e-15
    )
    assert f1(labels, scores, threshold) == pytest.approx(
        sk.f1_score(labels, pred, **kw), abs=1e-12
    )
    for beta in (DEFAULT_BETA, 0.5, 2.0):
        assert fbeta(labels, scores, threshold, beta=beta) == pytest.approx(
            sk.fbeta_score(labels, pred, beta=beta, **kw), abs=1e-12
        )


@pytest.mark.parametrize("seed", range(3))
def test_auroc_matches_sklearn(seed):
    sk = _sk()
    labels, scores = _random_set(seed)
    assert auroc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)


def test_threshold_metrics_zero_division():
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    # nothing called a lens at threshold 0.9: precision undefined, recall and F 0
    assert precision(labels, scores, 0.9) == 0.0
    assert np.isnan(precision(labels, scores, 0.9, zero_division=np.nan))
    assert recall(labels, scores, 0.9) == 0.0
    assert f1(labels, scores, 0.9) == 0.0
    # no lenses and no lens calls: F undefined
    none = np.zeros(4)
    assert fbeta(none, scores, 0.9) == 0.0
    assert np.isnan(fbeta(none, scores, 0.9, zero_division=np.nan))
    assert np.isnan(recall(none, scores, 0.9, zero_division=np.nan))
    with pytest.raises(ValueError, match="beta"):
        fbeta(labels, scores, beta=0.0)


def test_threshold_metrics_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.7, 0.3, 0.8, 0.6, 0.2, 0.1, 0.5])
    # threshold 0.5 (>=): called 0.9, 0.7, 0.8, 0.6, 0.5 -> TP 2, FP 3, FN 1, TN 2
    assert accuracy(labels, scores) == 4 / 8
    assert precision(labels, scores) == 2 / 5
    assert recall(labels, scores) == 2 / 3
    assert f1(labels, scores) == pytest.approx(2 * (2 / 5) * (2 / 3) / (2 / 5 + 2 / 3))
    b2 = 0.17**2
    expected = (1 + b2) * (2 / 5) * (2 / 3) / (b2 * 2 / 5 + 2 / 3)
    assert fbeta(labels, scores) == pytest.approx(expected)


# --- the F-beta curve (vL sec. 3.5.1) ---------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_fbeta_curve_matches_sklearn_pointwise(seed):
    sk = _sk()
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 150)
    scores = np.round(np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1), 2)  # ties on grid
    thresholds, curve = fbeta_curve(labels, scores, beta=0.17, n_thresholds=51)
    np.testing.assert_array_equal(thresholds, np.linspace(0, 1, 51))
    for t, f in zip(thresholds, curve, strict=True):
        pred = (scores >= t).astype(int)
        ref = sk.fbeta_score(labels, pred, beta=0.17, zero_division=0.0)
        assert f == pytest.approx(ref, abs=1e-12), t
    assert fbeta_curve_mean(labels, scores, 0.17, 51) == pytest.approx(curve.mean(), abs=1e-15)


def test_fbeta_curve_by_hand():
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.8, 0.6, 0.4, 0.0])
    t, f = fbeta_curve(labels, scores, beta=1.0, n_thresholds=5)  # 0, .25, .5, .75, 1
    # t=0: all called, P=1/2, R=1 -> F1 2/3; t=.25: TP 2 FP 1 -> 4/5; t=.5: perfect;
    # t=.75: TP 1 FN 1 -> 2/3; t=1: nothing called -> 0
    np.testing.assert_allclose(f, [2 / 3, 4 / 5, 1.0, 2 / 3, 0.0], rtol=1e-12)
    mean = fbeta_curve_mean(labels, scores, beta=1.0, n_thresholds=5)
    assert mean == pytest.approx((2 / 3 + 4 / 5 + 1 + 2 / 3) / 5)
    # defaults: 101 thresholds (step 0.01), beta 0.17
    t, f = fbeta_curve(labels, scores)
    assert t.size == 101 and t[1] == pytest.approx(0.01)
    assert fbeta_curve_mean(labels, scores) == pytest.approx(f.mean())
    with pytest.raises(ValueError):
        fbeta_curve(labels, scores, n_thresholds=1)


# --- TPR0 and TPR10 (Metcalf et al. 2019) --------------------------------------------


def test_tpr0_and_tpr10_by_hand():
    lens = np.array([0.99, 0.95, 0.90, 0.85, 0.60, 0.30])
    # 12 non-lenses: highest 0.92, 10th highest 0.50
    nonlens = np.array([0.92, 0.88, 0.80, 0.75, 0.70, 0.65, 0.58, 0.55, 0.52, 0.50, 0.2, 0.1])
    labels = np.r_[np.ones(6), np.zeros(12)]
    scores = np.r_[lens, nonlens]
    assert tpr0(labels, scores) == 2 / 6  # 0.99, 0.95 above 0.92
    assert tpr10(labels, scores) == 5 / 6  # all but 0.30 above 0.50
    assert tpr_before_false_positives(labels, scores, 3) == 4 / 6  # above 0.80


def test_tpr0_tpr10_ties_count_against_the_finder():
    # a lens tied with the highest non-lens is not counted: no threshold separates them
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.7, 0.7, 0.1])
    assert tpr0(labels, scores) == 0.5
    # ties among non-lenses at the 10th place: 0.4 is the 10th-highest score
    labels = np.r_[np.ones(3), np.zeros(12)]
    scores = np.r_[[0.95, 0.45, 0.40], [0.9] * 8, [0.4] * 4]
    assert tpr10(labels, scores) == 2 / 3
    # fewer than 10 non-lenses: no tenth false positive ever, every lens counts
    assert tpr10(np.array([1, 0, 0]), np.array([0.1, 0.5, 0.9])) == 1.0


def _brute_tpr_before(labels, scores, k):
    """Highest TPR over thresholds (score >= t, plus t = +inf) with < k false positives."""
    pos, neg = labels == 1, labels == 0
    best = 0.0
    for t in np.r_[np.unique(scores), np.inf]:
        pred = scores >= t
        if (pred & neg).sum() < k:
            best = max(best, (pred & pos).sum() / pos.sum())
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 10])
def test_tpr_before_false_positives_brute_force(seed, k):
    labels, scores = _random_set(seed, n=120)
    got = tpr_before_false_positives(labels, scores, k)
    assert got == pytest.approx(_brute_tpr_before(labels, scores, k), abs=1e-15)
    if k == 1:
        assert tpr0(labels, scores) == pytest.approx(tpr_at_fpr(labels, scores, 0.0), abs=1e-15)
    if k == 10:
        assert tpr10(labels, scores) == got


def test_tpr_before_false_positives_errors():
    with pytest.raises(ValueError, match="at least one lens"):
        tpr0(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="k must be"):
        tpr_before_false_positives(np.array([0, 1]), np.array([0.1, 0.2]), 0)
    with pytest.raises(ValueError, match="NaN or inf"):
        tpr10(np.array([0, 1]), np.array([np.nan, 0.2]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("completeness", [0.5, 0.8, 0.9, 1.0])
def test_purity_at_completeness_matches_sklearn(seed, completeness):
    from lensfind.training.metrics import purity_at_completeness

    sk = _sk()
    labels, scores = _random_set(seed)
    scores = np.round(scores, 2)  # ties
    prec, rec, thr = sk.precision_recall_curve(labels, scores)
    # the highest threshold whose recall reaches the completeness
    i = max(j for j in range(len(thr)) if rec[j] >= completeness)
    purity, t = purity_at_completeness(labels, scores, completeness)
    assert t == pytest.approx(thr[i]) and purity == pytest.approx(prec[i], abs=1e-12)
    assert recall(labels, scores, t) >= completeness
    with pytest.raises(ValueError, match="needs lenses"):
        purity_at_completeness(np.zeros(4), scores[:4], 0.5)
