"""Classification metrics for lens finding (numpy only; no torch needed).

``scores`` are lens probabilities, ``labels`` are 1 for lenses and 0 otherwise.
"""

import numpy as np


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    return labels, scores


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (descending).

    Returns ``fpr, tpr, thresholds``; the first point is ``(0, 0)`` at ``+inf``.
    """
    labels, scores = _check(labels, scores)
    if labels.all() or not labels.any():
        raise ValueError("a ROC curve needs both lenses and non-lenses")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return (
        np.r_[0.0, fps / n_neg],
        np.r_[0.0, tps / n_pos],
        np.r_[np.inf, s[distinct]],
    )


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """Highest true-positive rate reached with false-positive rate <= ``max_fpr``."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= max_fpr].max())


def purity_at_completeness(
    labels: np.ndarray, scores: np.ndarray, completeness: float
) -> tuple[float, float]:
    """Purity (precision) and threshold of ``score >= t`` at the highest ``t`` whose
    completeness (recall of the lenses) reaches ``completeness``.

    Returns ``(purity, t)``; both fractions, dimensionless.
    """
    labels, scores = _check(labels, scores)
    if not labels.any():
        raise ValueError("purity at fixed completeness needs lenses")
    if not 0 < completeness <= 1:
        raise ValueError(f"completeness must be in (0, 1], got {completeness}")
    k = int(np.ceil(completeness * labels.sum() - 1e-9))  # lenses that must pass
    t = float(np.sort(scores[labels])[::-1][k - 1])
    pred = scores >= t
    return float((pred & labels).sum() / pred.sum()), t


def confusion_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Counts and rates of the classifier ``score >= threshold``."""
    labels, scores = _check(labels, scores)
    pred = scores >= threshold
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    tn = int((~pred & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "accuracy": (tp + tn) / labels.size,
        "precision": precision,
        "recall": recall,
    }


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The held-out report used in model cards: AUROC, precision/recall at
    ``threshold``, and TPR at FPR = 1e-3 and 1e-2."""
    labels, scores = _check(labels, scores)
    out: dict[str, float] = {
        "n": int(labels.size),
        "n_lenses": int(labels.sum()),
        "auroc": auroc(labels, scores),
        "tpr_at_fpr_1e-3": tpr_at_fpr(labels, scores, 1e-3),
        "tpr_at_fpr_1e-2": tpr_at_fpr(labels, scores, 1e-2),
    }
    out.update({k: v for k, v in confusion_at(labels, scores, threshold).items()})
    return out


# --- Scores at a decision threshold ----------------------------------------------
# A cutout is predicted a lens when ``score >= threshold`` (as in confusion_at).
# Where a ratio has a zero denominator the functions return ``zero_division``
# (0.0 by default, as scikit-learn with ``zero_division=0``; pass ``nan`` to see it).

#: van Lohuizen 2021 sec. 3.5.1: beta of the F-beta score (precision over recall).
DEFAULT_BETA = 0.17


def _counts(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, ...]:
    labels, scores = _check(labels, scores)
    pred = scores >= threshold
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    return tp, fp, fn, labels.size - tp - fp - fn


