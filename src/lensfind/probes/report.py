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


def write_report(out_dir: Path, entries: list[tuple[ProbeResult, dict[str, Path]]],
                 title: str, description: dict[str, Any]) -> Path:  # fmt: skip
    """One ``report.html`` linking every probe's plot and numbers, with its trends."""
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<pre>{html.escape(json.dumps(_jsonable(description), indent=2))}</pre>"]  # fmt: skip
    for result, paths in entries:
        links = " | ".join(f'<a href="{p.name}">{k}</a>' for k, p in paths.items())
        rows = "".join(
            f"<tr><td>{html.escape(str(t['model']))}</td><td>{html.escape(str(t['test_set']))}"
            f"</td><td>{html.escape(_trend_text(t))}</td></tr>"
            for t in result.trends
        )
        table = f"<table><tr><th>model</th><th>test set</th><th>trend</th></tr>{rows}</table>"
        parts.append(
            f"<h2>{html.escape(result.name)}</h2><p>{links}</p>"
            f'<img src="{paths["png"].name}" style="max-width:100%">{table if rows else ""}'
        )
    style = "body{font-family:sans-serif;max-width:1300px;margin:auto}td,th{padding:2px 8px}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out_dir / "report.html"
    path.write_text(page)
    return path
