"""Confidence intervals of proportions (completeness, recall, purity)."""

from statistics import NormalDist

import numpy as np

#: The two-sided 95% normal quantile.
Z95 = NormalDist().inv_cdf(0.975)


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n`` (NaN where ``n == 0``)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1.0 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
        # the interval always holds phat; clip rounding at k = 0 and k = n
        return np.clip(np.minimum(centre - half, phat), 0, 1), np.clip(
            np.maximum(centre + half, phat), 0, 1
        )