def _ratio(num: float, den: float, zero_division: float) -> float:
    return num / den if den else float(zero_division)


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of correct calls, ``(TP + TN) / N`` (vL eq. 3.20)."""
    tp, _, _, tn = _counts(labels, scores, threshold)
    n = np.asarray(labels).size
    if n == 0:
        raise ValueError("accuracy of an empty set")
    return (tp + tn) / n


def precision(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, zero_division: float = 0.0
) -> float:
    """Purity ``TP / (TP + FP)`` (vL eq. 3.6); ``zero_division`` when nothing is called a lens."""
    tp, fp, _, _ = _counts(labels, scores, threshold)
    return _ratio(tp, tp + fp, zero_division)


def recall(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, zero_division: float = 0.0
) -> float:
    """Completeness (TPR) ``TP / (TP + FN)`` (vL eq. 3.7); ``zero_division`` without lenses."""
    tp, _, fn, _ = _counts(labels, scores, threshold)
    return _ratio(tp, tp + fn, zero_division)


def _fbeta_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float) -> np.ndarray:
    # (1 + b^2) Pr Re / (b^2 Pr + Re), written with counts: defined (0) when
    # TP = 0 but FP + FN > 0, undefined only when TP = FP = FN = 0.
    b2 = beta * beta
    den = (1 + b2) * tp + b2 * fn + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((1 + b2) * tp / den, dtype=float)


def fbeta(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    beta: float = DEFAULT_BETA,
    zero_division: float = 0.0,
) -> float:
    """F-beta score ``(1 + b^2) Pr Re / (b^2 Pr + Re)`` (vL eq. 3.18).

    ``beta < 1`` weights precision more than recall; the default 0.17 is vL's.
    Computed from counts, ``(1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``, as
    scikit-learn does: 0 when there are no true positives, ``zero_division``
    only when there are neither lenses nor lens calls.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, not {beta}")
    tp, fp, fn, _ = _counts(labels, scores, threshold)
    if tp + fp + fn == 0:
        return float(zero_division)
    return float(_fbeta_from_counts(np.array(tp), np.array(fp), np.array(fn), beta))


def f1(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, zero_division: float = 0.0
) -> float:
    """F1 score, the harmonic mean of precision and recall (vL eq. 3.8)."""
    return fbeta(labels, scores, threshold, beta=1.0, zero_division=zero_division)


def fbeta_curve(
    labels: np.ndarray,
    scores: np.ndarray,
    beta: float = DEFAULT_BETA,
    n_thresholds: int = 101,
    zero_division: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """F-beta at equally spaced thresholds on [0, 1] (vL sec. 3.5.1).

    Returns ``thresholds, fbeta``: ``np.linspace(0, 1, n_thresholds)`` (step
    0.01 by default; vL do not state theirs) and the F-beta of the classifier
    ``score >= threshold`` at each, ``zero_division`` where it is undefined.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, not {beta}")
    if n_thresholds < 2:
        raise ValueError(f"an F-beta curve needs at least 2 thresholds, not {n_thresholds}")
    labels, scores = _check(labels, scores)
    thresholds = np.linspace(0.0, 1.0, n_thresholds)
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")  # scores >= t
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    fn = pos.size - tp
    f = _fbeta_from_counts(tp, fp, fn, beta)
    f[(tp + fp + fn) == 0] = zero_division
    return thresholds, f


def fbeta_curve_mean(
    labels: np.ndarray,
    scores: np.ndarray,
    beta: float = DEFAULT_BETA,
    n_thresholds: int = 101,
    zero_division: float = 0.0,
) -> float:
    """Mean of the F-beta curve, vL's indicator of the area under it (eq. 3.21).

    The mean over the ``n_thresholds`` thresholds of :func:`fbeta_curve`, as the
    text of vL sec. 3.5.1 describes ("divide by the number of decision
    thresholds"); eq. 3.21 as printed divides the S + 1 terms by S.
    """
    _, f = fbeta_curve(labels, scores, beta, n_thresholds, zero_division)
    return float(f.mean())


# --- Metcalf et al. 2019 (Euclid/Bologna lens-finding challenge) -------------------


def tpr_before_false_positives(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """TPR at the highest threshold that lets through fewer than ``k`` non-lenses.

    The fraction of lenses scored strictly above the ``k``-th highest non-lens
    score, i.e. the completeness reached before the ``k``-th false positive.
    Ties: a lens whose score equals that non-lens score is *not* counted (no
    threshold separates the two), so ties count against the finder. With fewer
    than ``k`` non-lenses every lens counts (1.0).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    labels, scores = _check(labels, scores)
    if not labels.any():
        raise ValueError("a true-positive rate needs at least one lens")
    neg = scores[~labels]
    if neg.size < k:
        return 1.0
    kth = np.partition(neg, neg.size - k)[neg.size - k]  # k-th highest non-lens score
    return float((scores[labels] > kth).mean())


def tpr0(labels: np.ndarray, scores: np.ndarray) -> float:
    """TPR0 of Metcalf+19: the fraction of lenses above the highest-scoring non-lens.

    Equals ``tpr_at_fpr(labels, scores, 0.0)``; ties with that non-lens do not count.
    """
    return tpr_before_false_positives(labels, scores, 1)


def tpr10(labels: np.ndarray, scores: np.ndarray) -> float:
    """TPR10 of Metcalf+19: the TPR before the tenth false positive (at most 9).

    The fraction of lenses above the 10th-highest non-lens score; ties with it
    do not count; 1.0 with fewer than 10 non-lenses.
    """
    return tpr_before_false_positives(labels, scores, 10)


# --- van Lohuizen 2021 sec. 3.5.2 and the model-card report ----------------------------


def soft_fbeta(labels: np.ndarray, scores: np.ndarray, beta: float = DEFAULT_BETA) -> float:
    """Soft F-beta metric (vL sec. 3.5.2): F-beta of the *soft* counts.

    ``TP = sum(p y)``, ``FP = sum(p (1 - y))``, ``FN = sum((1 - p) y)`` (vL eqs.
    3.9-3.11) in ``(1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``; one minus the
    soft F-beta loss evaluated on the whole set. 0 when all three counts are 0.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, not {beta}")
    labels, scores = _check(labels, scores)
    y = labels.astype(float)
    tp, fp, fn = (scores * y).sum(), (scores * (1 - y)).sum(), ((1 - scores) * y).sum()
    den = (1 + beta**2) * tp + beta**2 * fn + fp
    return float((1 + beta**2) * tp / den) if den > 0 else 0.0


def evaluate_all(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, beta: float = DEFAULT_BETA
) -> dict[str, float]:
    """:func:`evaluate` plus the lens-finding scores a model card reports.

    Adds ``f1`` and ``fbeta`` at ``threshold`` (``beta``), ``fbeta_curve_mean``
    (vL eq. 3.21), ``soft_fbeta`` (vL sec. 3.5.2) and Metcalf+19's ``tpr0`` and
    ``tpr10``.
    """
    out = evaluate(labels, scores, threshold)
    out.update(
        {
            "beta": float(beta),
            "f1": f1(labels, scores, threshold),
            "fbeta": fbeta(labels, scores, threshold, beta),
            "fbeta_curve_mean": fbeta_curve_mean(labels, scores, beta),
            "soft_fbeta": soft_fbeta(labels, scores, beta),
            "tpr0": tpr0(labels, scores),
            "tpr10": tpr10(labels, scores),
        }
    )
    return out
