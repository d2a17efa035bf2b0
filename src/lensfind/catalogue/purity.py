"""Expected purity of a candidate list: how many of the candidates are lenses.

Lenses are rare on the sky (Jacobs et al. 2022: fewer than 1 in 1000
galaxies), so even a good classifier's candidate list is mostly false
positives. For each threshold ``t`` at or above the run's, two estimates of the
number of true lenses among the ``N(t)`` candidates with ``score >= t``:

* **from the calibrated scores** (``expected_true_lenses``): each candidate's
  posterior lens probability under the prior lens rate ``R``,
  ``p_post = posterior_lens_probability(p_cal, R, pi)``, with ``pi`` the lens
  fraction of the set the calibration was fitted on; ``E(t) = sum p_post``.
  It assumes the sky's lenses and non-lenses score like the simulated ones.
* **from the measured selection function** (``expected_true_lenses_selection``):
  ``E_sel(t) = R * n_scored * C(t)``, with ``C(t)`` the fraction of the scan's
  injected lenses scoring ``>= t``. It assumes the sky's lenses look like the
  injected ones (their Einstein radii and magnitudes follow the simulation).

The expected purity is ``E / N``. The two estimates answer the same question
under different assumptions; where the calibrated scores already expect more
lenses above the run's threshold than the prior allows in the whole scan
(``E > R * n_scored``) the prior (or the calibration) contradicts the data,
and ``prior_consistent`` is false: a region richer in lenses than ``R`` (a
synthetic one, or a pre-selected sample) needs a larger ``--prior-lens-rate``;
``consistent_prior_lens_rate`` is then the smallest rate the data allow (see
:func:`consistent_prior_rate`).

Ranking the candidates by score, the number a person has to inspect to find
``n`` lenses is the smallest ``k`` whose cumulative ``p_post`` reaches ``n``
(None if the whole list does not).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from lensfind.intervals import wilson_interval
from lensfind.runtime.calibration import posterior_lens_probability

#: Jacobs+22: strong lenses are "< 1 in 1000" galaxies.
DEFAULT_PRIOR_LENS_RATE = 1e-3
#: Thresholds the purity is reported at (those below the run's threshold are dropped).
PURITY_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
#: Numbers of lenses for "how many candidates to inspect".
INSPECT_TARGETS = (1, 10, 100)


def ranked_posterior(
    scores: np.ndarray, prior_lens_rate: float, calibration_lens_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate scores best first, and their posterior lens probabilities under the prior."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    return s, posterior_lens_probability(s, prior_lens_rate, calibration_lens_fraction)


def inspect_to_find(posterior_by_rank: np.ndarray, targets: Sequence[int]) -> dict[str, int | None]:
    """Candidates to inspect, best first, until the expected lenses found reach each target.

    Parameters
    ----------
    posterior_by_rank : ndarray
        Posterior lens probability of each candidate, in rank order (best first).
    targets : sequence of int
        Numbers of lenses wanted.

    Returns
    -------
    dict
        ``str(n) -> k`` (1-based count of candidates), None where the list's
        expected total stays below ``n``.
    """
    cum = np.cumsum(np.asarray(posterior_by_rank, dtype=np.float64))
    out: dict[str, int | None] = {}
    for n in targets:
        k = int(np.searchsorted(cum, n - 1e-9, side="left"))
        out[str(n)] = k + 1 if k < cum.size else None
    return out


def consistent_prior_rate(
    scores: np.ndarray, n_scored: int, threshold: float, calibration_lens_fraction: float
) -> float:
    """The smallest prior lens rate ``R`` whose expected lenses fit in the scan.

    The expected true lenses among the candidates, ``E(R) = sum p_post``, grow
    with ``R`` but never past the number of candidates ``N``, so
    ``E(R) <= R * n_scored`` holds from some ``R <= N / n_scored`` on; this is
    that ``R`` (bisection in ``log R``, relative precision 1e-6), the number to
    pass as ``--prior-lens-rate`` when ``prior_consistent`` is false.

    Parameters
    ----------
    scores : ndarray
        Calibrated lens probabilities of the candidates.
    n_scored : int
        Galaxies scored in the run.
    threshold : float
        The run's candidate threshold (scores below it are ignored).
    calibration_lens_fraction : float
        Lens fraction ``pi`` of the set the scores were calibrated on.
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[s >= threshold]
    if not s.size or n_scored <= 0:
        return DEFAULT_PRIOR_LENS_RATE

    def excess(rate: float) -> float:
        return float(posterior_lens_probability(s, rate, calibration_lens_fraction).sum()) - (
            rate * n_scored
        )

    hi = min(s.size / n_scored, 1.0 - 1e-9)
    lo = min(DEFAULT_PRIOR_LENS_RATE, hi) * 1e-3
    if excess(lo) <= 0:
        return lo
    for _ in range(80):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
        if hi / lo < 1 + 1e-6:
            break
    return hi


