"""Named probes and the paper's full suite, as run by ``engine probe``.

Perturbation probes come from :data:`lensfind.probes.perturbations.PERTURBATIONS`;
``psf`` re-simulates the set; parameter probes bin by a truth column with the
paper's bin widths (0.052 arcsec in Einstein radius, 0.1 mag in magnitude).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.names import PARAMETERS, SUITE, ParameterProbe, check_probe, probe_names
from lensfind.probes.perturbations import PERTURBATIONS
from lensfind.probes.report import write_report, write_result
from lensfind.probes.sensitivity import (
    PSF_FACTORS,
    TEST_SETS,
    ProbeResult,
    ProbeSet,
    make_probe_set,
    parameter_probe,
    perturbation_probe,
    perturbation_surface,
    psf_probe,
    surface_probe,
    truth_values,
)
from lensfind.probes.stats import make_edges
from lensfind.runtime.scorer import Scorer
from lensfind.surveys.spec import SurveySpec

__all__ = ["PARAMETERS", "SUITE", "ParameterProbe", "ProbeOptions", "probe_names", "run_probes"]


@dataclass(frozen=True)
class ProbeOptions:
    """Options of one named probe (None: the probe's defaults).

    Attributes
    ----------
    strengths : sequence of float, optional
        Perturbation strengths (units of the perturbation).
    column : str, optional
        Truth column for ``parameter`` (or to replace a named parameter probe's).
    bins, width, edges, quantile : binning of a parameter probe
        Number of bins, bin width, explicit edges, equal-count bins.
    min_count : int
        Bins with fewer objects are flagged and left out of the trend.
    fill : str
        Occlusion fill, ``zero`` (the paper) or ``sky`` (Gaussian sky noise).
    seed : int
        Seed of stochastic perturbations.
    threshold : float
        Lens-probability threshold for accuracy / completeness.
    by : str, optional
        With a perturbation: also a surface over this truth column x strength.
    """

    strengths: Sequence[float] | None = None
    column: str | None = None
    bins: int | None = None
    width: float | None = None
    edges: Sequence[float] | None = None
    quantile: bool = False
    min_count: int = 10
    fill: str = "zero"
    seed: int = 0
    threshold: float = 0.5
    by: str | None = None


def _edges(values: np.ndarray, opts: ProbeOptions, width: float | None) -> np.ndarray:
    if opts.edges is not None:
        return make_edges(values, list(opts.edges))
    if opts.quantile:
        return make_edges(values, opts.bins or 10, mode="quantile")
    if opts.width is not None:
        return make_edges(values, width=opts.width)
    if opts.bins is not None:
        return make_edges(values, opts.bins)
    return make_edges(values, width=width) if width else make_edges(values, 10)


def perturber(
    name: str, spec: SurveySpec, opts: ProbeOptions
) -> Callable[[np.ndarray, float], Any]:
    """``f(images, p)`` applying the registry perturbation ``name`` with the options' seed/fill."""
    pert = PERTURBATIONS[name]
    sky = np.array([b.sky_sigma_counts for b in spec.bands], dtype=np.float32)

    def apply(images: np.ndarray, p: float) -> np.ndarray:
        return pert.apply(images, p, seed=opts.seed, sky_sigma=sky, fill=opts.fill)

    return apply


def run_probe(
    name: str,
    scorers: Mapping[str, Scorer],
    spec: SurveySpec,
    probe_set: ProbeSet | None,
    n: int,
    seed: int,
    opts: ProbeOptions,
    progress: Callable[[int], None] | None = None,
) -> list[ProbeResult]:
    """Run the named probe (a surface too when ``opts.by`` is set); see :func:`probe_names`."""
    if name == "psf":
        factors = opts.strengths or PSF_FACTORS
        return [psf_probe(scorers, spec, n, seed, factors, opts.threshold, progress=progress)]
    probe_set = probe_set or make_probe_set(spec, n, seed)
    if name in PERTURBATIONS:
        pert = PERTURBATIONS[name]
        strengths = list(opts.strengths or pert.strengths)
        f = perturber(name, spec, opts)
        label = f"{pert.description} ({pert.unit})"
        results = [perturbation_probe(scorers, probe_set, name, f, strengths, opts.threshold,
                                      x_label=label, progress=progress,
                                      meta={"seed": opts.seed, "fill": opts.fill})]  # fmt: skip
        if opts.by is not None:
            values, categories = truth_values(probe_set, _known(probe_set, opts.by))
            if categories is None:
                edges, test_set = _edges(values, opts, None), "lenses"
            else:  # every category, lenses and non-lenses alike (s_k: correct-class score)
                edges, test_set = np.arange(len(categories) + 1) - 0.5, "mix"
            results.append(perturbation_surface(
                scorers, probe_set, opts.by, edges, name, f, strengths, opts.threshold,
                min_count=opts.min_count, test_set=test_set))  # fmt: skip
        return results
    if name in PARAMETERS or name == "parameter":
        spec_p = PARAMETERS.get(name)
        column = opts.column or (spec_p.column if spec_p else None)
        if column is None:
            raise ConfigError("probe 'parameter' needs --column (a truth column)")
        values = _column(probe_set, column)
        lens_values = values[probe_set.is_lens]
        edges = _edges(lens_values, opts, spec_p.width if spec_p else None)
        label = spec_p.label if spec_p and column == spec_p.column else column
        results = [parameter_probe(scorers, probe_set, column, edges, opts.threshold,
                                   opts.min_count, x_label=label)]  # fmt: skip
        if name in PARAMETERS:
            results[0].name = name  # files named for the probe, not the column
        if opts.by is not None:
            y = _column(probe_set, opts.by)[probe_set.is_lens]
            results.append(surface_probe(scorers, probe_set, column, opts.by, edges,
                                         make_edges(y, opts.bins or 8), opts.threshold,
                                         min_count=max(1, opts.min_count // 2)))  # fmt: skip
        return results
    check_probe(name)
    raise ConfigError(f"probe {name!r} does not run on its own (engine probe {name})")


def _known(probe_set: ProbeSet, column: str) -> str:
    if column not in probe_set.truth:
        raise ConfigError(f"unknown truth column {column!r} (known: {', '.join(probe_set.truth)})")
    return column


def _column(probe_set: ProbeSet, column: str) -> np.ndarray:
    """A numeric truth column (a categorical one is refused: it has no bins)."""
    values, categories = truth_values(probe_set, _known(probe_set, column))
    if categories is not None:
        raise ConfigError(
            f"truth column {column!r} is categorical ({', '.join(categories)}): binning needs a "
            "numeric column; a perturbation probe takes it as --by"
        )
    return values


def probe_steps(name: str, opts: ProbeOptions) -> int:
    """Steps of the named probe's progress bar: its strengths, or 1 for a parameter probe."""
    if name == "psf":
        return len(opts.strengths or PSF_FACTORS)
    if name in PERTURBATIONS:
        return len(opts.strengths or PERTURBATIONS[name].strengths)
    return 1


def sparse_bins(result: ProbeResult, n: int) -> dict[str, Any] | None:
    """The bins of a parameter probe under its ``min_count``, and the ``--n`` that fills them.

    Returns None when every bin is full (or the probe has no bins). Otherwise
    ``n_bins``, ``n_sparse`` (bins with fewer than ``min_count`` objects, left
    out of the trend), ``n_empty``, ``min_count``, ``centres`` of the sparse
    bins and ``suggested_n``: the probe-set size at which every non-empty
    sparse bin, the sparsest included, would reach ``min_count`` (counts
    scale with ``n``), rounded up to a hundred; None if every sparse bin is
    empty (no ``n`` fills a bin outside the simulated population).
    """
    if result.kind != "parameter" or "ok" not in result.table.column_names:
        return None
    t = result.table
    first = np.asarray(t["model"].to_pylist()) == t["model"][0].as_py() if t.num_rows else []
    counts = np.asarray(t["n"].to_pylist())[first]
    ok = np.asarray(t["ok"].to_pylist(), dtype=bool)[first]
    if ok.all():
        return None
    min_count = int(result.meta.get("min_count", 1))
    filled = counts[~ok][counts[~ok] > 0]
    suggested = None
    if filled.size:
        suggested = int(np.ceil(n * min_count / filled.min() / 100.0) * 100)
    centres = np.asarray(t["centre"].to_pylist())[first][~ok]
    return {"n_bins": int(ok.size), "n_sparse": int((~ok).sum()),
            "n_empty": int((counts == 0).sum()), "min_count": min_count,
            "centres": [round(float(c), 4) for c in centres], "suggested_n": suggested}  # fmt: skip


def run_probes(
    names: Sequence[str],
    scorers: Mapping[str, Scorer],
    model_shas: dict[str, str],
    spec: SurveySpec,
    n: int,
    seed: int,
    out_dir: Path,
    opts: ProbeOptions | None = None,
    progress: Callable[[str, int], Callable[[int], None] | None] | None = None,
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Run probes on one shared probe set, write every result and ``report.html``.

    ``progress(step, total)`` returns the ``update(k)`` of a bar of ``total``
    steps: ``simulate`` (objects of the probe set), then each probe
    (:func:`probe_steps`). Returns the report's path and, by probe, its
    :func:`sparse_bins` (only probes that have some).
    """
    opts = opts or ProbeOptions()
    probe_set = None
    if any(name != "psf" for name in names):
        tick = progress("simulate", n) if progress else None
        probe_set = make_probe_set(spec, n, seed, progress=tick)
    entries, sparse = [], {}
    for name in names:
        tick = progress(name, probe_steps(name, opts)) if progress else None
        for result in run_probe(name, scorers, spec, probe_set, n, seed, opts, tick):
            found = sparse_bins(result, n)
            if found:
                result.meta["sparse_bins"] = sparse[result.name] = found
            entries.append((result, write_result(result, out_dir, model_shas)))
        if tick is not None and probe_steps(name, opts) == 1:
            tick(1)
    description = {"survey": spec.name, "n": n, "seed": seed, "models": model_shas,
                   "test_sets": list(TEST_SETS), "probes": list(names)}  # fmt: skip
    title = f"lensfind sensitivity probes: {spec.name}"
    return write_report(out_dir, entries, title, description), sparse
