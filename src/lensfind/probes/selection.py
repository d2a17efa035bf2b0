"""Selection functions by injection-recovery.

Simulated lensed sources are injected into survey cutouts of plausible
deflectors (the cutout's galaxy acts as deflector) and scored like everything
else; the fraction recovered above the threshold is the completeness of the
scan: which lenses of the injected population it could and could not have
found. It is conditional on that population (recorded beside it), and on the
hosts: an injection whose host scores above the threshold itself is left out
(the host is a candidate, not a place where a lens could hide).

Published: the completeness per bin of each parameter (marginals), on a
joint grid (Einstein radius x lensed source magnitude x seeing x host class),
and every injection with its parameters, so that users can reweight to their
own population (:mod:`lensfind.probes.reweight`).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.intervals import wilson_interval
from lensfind.parquet_files import read_parquet
from lensfind.probes.stats import binned_stats, make_edges

SELECTION_NAME = "selection_function.parquet"
JOINT_NAME = "selection_function_joint.parquet"
INJECTIONS_NAME = "injections.parquet"
SELECTION_PNG = "selection_function.png"
SELECTION_MAP_PNG = "selection_function_map.png"
#: Selection-function parameters and their bin widths (arcsec, mag, mag, arcsec).
SELECTION_BINS = {
    "theta_e_arcsec": 0.25,
    "mag_g_source": 0.5,
    "mag_r_lens": 0.5,
    "psf_fwhm_arcsec": 0.1,
}
#: Bin widths of the joint grid (coarser: it is 3-D, and split by host class).
JOINT_BINS = {"theta_e_arcsec": 0.5, "mag_g_source": 1.0, "psf_fwhm_arcsec": 0.2}
#: A published bin with fewer injections than this is flagged as sparse.
MIN_BIN_COUNT = 30
#: What the completeness means, written beside every selection function.
CONDITIONAL = (
    "completeness of the injected population (see 'population') in hosts passing "
    "'host_selection', at the run's threshold; hosts scoring above it are left out"
)


def used_injections(injections: pa.Table, threshold: float) -> np.ndarray:
    """The injections the selection function counts: scored, host not itself a candidate."""
    score = injections["score"].to_numpy(zero_copy_only=False).astype(float)
    used = np.isfinite(score)
    if "host_score" in injections.column_names:
        host = injections["host_score"].to_numpy(zero_copy_only=False).astype(float)
        used &= ~(host >= threshold)
    return used


def _edges(values: np.ndarray, width: float) -> np.ndarray:
    lo = np.floor(np.nanmin(values) / width) * width
    hi = max(np.ceil(np.nanmax(values) / width) * width, lo + width)
    return make_edges(values, width=width, value_range=(float(lo), float(hi)))


def selection_table(
    injections: pa.Table, threshold: float, widths: dict[str, float] | None = None
) -> pa.Table:
    """Completeness per bin of each selection parameter (the marginals).

    Counts the injections of :func:`used_injections`. Completeness is the
    fraction with ``score >= threshold``, with its Wilson 95% interval.
    """
    widths = widths or SELECTION_BINS
    used = used_injections(injections, threshold)
    score = injections["score"].to_numpy(zero_copy_only=False).astype(float)[used]
    cols: dict[str, list[Any]] = {}
    for param, width in widths.items():
        if param not in injections.column_names:
            continue
        values = injections[param].to_numpy(zero_copy_only=False).astype(float)[used]
        if not np.isfinite(values).any():
            continue
        b = binned_stats(values, score, _edges(values, width), correct=score >= threshold)
        for key, value in {"parameter": [param] * len(b.n), **b.columns()}.items():
            cols.setdefault(key, []).extend(np.asarray(value).tolist())
    for old, new in (("frac_correct", "completeness"), ("n_correct", "n_recovered"),
                     ("mean", "mean_score"), ("std", "std_score")):  # fmt: skip
        if old in cols:
            cols[new] = cols.pop(old)
    cols.pop("sem", None)
    return pa.table(cols)


def joint_table(
    injections: pa.Table, threshold: float, widths: dict[str, float] | None = None
) -> pa.Table:
    """Completeness on the joint grid of ``widths``' parameters, split by host class.

    One row per non-empty cell: ``<param>_lo``/``<param>_hi`` per parameter,
    ``host_class``, ``n``, ``n_recovered``, ``completeness``, ``ci_lo``,
    ``ci_hi`` (Wilson 95%).
    """
    widths = {p: w for p, w in (widths or JOINT_BINS).items() if p in injections.column_names}
    used = used_injections(injections, threshold)
    values = {p: injections[p].to_numpy(zero_copy_only=False).astype(float)[used] for p in widths}
    finite = np.ones(int(used.sum()), dtype=bool)
    for v in values.values():
        finite &= np.isfinite(v)
    hit = injections["score"].to_numpy(zero_copy_only=False).astype(float)[used] >= threshold
    classes = (injections["host_class"].to_numpy(zero_copy_only=False)[used]
               if "host_class" in injections.column_names
               else np.full(int(used.sum()), "unknown"))  # fmt: skip
    keys, lows = [], {}
    for p, w in widths.items():
        lows[p] = np.floor(np.nanmin(values[p][finite]) / w) * w if finite.any() else 0.0
        safe = np.where(finite, values[p], lows[p])  # rows with a NaN are dropped below
        keys.append(np.floor((safe - lows[p]) / w).astype(np.int64))
    _, cls = np.unique(np.asarray(classes, dtype=str), return_inverse=True)
    table = np.stack([*keys, cls], axis=1)[finite] if finite.any() else np.zeros((0, 1), int)
    cells, inverse = np.unique(table, axis=0, return_inverse=True)
    n = np.bincount(inverse.ravel(), minlength=len(cells))
    k = np.bincount(inverse.ravel(), weights=hit[finite].astype(float), minlength=len(cells))
    lo, hi = wilson_interval(k, n)
    names = np.unique(np.asarray(classes, dtype=str))
    out: dict[str, Any] = {}
    for j, (p, w) in enumerate(widths.items()):
        out[f"{p}_lo"] = lows[p] + cells[:, j] * w
        out[f"{p}_hi"] = lows[p] + (cells[:, j] + 1) * w
    out["host_class"] = names[cells[:, -1]] if len(cells) else np.array([], dtype=str)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.update(n=n, n_recovered=k.astype(np.int64), completeness=k / n, ci_lo=lo, ci_hi=hi)
    return pa.table(out)


def sparse_bins(table: pa.Table, minimum: int = MIN_BIN_COUNT) -> list[dict[str, Any]]:
    """The populated marginal bins with fewer than ``minimum`` injections."""
    rows = table.to_pylist()
    return [{"parameter": r["parameter"], "lo": round(r["lo"], 4), "hi": round(r["hi"], 4),
             "n": r["n"]} for r in rows if 0 < r["n"] < minimum]  # fmt: skip


def _with_metadata(table: pa.Table, meta: dict[str, Any]) -> pa.Table:
    return table.replace_schema_metadata({b"lensfind": json.dumps(meta).encode()})


def write_selection(
    out_dir: Path,
    injections: pa.Table,
    threshold: float,
    host_positive_rate: float | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``injections.parquet``, the marginal and joint selection functions and plots.

    ``context`` (what was injected where: population, host selection, rates)
    goes into every file's metadata beside :data:`CONDITIONAL`. Returns the
    summary entries: injections, how many were left out (host a candidate),
    overall completeness, sparse bins, the files, and (passed through) the
    fraction of the scan's own cutouts above the threshold.
    """
    used = used_injections(injections, threshold)
    score = injections["score"].to_numpy(zero_copy_only=False).astype(float)
    scored = np.isfinite(score)
    meta = {"threshold": threshold, "conditional_on": CONDITIONAL, **(context or {})}
    injections = injections.append_column("in_selection", pa.array(used))
    pq.write_table(_with_metadata(injections, meta), out_dir / INJECTIONS_NAME)
    summary: dict[str, Any] = {
        "n_injected": int(injections.num_rows),
        "n_injected_scored": int(scored.sum()),
        "n_excluded_host_candidates": int((scored & ~used).sum()),
        "n_used": int(used.sum()),
        "completeness": float((score[used] >= threshold).mean()) if used.any() else None,
        # every scored injection, hosts that are candidates themselves included: what a
        # planted-lens recall measures (it differs where many hosts are candidates)
        "completeness_all_hosts": float((score[scored] >= threshold).mean())
        if scored.any()
        else None,
        "conditional_on": CONDITIONAL,
    }
    if host_positive_rate is not None:
        summary["host_positive_rate"] = host_positive_rate
    if used.any():
        table = selection_table(injections, threshold)
        pq.write_table(_with_metadata(table, meta), out_dir / SELECTION_NAME)
        joint = joint_table(injections, threshold)
        pq.write_table(_with_metadata(joint, meta), out_dir / JOINT_NAME)
        title = _title(context or {}, threshold, int(used.sum()))
        from lensfind.probes.plots import plot_completeness, plot_completeness_map  # matplotlib

        plot_completeness(table, out_dir / SELECTION_PNG, threshold, title, MIN_BIN_COUNT)
        plot_completeness_map(injections.filter(pa.array(used)), out_dir / SELECTION_MAP_PNG,
                              threshold, title)  # fmt: skip
        summary["sparse_bins"] = sparse_bins(table)
        summary.update(file=SELECTION_NAME, joint_file=JOINT_NAME, plot=SELECTION_PNG,
                       map_plot=SELECTION_MAP_PNG)  # fmt: skip
    return summary


