"""Training losses (torch): cross-entropies and the soft F-scores of van Lohuizen 2021.

Every loss takes **logits** (never probabilities) and targets, and returns a
scalar tensor to minimise:

* ``logits``: lens logits ``(N,)`` as returned by every model of
  :func:`lensfind.training.architectures.build_model` (``p_lens = sigmoid``);
  :func:`weighted_cross_entropy` also takes 2-way class logits ``(N, 2)``
  (index 0 non-lens, index 1 lens), as the Wilde+22 paper modules return.
* ``targets``: ``(N,)``, 1 for lenses and 0 otherwise (float or integer). The
  soft losses and :func:`binary_cross_entropy` accept soft labels in [0, 1].

The soft F-scores are batch-level ("macro", vL sec. 3.4.2): the soft counts
``TP = sum(p * y)``, ``FP = sum(p * (1 - y))``, ``FN = sum((1 - p) * y)``,
``TN = sum((1 - p) * (1 - y))`` (vL eqs. 3.9-3.12, ``p = sigmoid(logits)``) are
summed over the batch before the ratio is taken.
"""

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType

from lensfind.errors import ConfigError
from lensfind.training._torch import torch

Tensor = torch.Tensor
LossFn = Callable[..., Tensor]

#: vL eq. 3.13: added to the denominators of the soft F-scores.
SOFT_EPS = 1e-16
#: vL sec. 3.5.1: beta of the F-beta score (precision weighted over recall).
DEFAULT_BETA = 0.17


def _check_binary(logits: Tensor, targets: Tensor) -> Tensor:
    if logits.ndim != 1:
        raise ValueError(f"expected lens logits of shape (N,), got {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets {tuple(targets.shape)} and logits {tuple(logits.shape)} differ in shape"
        )
    return targets.to(logits.dtype)


def binary_cross_entropy(
    logits: Tensor, targets: Tensor, pos_weight: float | None = None
) -> Tensor:
    """Mean binary cross-entropy of lens logits (vL eq. 3.5).

    Parameters
    ----------
    logits : Tensor, shape (N,)
        Lens logits.
    targets : Tensor, shape (N,)
        1 for lenses, 0 otherwise (soft labels allowed).
    pos_weight : float, optional
        Weight of the lens term (``> 1`` up-weights the rarer lenses).

    Returns
    -------
    Tensor
        Scalar, the mean over the batch.
    """
    y = _check_binary(logits, targets)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits.dtype)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pw)


def weighted_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    class_weights: tuple[float, float] = (1.0, 1.0),
) -> Tensor:
    """Two-class cross-entropy with class weights (Wilde+22 eq. 2).

    Parameters
    ----------
    logits : Tensor, shape (N, 2) or (N,)
        Class logits (index 0 non-lens, 1 lens), or a lens logit ``d``, read as
        the class logits ``(0, d)`` (the softmax of which is ``sigmoid(d)``).
    targets : Tensor, shape (N,)
        Class indices: 1 for lenses, 0 otherwise.
    class_weights : (float, float)
        Weights of the non-lens and lens classes; Wilde+22 weight the loss to
        offset the class imbalance but do not give the weights (see
        :func:`balanced_class_weights`).

    Returns
    -------
    Tensor
        Scalar: ``sum_i w[y_i] * (-log p_i[y_i]) / sum_i w[y_i]`` (the weighted
        mean of ``torch.nn.functional.cross_entropy``).
    """
    if logits.ndim == 1:
        logits = torch.stack([torch.zeros_like(logits), logits], dim=1)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"expected logits of shape (N, 2) or (N,), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets {tuple(targets.shape)} do not match {logits.shape[0]} logits")
    w = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    return torch.nn.functional.cross_entropy(logits, targets.long(), weight=w)


def balanced_class_weights(targets: Tensor) -> tuple[float, float]:
    """Class weights ``N / (2 N_c)`` (non-lens, lens) that make both classes count equally."""
    y = targets.reshape(-1).bool()
    n_lens, n = int(y.sum()), y.numel()
    if n_lens in (0, n):
        raise ValueError("balanced class weights need both lenses and non-lenses")
    return n / (2 * (n - n_lens)), n / (2 * n_lens)


def soft_counts(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Soft confusion counts ``(TP, FP, FN, TN)`` over the batch (vL eqs. 3.9-3.12)."""
    y = _check_binary(logits, targets)
    p = torch.sigmoid(logits)
    tp = (p * y).sum()
    fp = (p * (1 - y)).sum()
    fn = ((1 - p) * y).sum()
    tn = ((1 - p) * (1 - y)).sum()
    return tp, fp, fn, tn


def soft_f1_loss(logits: Tensor, targets: Tensor, eps: float = SOFT_EPS) -> Tensor:
    """Soft F1 loss, ``1 - 2TP / (2TP + FN + FP + eps)`` (vL eqs. 3.13-3.14)."""
    tp, fp, fn, _ = soft_counts(logits, targets)
    return 1 - 2 * tp / (2 * tp + fn + fp + eps)


def double_soft_f1_loss(logits: Tensor, targets: Tensor, eps: float = SOFT_EPS) -> Tensor:
    """Double soft F1 loss, the mean of the lens and non-lens soft F1 losses (vL eq. 3.17).

    ``(1 - 2TP / (2TP + FN + FP + eps) + 1 - 2TN / (2TN + FN + FP + eps)) / 2``
    (eqs. 3.14 and 3.15).
    """
    tp, fp, fn, tn = soft_counts(logits, targets)
    lens = 1 - 2 * tp / (2 * tp + fn + fp + eps)
    nonlens = 1 - 2 * tn / (2 * tn + fn + fp + eps)
    return (lens + nonlens) / 2


def soft_fbeta_loss(
    logits: Tensor, targets: Tensor, beta: float = DEFAULT_BETA, eps: float = SOFT_EPS
) -> Tensor:
    """Soft F-beta loss, ``1 - F_beta`` with soft precision and recall (vL eq. 3.19).

    ``F_beta = (1 + b^2) Pr Re / (b^2 Pr + Re)`` with ``Pr = TP / (TP + FP)`` and
    ``Re = TP / (TP + FN)`` is computed in the equivalent form
    ``(1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP + eps)``, which needs one guard
    against division by zero instead of three. ``beta < 1`` favours precision;
    the default 0.17 is vL's.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, not {beta}")
    tp, fp, fn, _ = soft_counts(logits, targets)
    b2 = beta * beta
    return 1 - (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + eps)


#: Registry name -> loss function ``f(logits, targets, **options) -> scalar``.
LOSSES: Mapping[str, LossFn] = MappingProxyType(
    {
        "bce": binary_cross_entropy,
        "weighted_ce": weighted_cross_entropy,
        "soft_f1": soft_f1_loss,
        "double_soft_f1": double_soft_f1_loss,
        "soft_fbeta": soft_fbeta_loss,
    }
)


def get_loss(name: str, **options: object) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss ``name`` of :data:`LOSSES` with ``options`` bound (e.g. ``beta=0.5``).

    Raises
    ------
    ConfigError
        Unknown name, or an option the loss does not take.
    """
    try:
        fn = LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(LOSSES))
        raise ConfigError(f"unknown loss {name!r} (known: {known})") from None
    params = list(inspect.signature(fn).parameters)[2:]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"loss {name!r} takes no option(s) {', '.join(unknown)} "
            f"(options: {', '.join(params) or 'none'})"
        )
    return partial(fn, **options)
