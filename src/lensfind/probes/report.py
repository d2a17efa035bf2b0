"""Writing probe results: Parquet numbers, JSON metadata, PNG plots, one HTML report."""

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from lensfind.probes.plots import plot_curves, plot_surface
from lensfind.probes.sensitivity import ProbeResult
from lensfind.versions import versions


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (NaN/inf as null) atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2))
    tmp.replace(path)
    return path


def write_result(result: ProbeResult, out_dir: Path, models: dict[str, str]) -> dict[str, Path]:
    """Write ``<name>.parquet``, ``<name>.json`` and ``<name>.png`` into ``out_dir``.

    Parameters
    ----------
    result : ProbeResult
        The probe's numbers.
    out_dir : Path
        Output directory (created).
    models : dict
        Model name -> sha256 of its ONNX file (recorded with the numbers).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    parquet = out_dir / f"{result.name}.parquet"
    pq.write_table(result.table, parquet)
    meta = write_json(out_dir / f"{result.name}.json", {
        "probe": result.name, "kind": result.kind, "x_label": result.x_label,
        "models": models, "trends": result.trends, **result.meta,
        "versions": versions(), "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    })  # fmt: skip
    png = out_dir / f"{result.name}.png"
    (plot_surface if result.kind == "surface" else plot_curves)(result, png)
    return {"parquet": parquet, "json": meta, "png": png}


def _trend_text(trend: dict[str, Any]) -> str:
    slope = trend.get("slope")
    if slope is None or not np.isfinite(slope):
        return "no trend (too few bins)"
    lo, hi = trend["slope_ci"]
    flat = "consistent with zero" if trend["zero_consistent"] else "significant"
    half = trend.get("p_half")
    cross = f"; mean s_k crosses 0.5 at {half:.3g}" if half is not None else ""
    return f"slope {slope:.3g} [{lo:.3g}, {hi:.3g}] ({flat}){cross}"


def largest_change(result: ProbeResult, model: str, test_set: str) -> str:
    """Where one curve of a probe moves most, in words.

    A perturbation: the largest change of the mean ``s_k`` from the first
    strength (normally the unperturbed set) and the strength it happens at. A
    parameter: the lowest and the highest bin mean (bins under ``min_count``
    left out) and where they are.
    """
    t = result.table
    sel = (np.asarray(t["model"].to_pylist()) == model) & (
        np.asarray(t["test_set"].to_pylist()) == test_set
    )
    if "ok" in t.column_names:
        sel &= np.asarray(t["ok"].to_pylist(), dtype=bool)
    x_name = "p" if "p" in t.column_names else "centre"
    x = np.asarray(t[x_name].to_pylist(), dtype=float)[sel]
    mean = np.asarray(t["mean"].to_pylist(), dtype=float)[sel]
    good = np.isfinite(mean)
    x, mean = x[good], mean[good]
    if mean.size < 2:
        return "too few bins"
    if x_name == "p":
        order = np.argsort(x, kind="stable")
        x, mean = x[order], mean[order]
        k = int(np.argmax(np.abs(mean - mean[0])))
        return f"{mean[k] - mean[0]:+.3f} at {x[k]:.3g} (from {mean[0]:.3f} at {x[0]:.3g})"
    lo, hi = int(np.argmin(mean)), int(np.argmax(mean))
    return (
        f"{mean[lo] - mean[hi]:+.3f}: lowest {mean[lo]:.3f} at {x[lo]:.3g}, "
        f"highest {mean[hi]:.3f} at {x[hi]:.3g}"
    )


def _significance(trend: dict[str, Any]) -> str:
    slope = trend.get("slope")
    if slope is None or not np.isfinite(slope) or not np.isfinite(trend["slope_ci"][0]):
        return "too few bins"
    return "no (consistent with zero)" if trend["zero_consistent"] else "<b>yes</b>"


def _findings(entries: list[tuple[ProbeResult, dict[str, Path]]], several: bool) -> str:
    """The report's opening table: one row per probe curve with a trend."""
    head = "".join(f"<th>{h}</th>" for h in (
        "probe", *(["model"] if several else []), "test set", "trend slope [95% interval]",
        "significant", "largest change of mean s_k (where)"))  # fmt: skip
    rows = []
    for result, _ in entries:
        for t in result.trends:
            slope = t.get("slope")
            shown = ("—" if slope is None or not np.isfinite(slope) else
                     f"{slope:.3g} [{t['slope_ci'][0]:.3g}, {t['slope_ci'][1]:.3g}]")  # fmt: skip
            cells = [f'<a href="#{html.escape(result.name)}">{html.escape(result.name)}</a>',
                     *([html.escape(str(t["model"]))] if several else []),
                     html.escape(str(t["test_set"])), shown, _significance(t),
                     html.escape(largest_change(result, t["model"], t["test_set"]))]  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='findings'><tr>{head}</tr>{''.join(rows)}</table>"