def _title(context: dict[str, Any], threshold: float, n: int) -> str:
    pop = context.get("population") or {}
    if not pop:
        return f"{n} injections, p >= {threshold:g}"
    te, sg = pop["theta_e_range_arcsec"], pop["source_mag_g_range"]
    return (f"{n} injections: θ_E {te[0]:g}-{te[1]:g}\", source g {sg[0]:g}-{sg[1]:g} "
            f"(unlensed), S/N >= {pop['min_source_snr']:g}; p >= {threshold:g}")  # fmt: skip


def planted_recall(
    scores: pa.Table, truth: pa.Table, threshold: float, param: str, edges: np.ndarray
) -> dict[str, np.ndarray]:
    """Recall of a synthetic region's planted lenses per bin of a truth ``param``.

    ``scores``: the run's rows (``object_id``, ``status``, ``score``);
    ``truth``: the region's ``truth.parquet``. Counts the scored planted lenses.
    """
    t = truth.filter(pa.array(truth["is_lens"].to_numpy(zero_copy_only=False).astype(bool)))
    by_id = dict(zip(scores["object_id"].to_pylist(), scores["score"].to_pylist(), strict=True))
    s = np.array([by_id.get(i, np.nan) for i in t["object_id"].to_pylist()], dtype=float)
    ok = np.isfinite(s) & np.isfinite(t[param].to_numpy(zero_copy_only=False).astype(float))
    v = t[param].to_numpy(zero_copy_only=False).astype(float)[ok]
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    inside = (v >= edges[0]) & (v <= edges[-1])
    n = np.bincount(idx[inside], minlength=len(edges) - 1)
    k = np.bincount(idx[inside], weights=(s[ok] >= threshold)[inside].astype(float),
                    minlength=len(edges) - 1)  # fmt: skip
    lo, hi = wilson_interval(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"n": n, "n_recovered": k.astype(int), "recall": k / n, "ci_lo": lo, "ci_hi": hi,
                "overall": float(k.sum() / n.sum()) if n.sum() else float("nan")}  # fmt: skip


