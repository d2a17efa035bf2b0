"""The sensitivity probe (Jacobs et al. 2022) on any :class:`~lensfind.runtime.scorer.Scorer`.

Three test sets as the paper (lenses only, non-lenses only, a 50/50 mix) are
the subsets of one simulated mixed set, scored once per model and strength.
Each probe returns a :class:`ProbeResult`: a long table with one row per
(model, test set, bin or strength), and the trend of every curve.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from lensfind.probes.stats import (
    binned_stats,
    correct_class_score,
    fit_trend,
    wilson_interval,
)
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE, Scorer
from lensfind.simulation.dataset import population_on_grid
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import simulate
from lensfind.surveys.spec import SurveySpec

TEST_SETS = ("lenses", "nonlenses", "mix")
#: PSF FWHM relative to the training PSF (the paper's 0.6x .. 3x).
PSF_FACTORS = (0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class ProbeSet:
    """Labelled stamps in counts ``(N, bands, H, W)``, their truth, and where they came from."""

    images: np.ndarray
    is_lens: np.ndarray
    truth: dict[str, np.ndarray]
    description: dict[str, Any]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def masks(self) -> dict[str, np.ndarray]:
        """The paper's three test sets as boolean masks over this set."""
        lens = self.is_lens.astype(bool)
        return {"lenses": lens, "nonlenses": ~lens, "mix": np.ones_like(lens)}


