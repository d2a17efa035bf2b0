"""Score calibration: temperature scaling of the model's logit, and its measures.

Temperature scaling (Guo et al. 2017) divides the logit ``z = log(p / (1 - p))``
of the network's lens probability by one fitted temperature ``T``,
``p_cal = sigmoid(z / T)``. It keeps the ranking (AUROC, TPR at fixed FPR) and
the 0.5 decision point unchanged and only makes the probabilities honest on the
distribution it was fitted on (a simulated set with a known lens fraction).

Pure numpy/scipy functions; the fitted :class:`Calibration` lives in the
model card (``calibration``) and every scorer applies it through
:meth:`lensfind.runtime.card.ModelCard.calibrate`.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Equal-width bins of the expected calibration error.
DEFAULT_ECE_BINS = 15
#: Smallest distance of a probability from 0 or 1 when taking its logit: the
#: resolution of a float32 sigmoid near 1 (outputs of exactly 0 or 1 are clipped).
P_EPS = 2.0**-24
#: Range of the fitted inverse temperature ``1/T``.
INV_T_BOUNDS = (1e-3, 1e3)


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` in float64, ``p`` clipped to ``[P_EPS, 1 - P_EPS]``."""
    q = np.clip(np.asarray(p, dtype=np.float64), P_EPS, 1.0 - P_EPS)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow."""
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities ``sigmoid(logit(p) / T)`` (float32)."""
    return sigmoid(logit(p) / temperature).astype(np.float32)


def binary_nll(p: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (binary cross-entropy, nats) of ``p`` for ``labels``."""
    z = logit(p)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def expected_calibration_error(
    p: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> float:
    """Expected calibration error of lens probabilities, equal-width bins.

    ``ECE = sum_b (n_b / N) |mean(y in b) - mean(p in b)|`` over ``n_bins``
    equal-width bins of ``p`` on [0, 1] (a value on an inner edge goes to the
    lower bin, as in scikit-learn's ``calibration_curve``); empty bins add 0.
    This is the binary form: the probability binned is P(lens) itself.
    """
    n, _, frac, mean_p = reliability(p, labels, n_bins)
    total = n.sum()
    ok = n > 0
    return float(np.sum(n[ok] / total * np.abs(frac[ok] - mean_p[ok])))


def reliability(
    p: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: count, bin edges, lens fraction and mean probability.

    Returns ``n (n_bins,), edges (n_bins + 1,), frac_lens, mean_p`` (NaN in empty bins).
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"need equal, non-empty p {p.shape} and labels {y.shape}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="left")
    n = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.bincount(idx, weights=y, minlength=n_bins) / n
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / n
    return n.astype(int), edges, frac, mean_p


def fit_temperature(p: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the mean NLL of ``sigmoid(logit(p) / T)``.

    The NLL is convex in ``1/T`` (a one-coefficient logistic regression on the
    logit without intercept), so a bounded scalar minimisation finds it.
    """
    from scipy.optimize import minimize_scalar

    z = logit(p)
    y = np.asarray(labels, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("temperature scaling needs both lenses and non-lenses")

    def nll(beta: float) -> float:
        return float(np.mean(np.logaddexp(0.0, beta * z) - y * beta * z))

    lo, hi = np.log(INV_T_BOUNDS[0]), np.log(INV_T_BOUNDS[1])
    res = minimize_scalar(lambda u: nll(np.exp(u)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    return float(1.0 / np.exp(res.x))


def posterior_lens_probability(
    p_cal: np.ndarray, prior_lens_rate: float, calibration_lens_fraction: float
) -> np.ndarray:
    """Calibrated probabilities moved from the calibration set's lens fraction to a prior.

    Bayes' rule on the odds: ``odds_post = odds_cal * [R / (1 - R)] / [pi / (1 - pi)]``
    with ``R`` the prior lens rate of the sky and ``pi`` the calibration set's
    lens fraction (the class-conditional score distributions stay the same).
    """
    z = logit(p_cal)
    shift = np.log(prior_lens_rate / (1 - prior_lens_rate)) - np.log(
        calibration_lens_fraction / (1 - calibration_lens_fraction)
    )
    return sigmoid(z + shift)


@dataclass(frozen=True)
class Calibration:
    """A fitted score calibration as the model card records it.

    Attributes
    ----------
    method : str
        ``temperature`` (the only method).
    temperature : float
        ``T`` of ``p_cal = sigmoid(logit(p) / T)``.
    lens_fraction : float
        Lens fraction of the set it was fitted on (``pi`` of
        :func:`posterior_lens_probability`).
    raw : dict
        The card's whole ``calibration`` entry.
    """

    method: str
    temperature: float
    lens_fraction: float
    raw: dict[str, Any]

    @classmethod
    def from_card(cls, card_raw: dict[str, Any]) -> "Calibration | None":
        """The calibration of a card's JSON, or None if it has none."""
        entry = card_raw.get("calibration")
        if not entry:
            return None
        if entry.get("method") != "temperature" or not float(entry["temperature"]) > 0:
            raise ValueError(f"unknown calibration {entry.get('method')!r} or bad temperature")
        return cls("temperature", float(entry["temperature"]),
                   float(entry.get("lens_fraction", 0.5)), entry)  # fmt: skip

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated lens probabilities (float32) of raw network probabilities ``p``."""
        return apply_temperature(p, self.temperature)

    def summary(self) -> dict[str, Any]:
        """What a run records about the calibration it applied."""
        keys = ("method", "temperature", "lens_fraction", "set", "seed", "n",
                "ece_before", "ece_after")  # fmt: skip
        return {k: self.raw[k] for k in keys if k in self.raw}