def truth_check(
    table: pa.Table,
    scores: pa.Table,
    truth: pa.Table,
    threshold: float,
    completeness: float,
    all_hosts: float | None = None,
) -> dict[str, Any]:
    """The published selection function against a synthetic region's planted lenses.

    Per bin of Einstein radius and lensed source magnitude of ``table`` (the
    marginals): the planted recall, its Wilson interval, and whether it
    overlaps the published interval; and the overall completeness over the
    planted recall (and ``all_hosts``, the completeness over every host, candidates
    included, over it). Planted lenses are the truth the injections must reproduce.
    """
    out: dict[str, Any] = {"n_planted": int(truth["is_lens"].to_numpy(zero_copy_only=False).sum())}
    for param in ("theta_e_arcsec", "mag_g_source"):
        rows = [r for r in table.to_pylist() if r["parameter"] == param]
        if not rows:
            continue
        edges = np.array([rows[0]["lo"]] + [r["hi"] for r in rows])
        rec = planted_recall(scores, truth, threshold, param, edges)
        out["planted_recall"] = rec["overall"]
        out[param] = [
            {"lo": r["lo"], "hi": r["hi"], "n_injected": r["n"], "completeness": r["completeness"],
             "n_planted": int(rec["n"][i]), "planted_recall": float(rec["recall"][i]),
             "overlap": bool(rec["ci_lo"][i] <= r["ci_hi"] and r["ci_lo"] <= rec["ci_hi"][i])}
            for i, r in enumerate(rows) if r["n"] > 0 and rec["n"][i] > 0
        ]  # fmt: skip
    if out.get("planted_recall"):
        out["completeness_over_planted_recall"] = completeness / out["planted_recall"]
        if all_hosts is not None:
            out["completeness_all_hosts_over_planted_recall"] = all_hosts / out["planted_recall"]
    return out


def run_truth_check(
    run_dir: Path, truth_file: Path, threshold: float, selection: dict[str, Any]
) -> dict[str, Any]:
    """:func:`truth_check` of a run directory against a synthetic region's ``truth.parquet``."""
    scores = pa.concat_tables(
        [read_parquet(f, columns=["object_id", "status", "score"])
         for f in sorted((run_dir / "scores").glob("*.parquet"))]
    )  # fmt: skip
    table = read_parquet(run_dir / selection["file"])
    all_hosts = selection.get("completeness_all_hosts")
    return truth_check(table, scores, read_parquet(truth_file), threshold,
                       selection["completeness"], all_hosts)  # fmt: skip