def mixed_kinds(n: int, seed: int, config: PopulationConfig) -> np.ndarray:
    """Exactly ``n // 2`` lenses and ``n - n // 2`` non-lenses (drawn by type), shuffled."""
    rng = np.random.default_rng([seed, 7])
    non = PopulationConfig(lens_fraction=0.0, nonlens_mix=config.nonlens_mix).draw_kinds(
        n - n // 2, rng
    )
    kinds = np.concatenate([np.full(n // 2, "lens"), non]).astype(str)
    return kinds[rng.permutation(n)]


def make_probe_set(
    spec: SurveySpec,
    n: int,
    seed: int,
    config: PopulationConfig | None = None,
    seeing_factor: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProbeSet:
    """Simulate a 50/50 probe set of ``n`` objects (same seed: same objects).

    Parameters
    ----------
    spec : SurveySpec
        Survey to simulate.
    n : int
        Objects (half lenses).
    seed : int
        Seed; with ``seeing_factor`` changed only the PSF changes (paired sets).
    config : PopulationConfig, optional
        Population (default: the training population); its centre offsets are in
        pixels of the survey's own grid, as in training sets on ``spec``'s grid
        (:func:`~lensfind.simulation.dataset.population_on_grid`).
    seeing_factor : float, optional
        Fixed PSF FWHM of every object relative to the survey median.
    """
    config = population_on_grid(spec, config)
    kinds = mixed_kinds(n, seed, config)
    sf = None if seeing_factor is None else np.full(n, float(seeing_factor))
    sim = simulate(spec, n, seed, config=config, kinds=kinds, seeing_factor=sf, progress=progress)
    description = {
        "source": "lensfind.simulation",
        "survey": spec.name,
        "n": n,
        "n_lenses": int((kinds == "lens").sum()),
        "seed": seed,
        "seeing_factor": seeing_factor,
    }
    return ProbeSet(sim.images, np.asarray(sim.truth["is_lens"], bool), sim.truth, description)


def score_all(
    scorer: Scorer, images: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Lens probabilities of ``images`` in batches, float64 ``(N,)``."""
    out = np.empty(len(images), dtype=float)
    for start in range(0, len(images), batch_size):
        out[start : start + batch_size] = scorer(images[start : start + batch_size])
    return out


@dataclass
class ProbeResult:
    """The numbers of one probe: a long table, the trend of each curve, and metadata."""

    name: str
    kind: str
    x_label: str
    table: pa.Table
    trends: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _rows(
    p: np.ndarray, s_k: np.ndarray, correct: np.ndarray, edges: np.ndarray, min_count: int
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    b = binned_stats(p, s_k, edges, correct=correct, min_count=min_count)
    return b.columns(), {"n_below": b.n_below, "n_above": b.n_above, "n_nan": b.n_nan}


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    cols: dict[str, list[Any]] = {}
    for r in rows:
        for k, v in r.items():
            cols.setdefault(k, []).extend(np.atleast_1d(v).tolist())
    return pa.table(cols)


def parameter_probe(
    scorers: Mapping[str, Scorer],
    probe_set: ProbeSet,
    column: str,
    edges: np.ndarray,
    threshold: float = 0.5,
    min_count: int = 10,
    test_sets: Sequence[str] = ("lenses",),
    x_label: str | None = None,
) -> ProbeResult:
    """Bin the probe set by a truth column and report ``s_k`` per bin, per model.

    Objects outside every bin (or with NaN) are counted in the trends' ``n_below``,
    ``n_above`` and ``n_nan``, never dropped silently.
    """
    values = np.asarray(probe_set.truth[column], dtype=float)
    rows, trends = [], []
    masks = probe_set.masks()
    for model, scorer in scorers.items():
        prob = score_all(scorer, probe_set.images)
        for ts in test_sets:
            m = masks[ts]
            s_k = correct_class_score(prob[m], probe_set.is_lens[m])
            correct = (prob[m] >= threshold) == probe_set.is_lens[m]
            cols, outside = _rows(values[m], s_k, correct, edges, min_count)
            n_bins = len(cols["n"])
            rows.append({"model": [model] * n_bins, "test_set": [ts] * n_bins,
                         "parameter": [column] * n_bins, **cols})  # fmt: skip
            trend = fit_trend(cols["centre"], cols["mean"], cols["ok"]).as_dict()
            trends.append({"model": model, "test_set": ts, **trend, **outside})
    return ProbeResult(column, "parameter", x_label or column, _table(rows), trends,
                       {"data": probe_set.description, "threshold": threshold,
                        "min_count": min_count, "edges": [float(e) for e in edges]})  # fmt: skip


def _strength_rows(
    model: str,
    p: float,
    prob: np.ndarray,
    base: np.ndarray,
    is_lens: np.ndarray,
    masks: dict[str, np.ndarray],
    threshold: float,
) -> list[dict[str, Any]]:
    rows = []
    for ts, m in masks.items():
        s_k = correct_class_score(prob[m], is_lens[m])
        delta = s_k - correct_class_score(base[m], is_lens[m])
        k = int(((prob[m] >= threshold) == is_lens[m]).sum())
        n = int(m.sum())
        lo, hi = wilson_interval(np.array([k]), np.array([n]))
        rows.append({
            "model": model, "test_set": ts, "p": p, "n": n,
            "mean": float(s_k.mean()) if n else np.nan,
            "std": float(s_k.std()) if n else np.nan,
            "sem": float(s_k.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
            "n_correct": k, "frac_correct": k / n if n else np.nan,
            "ci_lo": float(lo[0]), "ci_hi": float(hi[0]),
            "delta_mean": float(delta.mean()) if n else np.nan,
            "delta_std": float(delta.std()) if n else np.nan,
        })  # fmt: skip
    return rows


def _trends(table: pa.Table) -> list[dict[str, Any]]:
    out = []
    model = np.asarray(table["model"].to_pylist())
    ts = np.asarray(table["test_set"].to_pylist())
    p = table["p"].to_numpy()
    mean = table["mean"].to_numpy()
    for key in dict.fromkeys(zip(model.tolist(), ts.tolist(), strict=True)):
        sel = (model == key[0]) & (ts == key[1])
        out.append({"model": key[0], "test_set": key[1], **fit_trend(p[sel], mean[sel]).as_dict()})
    return out


def perturbation_probe(
    scorers: Mapping[str, Scorer],
    probe_set: ProbeSet,
    name: str,
    perturb: Callable[[np.ndarray, float], np.ndarray],
    strengths: Sequence[float],
    threshold: float = 0.5,
    x_label: str | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProbeResult:
    """Score the probe set perturbed at each strength; per strength the ``s_k`` statistics.

    ``perturb(images, p)`` returns a perturbed copy. ``delta_mean`` and
    ``delta_std`` are the paired change of each object's ``s_k`` against the
    first strength (normally ``p = 0``, the unperturbed set).
    """
    masks = probe_set.masks()
    rows: list[dict[str, Any]] = []
    base: dict[str, np.ndarray] = {}
    for p in strengths:
        images = perturb(probe_set.images, float(p))
        for model, scorer in scorers.items():
            prob = score_all(scorer, images)
            base.setdefault(model, prob)
            rows.extend(_strength_rows(model, float(p), prob, base[model], probe_set.is_lens,
                                       masks, threshold))  # fmt: skip
        if progress is not None:
            progress(1)
    table = _table(rows)
    return ProbeResult(name, "perturbation", x_label or name, table, _trends(table),
                       {"data": probe_set.description, "threshold": threshold,
                        "strengths": [float(s) for s in strengths], **(meta or {})})  # fmt: skip


def psf_probe(
    scorers: Mapping[str, Scorer],
    spec: SurveySpec,
    n: int,
    seed: int,
    factors: Sequence[float] = PSF_FACTORS,
    threshold: float = 0.5,
    config: PopulationConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProbeResult:
    """Re-simulate the same objects with the PSF FWHM scaled by each factor (paired)."""
    first = make_probe_set(spec, n, seed, config, seeing_factor=float(factors[0]))

    def resimulate(_: np.ndarray, p: float) -> np.ndarray:
        if p == float(factors[0]):
            return first.images
        return make_probe_set(spec, n, seed, config, seeing_factor=p).images

    return perturbation_probe(
        scorers, first, "psf", resimulate, factors, threshold,
        x_label="PSF FWHM / training median PSF", progress=progress,
        meta={"resimulated": True},
    )  # fmt: skip


def _surface_rows(
    model: str,
    prob: np.ndarray,
    probe_set: ProbeSet,
    m: np.ndarray,
    xv: np.ndarray,
    x_edges: np.ndarray,
    y_bins: list[tuple[float, float, np.ndarray]],
    threshold: float,
    min_count: int,
    test_set: str,
) -> list[dict[str, Any]]:
    """Rows of one model: for each ``(y_lo, y_hi, selection)`` the x-binned statistics."""
    s_k = correct_class_score(prob[m], probe_set.is_lens[m])
    correct = (prob[m] >= threshold) == probe_set.is_lens[m]
    rows = []
    for y_lo, y_hi, sel in y_bins:
        cols, _ = _rows(xv[m][sel], s_k[sel], correct[sel], x_edges, min_count)
        k = len(cols["n"])
        rows.append({"model": [model] * k, "test_set": [test_set] * k,
                     "y_lo": [y_lo] * k, "y_hi": [y_hi] * k,
                     "y_centre": [0.5 * (y_lo + y_hi)] * k, **cols})  # fmt: skip
    return rows


def surface_probe(
    scorers: Mapping[str, Scorer],
    probe_set: ProbeSet,
    x: str,
    y: str,
    x_edges: np.ndarray,
    y_edges: np.ndarray,
    threshold: float = 0.5,
    min_count: int = 5,
    test_set: str = "lenses",
) -> ProbeResult:
    """``s_k`` statistics over a 2-D grid of two truth columns (e.g. theta_E x source mag)."""
    xv = np.asarray(probe_set.truth[x], dtype=float)
    m = probe_set.masks()[test_set]
    yv = np.asarray(probe_set.truth[y], dtype=float)[m]
    yi = np.searchsorted(y_edges, yv, side="right") - 1
    yi[yv == y_edges[-1]] = len(y_edges) - 2
    y_bins = [(float(y_edges[j]), float(y_edges[j + 1]), yi == j) for j in range(len(y_edges) - 1)]
    rows = []
    for model, scorer in scorers.items():
        prob = score_all(scorer, probe_set.images)
        rows += _surface_rows(model, prob, probe_set, m, xv, x_edges, y_bins, threshold,
                              min_count, test_set)  # fmt: skip
    return ProbeResult(f"{x}__{y}", "surface", x, _table(rows), [],
                       {"data": probe_set.description, "x": x, "y": y, "threshold": threshold,
                        "x_edges": [float(e) for e in x_edges],
                        "y_edges": [float(e) for e in y_edges]})  # fmt: skip


def perturbation_surface(
    scorers: Mapping[str, Scorer],
    probe_set: ProbeSet,
    x: str,
    x_edges: np.ndarray,
    name: str,
    perturb: Callable[[np.ndarray, float], np.ndarray],
    strengths: Sequence[float],
    threshold: float = 0.5,
    min_count: int = 5,
    test_set: str = "lenses",
) -> ProbeResult:
    """``s_k`` statistics over a truth column x perturbation strength (``y`` is the strength).

    A categorical column (``kind``) is binned by category: ``x_edges`` are then
    ``arange(K + 1) - 0.5`` over :func:`truth_categories`' codes, recorded in the
    result's ``x_categories``.
    """
    xv, categories = truth_values(probe_set, x)
    m = probe_set.masks()[test_set]
    everything = np.ones(int(m.sum()), dtype=bool)
    rows = []
    for p in strengths:
        images = perturb(probe_set.images, float(p))
        for model, scorer in scorers.items():
            prob = score_all(scorer, images)
            rows += _surface_rows(model, prob, probe_set, m, xv, x_edges,
                                  [(float(p), float(p), everything)], threshold, min_count,
                                  test_set)  # fmt: skip
    return ProbeResult(f"{x}__{name}", "surface", x, _table(rows), [],
                       {"data": probe_set.description, "x": x, "y": name, "threshold": threshold,
                        "x_edges": [float(e) for e in x_edges], "test_set": test_set,
                        "x_categories": categories,
                        "strengths": [float(s) for s in strengths]})  # fmt: skip


def truth_values(probe_set: ProbeSet, column: str) -> tuple[np.ndarray, list[str] | None]:
    """A truth column as floats, and its sorted categories when it is not numeric.

    A categorical column comes back as each object's index into the categories.
    """
    raw = np.asarray(probe_set.truth[column])
    if raw.dtype.kind in "biuf":
        return raw.astype(float), None
    categories = sorted(set(raw.astype(str).tolist()))
    return np.searchsorted(categories, raw.astype(str)).astype(float), categories
