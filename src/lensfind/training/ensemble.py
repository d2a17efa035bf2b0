"""Ensembles of lens finders (van Lohuizen 2021 sec. 3.6).

Three ways to combine the lens probabilities ``P`` ``(N, M)`` of ``M`` members:

``mean``
    ``p = mean_m P[:, m]``, the baseline.
``nelder_mead``
    ``p = P @ w`` (vL eq. 3.22) with the weights ``w`` that minimise the mean
    squared error against the labels on validation data, found by Nelder-Mead
    (:func:`nelder_mead_weights`; vL sec. 3.6.1: MSE objective, tolerance 1e-6,
    at most ``200 M`` iterations). The weights used **are** the optimised
    weights: they are not passed through a softmax nor normalised to sum to one
    (vL do not, and doing so would change the minimiser). Their sum may differ
    from one, so ``P @ w`` may leave [0, 1]; the ensemble clips it to [0, 1] so
    that its output stays a probability (clipping a prediction into [0, 1] can
    only bring it closer to a 0/1 label). With strongly correlated members the
    unconstrained optimum can have large weights of both signs (an
    extrapolation); ``weights_abs_sum`` in the fit record shows it, and float32
    differences between runtimes grow with it. ``x0`` is the mean (``1/M`` each);
    vL start from random weights, which for this convex quadratic objective
    reaches the same minimum.
``gated``
    vL's input-dependent ensemble (sec. 3.6.2): a gating CNN sees the image and
    returns softmax weights ``w_i`` per image; ``p_i = P_i . w_i`` (eq. 3.23);
    see :mod:`lensfind.training.gating`.

:class:`EnsembleModule` is the torch form (members + combination in one module,
normalised cutouts in, P(lens) out); :mod:`lensfind.export.ensemble_export`
exports it as one ONNX graph.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize

from lensfind.errors import ConfigError
from lensfind.training._torch import nn, torch

METHODS = ("mean", "nelder_mead", "gated")

COMBINATION = {
    "mean": "p = mean of the member probabilities",
    "nelder_mead": "p = clip(sum_m w_m p_m, 0, 1) with the Nelder-Mead weights w (minimum "
    "MSE on the validation set; not normalised)",
    "gated": "p = sum_m g_m(x) p_m with g(x) = softmax of the gating CNN on the same cutout",
}


def mean_weights(n_members: int) -> np.ndarray:
    """``1 / M`` for each of ``M`` members."""
    if n_members < 1:
        raise ConfigError("an ensemble needs at least one member")
    return np.full(n_members, 1.0 / n_members)


def ensemble_mse(weights: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error of ``probs @ weights`` against ``labels`` (the NM objective)."""
    resid = np.asarray(probs, dtype=float) @ np.asarray(weights, dtype=float) - labels
    return float(np.mean(resid**2))


def nelder_mead_weights(
    probs: np.ndarray,
    labels: np.ndarray,
    x0: np.ndarray | None = None,
    tol: float = 1e-6,
    maxiter: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Ensemble weights minimising the MSE of ``probs @ w`` (vL sec. 3.6.1).

    Parameters
    ----------
    probs : ndarray (N, M)
        Lens probabilities of the ``M`` members on validation data.
    labels : ndarray (N,)
        1 for lenses, 0 otherwise.
    x0 : ndarray (M,), optional
        Starting weights (default ``1/M`` each).
    tol : float
        ``xatol`` and ``fatol`` of :func:`scipy.optimize.minimize` (vL: 1e-6).
    maxiter : int, optional
        Iterations and function evaluations allowed (default ``200 M``, vL's).

    Returns
    -------
    weights : ndarray (M,)
        The optimised weights, as found (not normalised).
    info : dict
        ``mse``, ``mse_mean_weights``, ``iterations``, ``evaluations``,
        ``converged`` and the optimiser's ``message``.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=float).ravel()
    if probs.ndim != 2 or probs.shape[0] != labels.size:
        raise ValueError(f"probs {probs.shape} do not match {labels.size} labels")
    m = probs.shape[1]
    start = mean_weights(m) if x0 is None else np.asarray(x0, dtype=float)
    limit = 200 * m if maxiter is None else maxiter
    res = minimize(
        ensemble_mse,
        start,
        args=(probs, labels),
        method="Nelder-Mead",
        options={"xatol": tol, "fatol": tol, "maxiter": limit, "maxfev": limit},
    )
    info = {
        "mse": float(res.fun),
        "mse_mean_weights": ensemble_mse(mean_weights(m), probs, labels),
        "iterations": int(res.nit),
        "evaluations": int(res.nfev),
        "converged": bool(res.success),
        "weights_abs_sum": float(np.abs(res.x).sum()),
        "message": str(res.message),
    }
    return np.asarray(res.x, dtype=float), info


def best_member_targets(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of the member closest to the label, per object (vL sec. 3.6.2's one-hot targets).

    Ties go to the lowest index.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=float).reshape(-1, 1)
    return np.argmin(np.abs(probs - labels), axis=1)


class EnsembleModule(nn.Module):
    """Members and their combination: normalised cutouts ``(N, bands, H, W)`` -> P(lens) ``(N,)``.

    Parameters
    ----------
    members : sequence of torch.nn.Module
        Networks returning lens logits ``(N,)`` on the same normalised input.
    method : {"mean", "nelder_mead", "gated"}
        How to combine them (module docstring).
    weights : sequence of float, optional
        Member weights for ``nelder_mead`` (``mean`` uses ``1/M``).
    gate : torch.nn.Module, optional
        For ``gated``: maps the cutouts to ``M`` logits (softmax inside).
    """

    weights: "torch.Tensor"

    def __init__(
        self,
        members: Sequence[nn.Module],
        method: str,
        weights: Sequence[float] | None = None,
        gate: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"unknown ensemble method {method!r} (known: {', '.join(METHODS)})")
        self.members = nn.ModuleList(members)
        self.method = method
        m = len(self.members)
        if method == "nelder_mead" and (weights is None or len(weights) != m):
            raise ConfigError(f"nelder_mead needs {m} weights, got {weights}")
        if method == "gated" and gate is None:
            raise ConfigError("a gated ensemble needs a gating network")
        w = mean_weights(m) if weights is None or method == "mean" else np.asarray(weights)
        self.register_buffer("weights", torch.as_tensor(w, dtype=torch.float32))
        self.gate = gate if method == "gated" else None

    def member_probabilities(self, x: "torch.Tensor") -> "torch.Tensor":
        """``(N, M)`` lens probabilities of the members."""
        return torch.stack([torch.sigmoid(member(x)) for member in self.members], dim=1)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        probs = self.member_probabilities(x)
        if self.gate is not None:
            g = torch.softmax(self.gate(x), dim=1)
            return (probs * g).sum(dim=1)
        return torch.clamp(probs @ self.weights, 0.0, 1.0)
