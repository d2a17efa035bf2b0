"""Selection functions by injection-recovery.

Simulated lensed sources are injected into survey cutouts (the cutout's galaxy
acts as deflector) and scored like everything else; the fraction recovered
above the threshold, in bins of Einstein radius, lensed source g magnitude,
deflector r magnitude and seeing, is the completeness of the scan: which
lenses it could and could not have found.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.probes.plots import plot_completeness
from lensfind.probes.stats import binned_stats, make_edges

SELECTION_NAME = "selection_function.parquet"
INJECTIONS_NAME = "injections.parquet"
#: Selection-function parameters and their bin widths (arcsec, mag, mag, arcsec).
SELECTION_BINS = {
    "theta_e_arcsec": 0.25,
    "mag_g_source": 0.5,
    "mag_r_lens": 0.5,
    "psf_fwhm_arcsec": 0.1,
}


def selection_table(
    injections: pa.Table, threshold: float, widths: dict[str, float] | None = None
) -> pa.Table:
    """Completeness per bin of each selection parameter, from scored injections.

    ``injections`` needs ``score`` and the parameter columns; unscored rows
    (NaN score) are left out. Completeness is the fraction with ``score >=
    threshold``, with its Wilson 95% interval.
    """
    widths = widths or SELECTION_BINS
    score = injections["score"].to_numpy(zero_copy_only=False).astype(float)
    scored = np.isfinite(score)
    cols: dict[str, list[Any]] = {}
    for param, width in widths.items():
        if param not in injections.column_names:
            continue
        values = injections[param].to_numpy(zero_copy_only=False).astype(float)[scored]
        if not np.isfinite(values).any():
            continue
        lo = np.floor(np.nanmin(values) / width) * width
        hi = max(np.ceil(np.nanmax(values) / width) * width, lo + width)
        edges = make_edges(values, width=width, value_range=(float(lo), float(hi)))
        s = score[scored]
        b = binned_stats(values, s, edges, correct=s >= threshold)
        for key, value in {"parameter": [param] * len(b.n), **b.columns()}.items():
            cols.setdefault(key, []).extend(np.asarray(value).tolist())
    for old, new in (("frac_correct", "completeness"), ("n_correct", "n_recovered"),
                     ("mean", "mean_score"), ("std", "std_score")):  # fmt: skip
        if old in cols:
            cols[new] = cols.pop(old)
    cols.pop("sem", None)
    return pa.table(cols)


def write_selection(
    out_dir: Path, injections: pa.Table, threshold: float, host_positive_rate: float | None = None
) -> dict[str, Any]:
    """Write ``injections.parquet``, ``selection_function.parquet`` and its PNG.

    Returns the summary entries: injections, overall completeness, and (passed
    through) the fraction of the scan's own cutouts above the threshold.
    """
    pq.write_table(injections, out_dir / INJECTIONS_NAME)
    score = injections["score"].to_numpy(zero_copy_only=False).astype(float)
    scored = np.isfinite(score)
    summary: dict[str, Any] = {
        "n_injected": int(injections.num_rows),
        "n_injected_scored": int(scored.sum()),
        "completeness": float((score[scored] >= threshold).mean()) if scored.any() else None,
    }
    if host_positive_rate is not None:
        summary["host_positive_rate"] = host_positive_rate
    if scored.any():
        table = selection_table(injections, threshold)
        pq.write_table(table, out_dir / SELECTION_NAME)
        plot_completeness(table, out_dir / "selection_function.png", threshold)
        summary["file"] = SELECTION_NAME
    return summary
