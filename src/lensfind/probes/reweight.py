"""Completeness for another population, from a run's injections (importance weights).

A scan's injections sample its injected population: Einstein radius and
unlensed source g magnitude uniform in their ranges (above an S/N floor). The
completeness of another population follows by weighting each injection by
``p_new / p_run`` on those two parameters. The new population may narrow the
ranges and tilt them:

- ``theta_e_power``: ``p(theta_E) ~ theta_E^k`` (e.g. a velocity-dispersion
  function gives falling Einstein-radius distributions);
- ``source_counts_slope``: ``p(m) ~ 10^(a m)`` for the unlensed source g
  magnitude (faint source counts rise with a ~ 0.3).

It cannot add what was never injected: ranges beyond the run's are reported as
not covered, and a different S/N floor (sources the run brightened or never
drew) is refused. Intervals are Wilson intervals at the Kish effective number
of injections ``(sum w)^2 / sum w^2``.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from lensfind.errors import ConfigError
from lensfind.intervals import wilson_interval
from lensfind.probes.selection import SELECTION_BINS, used_injections
from lensfind.simulation.population import PopulationConfig

#: The reweighting-only settings a population file may add.
TILTS = ("theta_e_power", "source_counts_slope")


@dataclass(frozen=True)
class Target:
    """The population to reweight to: ranges (a PopulationConfig) and tilts."""

    population: PopulationConfig
    theta_e_power: float = 0.0
    source_counts_slope: float = 0.0


def _overlap(run: tuple[float, float], new: tuple[float, float]) -> float:
    """Fraction of the ``new`` range that the ``run`` range covers."""
    width = new[1] - new[0]
    if width <= 0:
        return 1.0 if run[0] <= new[0] <= run[1] else 0.0
    return max(0.0, min(run[1], new[1]) - max(run[0], new[0])) / width


def weights(injections: pa.Table, run: PopulationConfig, target: Target) -> np.ndarray:
    """Importance weight of each injection (0 outside the target's ranges), mean 1 over used."""
    if abs(target.population.min_source_snr - run.min_source_snr) > 1e-9:
        raise ConfigError(
            f"min_source_snr {target.population.min_source_snr:g} differs from the run's "
            f"{run.min_source_snr:g}: the run's injections cannot represent it"
        )
    theta = injections["theta_e_arcsec"].to_numpy(zero_copy_only=False).astype(float)
    mag = injections["mag_g_source_intrinsic"].to_numpy(zero_copy_only=False).astype(float)
    lo_t, hi_t = target.population.theta_e_range_arcsec
    lo_m, hi_m = target.population.source_mag_g_range
    inside = (theta >= lo_t) & (theta <= hi_t) & (mag >= lo_m) & (mag <= hi_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(inside, theta**target.theta_e_power, 0.0)
        w = w * np.where(inside, 10.0 ** (target.source_counts_slope * (mag - lo_m)), 0.0)
    return np.nan_to_num(w)


def _completeness(hit: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    total = w.sum()
    if total <= 0:
        return {"completeness": None, "n_eff": 0.0, "ci_lo": None, "ci_hi": None}
    c = float((w * hit).sum() / total)
    n_eff = float(total**2 / (w**2).sum())
    lo, hi = wilson_interval(np.array([c * n_eff]), np.array([n_eff]))
    return {"completeness": c, "n_eff": n_eff, "ci_lo": float(lo[0]), "ci_hi": float(hi[0])}


def reweight(
    injections: pa.Table, run: PopulationConfig, target: Target, threshold: float
) -> dict[str, Any]:
    """Completeness of ``target`` (overall and per Einstein-radius bin) from a run's injections.

    Returns ``completeness``, ``n_eff``, ``ci_lo``, ``ci_hi``, ``coverage``
    (fraction of the target's theta_E and source-magnitude ranges the run
    injected), ``bins`` (per 0.25" of theta_E) and ``target`` (its settings).
    """
    used = used_injections(injections, threshold)
    table = injections.filter(pa.array(used))
    w = weights(table, run, target)
    hit = table["score"].to_numpy(zero_copy_only=False).astype(float) >= threshold
    theta = table["theta_e_arcsec"].to_numpy(zero_copy_only=False).astype(float)
    width = SELECTION_BINS["theta_e_arcsec"]
    bins = []
    if theta.size:
        edges = np.arange(np.floor(theta.min() / width) * width, theta.max() + width, width)
        for lo, hi in itertools.pairwise(edges):
            sel = (theta >= lo) & (theta < hi)
            if w[sel].sum() > 0:
                bins.append({"lo": round(float(lo), 4), "hi": round(float(hi), 4),
                             **_completeness(hit[sel], w[sel])})  # fmt: skip
    coverage = {
        "theta_e_arcsec": _overlap(run.theta_e_range_arcsec,
                                   target.population.theta_e_range_arcsec),
        "mag_g_source_intrinsic": _overlap(run.source_mag_g_range,
                                           target.population.source_mag_g_range),
    }  # fmt: skip
    return {
        **_completeness(hit, w),
        "n_injections": int(table.num_rows),
        "coverage": coverage,
        "bins": bins,
        "threshold": threshold,
        "target": {
            "theta_e_range_arcsec": list(target.population.theta_e_range_arcsec),
            "source_mag_g_range": list(target.population.source_mag_g_range),
            "min_source_snr": target.population.min_source_snr,
            "theta_e_power": target.theta_e_power,
            "source_counts_slope": target.source_counts_slope,
        },
    }
