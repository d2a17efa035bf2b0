"""Training plots (matplotlib, Agg, no pyplot state): learning curves, ROC, F-beta.

Each function writes one PNG and returns its path.
"""

from pathlib import Path
from typing import Any

import numpy as np

from lensfind.training.metrics import DEFAULT_BETA, fbeta_curve, roc_curve

LEARNING_CURVES = "learning_curves.png"
ROC = "roc.png"
FBETA = "fbeta_threshold.png"


def _figure(width: float = 5.0, height: float = 3.6, ncols: int = 1) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def plot_learning_curves(history: list[dict[str, Any]], path: Path, select_by: str) -> Path:
    """Training and validation loss (left) and validation scores (right) per epoch."""
    fig, (ax_loss, ax_score) = _figure(ncols=2)
    epoch = [h["epoch"] for h in history]
    ax_loss.plot(epoch, [h["train_loss"] for h in history], "o-", label="training")
    ax_loss.plot(epoch, [h["val_loss"] for h in history], "s-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    for key in ("val_auroc", "val_accuracy", "val_fbeta", "fbeta_curve_mean", "soft_fbeta"):
        style = "-" if key == select_by else "--"
        ax_score.plot(epoch, [h[key] for h in history], style, marker=".", label=key)
    best = [h["epoch"] for h in history if h.get("selected")]
    if best:
        ax_score.axvline(best[-1], color="grey", lw=0.8, label=f"kept (by {select_by})")
    ax_score.set(xlabel="epoch", ylabel="score", title="validation")
    ax_score.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_score):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=110)
    return path


def plot_roc(labels: np.ndarray, scores: np.ndarray, path: Path, title: str) -> Path:
    """ROC curve (log false-positive rate) with the AUROC in the legend."""
    from lensfind.training.metrics import auroc

    fpr, tpr, _ = roc_curve(labels, scores)
    fig, (ax,) = _figure()
    ax.plot(np.maximum(fpr, 1e-4), tpr, label=f"AUROC {auroc(labels, scores):.4f}")
    ax.set(xscale="log", xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.set_xlim(1e-4, 1)
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=110)
    return path


def plot_fbeta(
    labels: np.ndarray, scores: np.ndarray, path: Path, title: str, beta: float = DEFAULT_BETA
) -> Path:
    """F-beta, precision and recall against the decision threshold (vL Fig. 5.1)."""
    t, f = fbeta_curve(labels, scores, beta)
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    called = s[None, :] >= t[:, None]
    tp = (called & y).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(called.sum(1) > 0, tp / called.sum(1), np.nan)
    recall = tp / max(int(y.sum()), 1)
    fig, (ax,) = _figure()
    ax.plot(t, f, label=f"F-beta (beta {beta:g}), mean {f.mean():.3f}")
    ax.plot(t, precision, "--", label="precision")
    ax.plot(t, recall, ":", label="recall")
    ax.set(xlabel="decision threshold", ylabel="score", title=title, ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.savefig(path, dpi=110)
    return path