def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a rate that stays consistent)."""
    step = 10.0 ** (np.floor(np.log10(x)) - digits + 1)
    return float(f"{np.ceil(x / step * (1 - 1e-12)) * step:.{digits}g}")


def expected_purity(
    scores: np.ndarray,
    n_scored: int,
    threshold: float,
    prior_lens_rate: float,
    calibration_lens_fraction: float,
    injected_scores: np.ndarray | None = None,
    thresholds: Sequence[float] = PURITY_THRESHOLDS,
    targets: Sequence[int] = INSPECT_TARGETS,
) -> dict[str, Any]:
    """The expected number of true lenses and purity of a candidate list per threshold.

    Parameters
    ----------
    scores : ndarray
        Calibrated lens probabilities of the candidates (all ``>= threshold``).
    n_scored : int
        Galaxies scored in the run (the population the prior applies to).
    threshold : float
        The run's candidate threshold; reported thresholds start there.
    prior_lens_rate : float
        Fraction of scanned galaxies expected to be lenses, ``R``.
    calibration_lens_fraction : float
        Lens fraction ``pi`` of the set the scores were calibrated on.
    injected_scores : ndarray, optional
        Scores of the run's injected lenses (selection-function estimate);
        NaN entries (unscored) are left out.
    thresholds, targets : sequence
        Thresholds to report; numbers of lenses for the inspection counts.

    Returns
    -------
    dict
        ``prior_lens_rate``, ``calibration_lens_fraction``,
        ``expected_lenses_scanned`` (``R * n_scored``), ``prior_consistent``
        (see the module docstring), ``consistent_prior_lens_rate`` (None when
        consistent, else :func:`consistent_prior_rate`), ``thresholds`` (one
        entry per threshold: ``threshold``, ``n_candidates``,
        ``expected_true_lenses``, ``expected_purity`` and, with injections,
        ``completeness``, ``expected_true_lenses_selection``,
        ``expected_purity_selection``) and ``inspect_to_find``.
    """
    if not 0.0 < prior_lens_rate < 1.0:
        raise ValueError(f"prior lens rate must be in (0, 1), got {prior_lens_rate}")
    s, post = ranked_posterior(scores, prior_lens_rate, calibration_lens_fraction)
    inj = None
    if injected_scores is not None:
        inj = np.asarray(injected_scores, dtype=np.float64)
        inj = inj[np.isfinite(inj)]
        inj = inj if inj.size else None
    rows = []
    for t in sorted({float(threshold), *(float(x) for x in thresholds if x > threshold)}):
        sel = s >= t
        n = int(sel.sum())
        e = float(post[sel].sum())
        row: dict[str, Any] = {
            "threshold": t,
            "n_candidates": n,
            "expected_true_lenses": round(e, 4),
            "expected_purity": round(e / n, 6) if n else None,
        }
        if inj is not None:
            k = int((inj >= t).sum())
            c = k / inj.size
            c_lo, c_hi = (float(v[0]) for v in wilson_interval(np.array([k]), np.array([inj.size])))
            e_sel = prior_lens_rate * n_scored * c
            row["completeness"] = round(c, 6)
            row["expected_true_lenses_selection"] = round(e_sel, 4)
            row["expected_purity_selection"] = round(min(1.0, e_sel / n), 6) if n else None
            # the completeness's Wilson 95% interval (the prior rate is taken as exact)
            row["expected_purity_selection_ci"] = (
                [round(min(1.0, prior_lens_rate * n_scored * c_ / n), 6) for c_ in (c_lo, c_hi)]
                if n
                else None
            )
        rows.append(row)
    expected_scanned = prior_lens_rate * n_scored
    consistent = bool(not rows or rows[0]["expected_true_lenses"] <= expected_scanned)
    return {
        "prior_lens_rate": prior_lens_rate,
        "calibration_lens_fraction": calibration_lens_fraction,
        "expected_lenses_scanned": round(expected_scanned, 4),
        "prior_consistent": consistent,
        "consistent_prior_lens_rate": None
        if consistent
        else _round_up(consistent_prior_rate(s, n_scored, threshold, calibration_lens_fraction)),
        "thresholds": rows,
        "inspect_to_find": inspect_to_find(post, targets),
    }
