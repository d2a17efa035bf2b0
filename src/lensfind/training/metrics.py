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
