"""Model selection and early stopping on the validation split (vL sec. 3.5).

After every epoch the network is scored on the validation split and the epoch
is kept when its ``select_by`` value improves on the best so far (strictly):

``val_auroc``         area under the ROC curve (maximised; lensfind's default);
``val_loss``          the training loss on the whole validation split (minimised;
                      for the soft F-scores the split is one batch);
``fbeta_curve_mean``  mean F-beta over thresholds 0, 0.01, ..., 1 (vL eq. 3.21);
``soft_fbeta``        F-beta of the soft counts (vL sec. 3.5.2).

Training stops early after ``patience`` epochs without improvement.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lensfind.training._torch import torch
from lensfind.training.config import SELECT_BY
from lensfind.training.metrics import (
    auroc,
    confusion_at,
    fbeta,
    fbeta_curve_mean,
    soft_fbeta,
)


def validation_metrics(
    labels: np.ndarray,
    logits: np.ndarray,
    loss_fn: Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"],
    beta: float,
) -> dict[str, float]:
    """Every selection criterion, plus accuracy/precision/recall/F-beta at 0.5.

    Parameters
    ----------
    labels : ndarray (N,)
        1 for lenses.
    logits : ndarray (N,)
        The network's lens logits on the validation split.
    loss_fn : callable
        The training loss (logits, targets) -> scalar.
    beta : float
        Beta of the F-beta scores.
    """
    z = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    with torch.no_grad():
        loss = float(loss_fn(z, y))
        p = torch.sigmoid(z).double().numpy()
    c = confusion_at(labels, p, 0.5)
    return {
        "val_loss": loss,
        "val_auroc": auroc(labels, p),
        "val_accuracy": c["accuracy"],
        "val_precision": c["precision"],
        "val_recall": c["recall"],
        "val_fbeta": fbeta(labels, p, 0.5, beta),
        "fbeta_curve_mean": fbeta_curve_mean(labels, p, beta),
        "soft_fbeta": soft_fbeta(labels, p, beta),
    }


@dataclass
class Selector:
    """Tracks the best epoch by one criterion, and the epochs since it improved.

    Attributes
    ----------
    criterion : str
        A key of :data:`lensfind.training.config.SELECT_BY`.
    patience : int
        Epochs without improvement before :attr:`should_stop` (0: never).
    """

    criterion: str
    patience: int = 0
    best: float | None = None
    best_epoch: int = 0
    since_best: int = 0

    def __post_init__(self) -> None:
        self.maximise = SELECT_BY[self.criterion]

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch's validation metrics; return whether it is the new best."""
        value = float(metrics[self.criterion])
        better = (
            self.best is None
            or (np.isfinite(value) and not np.isfinite(self.best))
            or (value > self.best if self.maximise else value < self.best)
        )
        if better:
            self.best, self.best_epoch, self.since_best = value, epoch, 0
        else:
            self.since_best += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.since_best >= self.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "since_best": self.since_best}

    def restore(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        self.since_best = int(state["since_best"])
