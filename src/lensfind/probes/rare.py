"""Recall on rare lenses (Wilde et al. 2022, Table 6): single lenses, compound arcs,
double rings and red-source lenses side by side, at the model card's threshold.

Each class is simulated on its own (``n`` objects, seed ``seed`` + class index);
``red_source`` uses the single lenses' seed, so its systems are the single lenses
with only the source colours changed. Non-lenses give the false-positive rate.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.intervals import wilson_interval
from lensfind.probes.report import write_json
from lensfind.probes.sensitivity import score_all
from lensfind.runtime.scorer import Scorer
from lensfind.simulation.dataset import population_on_grid
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import simulate
from lensfind.surveys.spec import SurveySpec
from lensfind.versions import versions

#: Classes in the order of the table; the last is the non-lens reference.
RARE_CLASSES = ("lens", "compound_arc", "double_ring", "red_source", "nonlens")
_SEED_OFFSET = {"lens": 0, "compound_arc": 1, "double_ring": 2, "red_source": 0, "nonlens": 3}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Truth columns written with each object's score (NaN where a class has none).
SCORE_TRUTH = ("kind", "theta_e_arcsec", "mag_g_source", "mag_r_lens", "magnification",
               "source_snr", "theta_e_source1_arcsec", "z_source1", "z_source2")  # fmt: skip


def class_kinds(name: str, n: int, seed: int) -> np.ndarray:
    """The ``n`` object kinds of class ``name`` (non-lenses drawn by the default mix)."""
    if name == "nonlens":
        return PopulationConfig(lens_fraction=0.0).draw_kinds(n, np.random.default_rng([seed, 11]))
    return np.full(n, name)


def recall_row(scores: np.ndarray, threshold: float) -> dict[str, float]:
    """n, number and fraction at or above ``threshold`` (Wilson 95%), score mean and quantiles."""
    s = np.asarray(scores, dtype=float)
    k = int((s >= threshold).sum())
    lo, hi = wilson_interval(np.array(k), np.array(s.size))
    row: dict[str, float] = {
        "n": s.size, "n_above": k, "frac_above": k / s.size,
        "ci_lo": float(lo), "ci_hi": float(hi), "mean_score": float(s.mean()),
    }  # fmt: skip
    for q, v in zip(QUANTILES, np.quantile(s, QUANTILES), strict=True):
        row[f"q{round(q * 100):02d}"] = float(v)
    return row


def rare_probe(
    scorers: Mapping[str, Scorer],
    spec: SurveySpec,
    n: int,
    seed: int,
    thresholds: Mapping[str, float],
    progress: Callable[[int], None] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Score every class with every model.

    Parameters
    ----------
    scorers : mapping
        Model name -> scorer.
    spec : SurveySpec
        Survey to simulate (the models' bands).
    n : int
        Objects per class.
    seed : int
        Base seed (class ``c`` uses ``seed + offset(c)``).
    thresholds : mapping
        Model name -> lens-probability threshold.
    progress : callable, optional
        Called with the number of objects simulated.

    Returns
    -------
    summary : pyarrow.Table
        One row per (model, class): ``recall`` (``false_positive_rate`` for
        ``nonlens``) with its Wilson 95% interval, score mean and quantiles.
    scores : pyarrow.Table
        One row per (model, object): class, score and the truth columns.
    """
    config = population_on_grid(spec)  # centred as the models' training sets on this grid
    rows: list[dict[str, Any]] = []
    per_object: dict[str, list[Any]] = {}
    for name in RARE_CLASSES:
        cseed = seed + _SEED_OFFSET[name]
        kinds = class_kinds(name, n, cseed)
        sim = simulate(spec, n, cseed, config=config, kinds=kinds, progress=progress)
        for model, scorer in scorers.items():
            s = score_all(scorer, sim.images)
            row = recall_row(s, thresholds[model])
            rows.append({"model": model, "class": name, "seed": cseed,
                         "threshold": thresholds[model], **row})  # fmt: skip
            cols = {"model": [model] * n, "class": [name] * n, "score": s.tolist()}
            for key in SCORE_TRUTH:
                value = sim.truth.get(key, np.full(n, np.nan))
                cols[key] = np.asarray(value).tolist()
            for key, value in cols.items():
                per_object.setdefault(key, []).extend(value)
    summary = pa.Table.from_pylist(rows)
    return summary, pa.table(per_object)


def _markdown(summary: pa.Table) -> str:
    t = summary.to_pylist()
    models = list(dict.fromkeys(r["model"] for r in t))
    lines = ["| class | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for name in RARE_CLASSES:
        cells = []
        for m in models:
            r = next(r for r in t if r["model"] == m and r["class"] == name)
            cells.append(f"{r['frac_above']:.3f} [{r['ci_lo']:.3f}, {r['ci_hi']:.3f}]")
        label = "non-lenses (false-positive rate)" if name == "nonlens" else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_rare(
    out_dir: Path,
    summary: pa.Table,
    scores: pa.Table,
    description: dict[str, Any],
) -> dict[str, Path]:
    """Write ``rare.parquet``, ``rare_scores.parquet``, ``rare.json``, ``rare.md`` and PNGs."""
    from lensfind.probes.rare_plots import plot_rare_recall, plot_rare_scores

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out_dir / "rare.parquet", "scores": out_dir / "rare_scores.parquet"}
    pq.write_table(summary, paths["summary"])
    pq.write_table(scores, paths["scores"])
    paths["json"] = write_json(out_dir / "rare.json", {
        "probe": "rare", **description, "table": summary.to_pylist(),
        "versions": versions(), "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    })  # fmt: skip
    paths["markdown"] = out_dir / "rare.md"
    paths["markdown"].write_text(
        "Fraction at or above the threshold (recall; false-positive rate for non-lenses), "
        "Wilson 95% intervals\n\n" + _markdown(summary)
    )
    paths["recall_png"] = plot_rare_recall(summary, out_dir / "rare_recall.png")
    paths["scores_png"] = plot_rare_scores(scores, summary, out_dir / "rare_scores.png")
    return paths
