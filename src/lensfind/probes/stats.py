"""Statistics of the sensitivity probe: binning, per-bin score statistics, trends.

Pure functions on numpy arrays. The score studied is the *correct-class score*
``s_k`` of Jacobs et al. (2022): the lens probability for lenses and one minus
it for non-lenses, so a perfect model has ``s_k = 1`` everywhere.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lensfind.errors import ConfigError
from lensfind.intervals import wilson_interval

BIN_MODES = ("width", "quantile")


def correct_class_score(p_lens: np.ndarray, is_lens: np.ndarray) -> np.ndarray:
    """The score of the true class: ``p`` for lenses, ``1 - p`` for non-lenses."""
    p = np.asarray(p_lens, dtype=float)
    return np.where(np.asarray(is_lens, dtype=bool), p, 1.0 - p)


def make_edges(
    values: np.ndarray,
    bins: int | Sequence[float] | None = None,
    mode: str = "width",
    width: float | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Bin edges for ``values``.

    Parameters
    ----------
    values : ndarray
        The parameter values (NaN ignored).
    bins : int or sequence of float, optional
        Number of bins, or explicit increasing edges (then ``mode`` is ignored).
    mode : {"width", "quantile"}
        Equal-width bins over ``value_range`` or equal-count (quantile) bins.
    width : float, optional
        Bin width for ``mode="width"`` instead of a number of bins (the paper's
        0.052 arcsec in Einstein radius, 0.1 mag in magnitude).
    value_range : (float, float), optional
        Range to bin (default: the finite minimum and maximum).
    """
    if bins is not None and not isinstance(bins, int | np.integer):
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ConfigError(f"bin edges must be >= 2 increasing numbers, got {list(edges)}")
        return edges
    if mode not in BIN_MODES:
        raise ConfigError(f"unknown bin mode {mode!r} (known: {', '.join(BIN_MODES)})")
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ConfigError("no finite values to bin")
    lo, hi = value_range or (float(finite.min()), float(finite.max()))
    if not hi > lo:
        hi = lo + (width or 1.0)
    if mode == "quantile":
        inside = finite[(finite >= lo) & (finite <= hi)]
        q = np.quantile(inside, np.linspace(0, 1, int(bins or 10) + 1))
        return np.unique(q)
    if width is not None:
        if width <= 0:
            raise ConfigError(f"bin width must be > 0, got {width}")
        n = max(1, int(np.ceil((hi - lo) / width - 1e-9)))
        return lo + width * np.arange(n + 1)
    return np.linspace(lo, hi, int(bins or 10) + 1)


@dataclass(frozen=True)
class BinnedStats:
    """Per-bin statistics of ``s_k`` (arrays of one entry per bin) and what fell outside.

    ``std`` is the population standard deviation (``ddof=0``, as the paper) and
    ``sem`` the standard error of the mean (sample standard deviation over
    ``sqrt(n)``). ``frac_correct`` is the fraction of objects classified
    correctly at the threshold (completeness for lenses) with its Wilson 95%
    interval. Bins with fewer than ``min_count`` objects have ``ok = False``.
    """

    lo: np.ndarray
    hi: np.ndarray
    centre: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    n_correct: np.ndarray
    frac_correct: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    ok: np.ndarray
    n_below: int
    n_above: int
    n_nan: int

    def columns(self) -> dict[str, np.ndarray]:
        """The per-bin arrays by name (for a table)."""
        names = ("lo", "hi", "centre", "n", "mean", "std", "sem", "n_correct", "frac_correct",
                 "ci_lo", "ci_hi", "ok")  # fmt: skip
        return {k: getattr(self, k) for k in names}