def _provenance(description: dict[str, Any]) -> str:
    """The run's description as a collapsed key/value table (sha256s shortened, full on hover)."""
    rows = []
    for key, value in _jsonable(description).items():
        if isinstance(value, dict):
            text = ", ".join(
                f"<span title='{html.escape(str(v))}'>{html.escape(str(k))} "
                f"({html.escape(str(v)[:12])})</span>"
                for k, v in value.items()
            )
        elif isinstance(value, list):
            text = html.escape(", ".join(map(str, value)))
        else:
            text = html.escape(str(value))
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{text}</td></tr>")
    versions_row = ", ".join(f"{k} {v}" for k, v in versions().items())
    rows.append(f"<tr><th>versions</th><td>{html.escape(versions_row)}</td></tr>")
    return f"<details><summary>provenance</summary><table>{''.join(rows)}</table></details>"


def _sparse_note(result: ProbeResult) -> str:
    sparse = result.meta.get("sparse_bins")
    if not sparse:
        return ""
    fill = (f"; --n {sparse['suggested_n']} would fill them" if sparse["suggested_n"]
            else "; none holds an object")  # fmt: skip
    return (f"<p class='warn'>{sparse['n_sparse']} of {sparse['n_bins']} bins hold fewer than "
            f"{sparse['min_count']} objects (--min-count) and are left out of the plot and the "
            f"trend{html.escape(fill)}.</p>")  # fmt: skip


def write_report(out_dir: Path, entries: list[tuple[ProbeResult, dict[str, Path]]],
                 title: str, description: dict[str, Any]) -> Path:  # fmt: skip
    """One ``report.html``: a findings table, then per probe its plot, data links and trends.

    The findings table (probe, test set, trend slope with its 95% interval,
    significant or not, largest change and where) comes first; the
    provenance (data, models, versions) is a collapsed block at the end.
    """
    several = len(description.get("models", {})) > 1
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(entries)} result(s) on {html.escape(str(description.get('n', '?')))} "
             "simulated objects; s_k is the score of the correct class (the lens probability "
             "for lenses, 1 minus it for non-lenses).</p>",
             _findings(entries, several)]  # fmt: skip
    for result, paths in entries:
        links = " | ".join(f'<a href="{p.name}">{k}</a>' for k, p in paths.items())
        rows = "".join(
            f"<tr><td>{html.escape(str(t['model']))}</td><td>{html.escape(str(t['test_set']))}"
            f"</td><td>{html.escape(_trend_text(t))}</td></tr>"
            for t in result.trends
        )
        table = f"<table><tr><th>model</th><th>test set</th><th>trend</th></tr>{rows}</table>"
        name = html.escape(result.name)
        parts.append(
            f"<h2 id='{name}'>{name}</h2><p>data: {links}</p>{_sparse_note(result)}"
            f'<img src="{paths["png"].name}" style="max-width:100%">{table if rows else ""}'
        )
    parts.append(_provenance(description))
    style = ("body{font-family:sans-serif;max-width:1300px;margin:auto}td,th{padding:2px 8px;"
             "text-align:left}.findings td,.findings th{border-bottom:1px solid #ddd}"
             ".warn{color:#a60}")  # fmt: skip
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out_dir / "report.html"
    path.write_text(page)
    return path