def binned_stats(
    param: np.ndarray,
    s_k: np.ndarray,
    edges: np.ndarray,
    correct: np.ndarray | None = None,
    min_count: int = 1,
) -> BinnedStats:
    """Statistics of ``s_k`` in bins of ``param`` (last bin closed on the right).

    Parameters
    ----------
    param : ndarray (N,)
        Binning parameter (NaN: counted in ``n_nan``).
    s_k : ndarray (N,)
        Correct-class scores in [0, 1].
    edges : ndarray (M + 1,)
        Increasing bin edges.
    correct : ndarray of bool (N,), optional
        Whether each object is classified correctly (default ``s_k >= 0.5``).
    min_count : int
        Bins with fewer objects are flagged ``ok = False``.
    """
    param = np.asarray(param, dtype=float)
    s_k = np.asarray(s_k, dtype=float)
    correct = s_k >= 0.5 if correct is None else np.asarray(correct, dtype=bool)
    nan = ~np.isfinite(param)
    idx = np.searchsorted(edges, param, side="right") - 1
    idx[param == edges[-1]] = len(edges) - 2
    m = len(edges) - 1
    inside = ~nan & (idx >= 0) & (idx < m)
    n_below = int((~nan & (idx < 0)).sum())
    n_above = int((~nan & (idx >= m)).sum())
    ii = idx[inside]
    n = np.bincount(ii, minlength=m)
    total = np.bincount(ii, weights=s_k[inside], minlength=m)
    total2 = np.bincount(ii, weights=s_k[inside] ** 2, minlength=m)
    k = np.bincount(ii, weights=correct[inside].astype(float), minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = np.maximum(total2 / n - mean**2, 0.0)
        std = np.sqrt(var)
        sem = np.where(n > 1, np.sqrt(var * n / np.maximum(n - 1, 1)) / np.sqrt(n), np.nan)
        frac = k / n
    ci_lo, ci_hi = wilson_interval(k, n)
    return BinnedStats(
        lo=edges[:-1], hi=edges[1:], centre=0.5 * (edges[:-1] + edges[1:]), n=n,
        mean=mean, std=std, sem=sem, n_correct=k.astype(int), frac_correct=frac,
        ci_lo=ci_lo, ci_hi=ci_hi, ok=n >= max(min_count, 1),
        n_below=n_below, n_above=n_above, n_nan=int(nan.sum()),
    )  # fmt: skip


@dataclass(frozen=True)
class Trend:
    """Least-squares line ``mean = intercept + slope * p`` through the bin means.

    ``slope_ci`` is the 95% interval (Student t, ``n - 2`` degrees of freedom);
    ``zero_consistent`` says whether it contains 0 (the paper's "consistent with
    a zero gradient"). ``p_half`` is where the bin means first cross 0.5
    (linear interpolation between neighbouring bins), None if they never do.
    """

    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    zero_consistent: bool
    n_points: int
    p_half: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "slope": self.slope, "intercept": self.intercept, "slope_ci": list(self.slope_ci),
            "zero_consistent": self.zero_consistent, "n_points": self.n_points,
            "p_half": self.p_half,
        }  # fmt: skip


def fit_trend(p: np.ndarray, mean: np.ndarray, ok: np.ndarray | None = None) -> Trend:
    """Fit the trend of bin means ``mean`` against bin values ``p`` (bins with ``ok``)."""
    p = np.asarray(p, dtype=float)
    mean = np.asarray(mean, dtype=float)
    use = np.isfinite(p) & np.isfinite(mean)
    if ok is not None:
        use &= np.asarray(ok, dtype=bool)
    x, y = p[use], mean[use]
    nan = float("nan")
    if x.size < 2 or np.ptp(x) == 0:
        return Trend(nan, nan, (nan, nan), False, int(x.size), _crossing(x, y, 0.5))
    from scipy import stats as sps  # 0.5 s to import: not on a scan's path

    res = sps.linregress(x, y)
    if x.size > 2:
        t = float(sps.t.ppf(0.975, x.size - 2))
        ci = (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr))
    else:
        ci = (nan, nan)
    zero = bool(ci[0] <= 0.0 <= ci[1]) if np.isfinite(ci[0]) else False
    half = _crossing(x, y, 0.5)
    return Trend(float(res.slope), float(res.intercept), ci, zero, int(x.size), half)


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float | None:
    """First ``x`` where ``y`` crosses ``level`` between consecutive points."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    for i in range(len(x) - 1):
        a, b = y[i] - level, y[i + 1] - level
        if a == 0:
            return float(x[i])
        if a * b < 0:
            return float(x[i] + (x[i + 1] - x[i]) * a / (a - b))
    if len(x) and y[-1] == level:
        return float(x[-1])
    return None
