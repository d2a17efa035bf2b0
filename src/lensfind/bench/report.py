"""Benchmark records: the machine, versions and spreads, and their JSON, Markdown and PNG.

Shared by ``engine bench models`` and ``engine bench datapath``: each result is
written as ``<date>-<machine>-<benchmark>.json`` with a Markdown table and a
plot beside it, all generated from the JSON record.
"""

import json
import os
import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.plotting import pyplot
from lensfind.versions import versions

PRECISION_ORDER = ("fp32", "fp16", "int8")


def machine_info() -> dict[str, Any]:
    """CPU, core count, GPUs and platform of this machine."""
    from lensfind.runtime.cuda import list_gpus

    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", text).group(1).strip()  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    gpus = [g.__dict__ for g in list_gpus()]
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "gpus": gpus}


def machine_slug(machine: dict[str, Any]) -> str:
    """A short file-name label: the GPU's name, else the CPU's and the core count."""
    if machine["gpus"]:
        name = machine["gpus"][0]["name"]
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    cpu = re.sub(r"[^a-z0-9]+", "-", machine["cpu"].lower()).strip("-")
    return f"{cpu}-{machine['cpus']}cpu"


def all_versions() -> dict[str, str]:
    """Package versions plus the CUDA runtime and driver, where there are any."""
    out = versions()
    try:
        from lensfind.runtime.cuda import cudart

        rt = cudart()
        out["cuda_runtime"] = rt.runtime_version()
        out["cuda_driver"] = rt.driver_version() or "no driver"
    except Exception:
        out["cuda_runtime"] = "not available"
    return out


def envelope(benchmark: str, command: str) -> dict[str, Any]:
    """The fields every benchmark record opens with: what, when, where, with what, how run.

    ``machine`` (:func:`machine_info`, keeping ``processor``, the architecture),
    ``machine_slug`` for file names, ``versions`` (:func:`all_versions`) and the
    ``command`` that reproduces the record.
    """
    machine = {**machine_info(), "processor": platform.machine()}
    return {
        "benchmark": benchmark,
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "versions": all_versions(),
        "command": command,
    }


def write_json(result: dict[str, Any], stem: Path) -> Path:
    """Write ``result`` to ``<stem>[-k].json`` (the first free name: reruns add, never replace)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = fresh_stem(stem).with_suffix("")
    path = path.with_name(path.name + ".json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def write_result_files(
    result: dict[str, Any],
    out_dir: Path,
    markdown: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], Path],
) -> dict[str, Path]:
    """Write ``<date>-<machine>-<benchmark>.json``, its ``.md`` table and ``.png`` plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = result_stem(result, out_dir)
    paths = {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    paths["md"].write_text(markdown(result))
    plot(result, paths["png"])
    return paths


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and every value."""
    return {
        "median": float(np.median(values)),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 4) for v in values],
    }


def fresh_stem(stem: Path, suffix: str = ".json") -> Path:
    """``stem``, else ``stem-2``, ``stem-3``...: the first without a ``suffix`` file.

    A benchmark rerun on the same day adds a result instead of overwriting one.
    """
    k, out = 1, stem
    while out.with_name(out.name + suffix).exists():
        k += 1
        out = stem.with_name(f"{stem.name}-{k}")
    return out


def result_stem(result: dict[str, Any], out_dir: Path) -> Path:
    """``out_dir/<date>-<machine>-<benchmark>[-k]`` (add the suffix)."""
    name = f"{result['date_utc'][:10]}-{result['machine_slug']}-{result['benchmark']}"
    return fresh_stem(out_dir / name)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def models_markdown(result: dict[str, Any]) -> str:
    """Markdown tables of a ``bench models`` result: throughput, then latency."""
    m, s = result["machine"], result["settings"]
    gpus = ", ".join(g["name"] for g in m["gpus"]) or "none"
    lines = [
        f"# engine bench models, {result['date_utc'][:10]}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} cores; GPU: {gpus}. Threads {s['threads']}; "
        f"{s['repeats']} interleaved repeats of >= {s['min_cutouts']} cutouts; median "
        "[min-max]. Command: `" + result["command"] + "`.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
    ]
    batches = s["batch_sizes"]
    for model in result["models"]:
        rows = [r for r in result["results"] if r["model"] == model["name"]]
        keys = sorted(
            {(r["runtime"], r["precision"], r["mode"]) for r in rows},
            key=lambda k: (k[0], PRECISION_ORDER.index(k[1]), k[2]),
        )
        cell = {(r["runtime"], r["precision"], r["mode"], r["batch_size"]): r for r in rows}
        head = "| runtime | precision | mode | " + " | ".join(f"batch {b}" for b in batches) + " |"
        rule = "| --- | --- | --- |" + " ---: |" * len(batches)
        for what, title in (("cutouts_per_s", "cutouts/s"), ("latency_ms", "ms per batch")):
            lines += [
                "",
                f"## {model['name']} ({model['kind']}, "
                f"{'x'.join(map(str, model['input_shape']))}): {title}",
                "",
                head,
                rule,
            ]
            for k in keys:
                vals = []
                for b in batches:
                    r = cell.get((*k, b))
                    v = r[what] if r else None
                    spread_ = (
                        f" [{_fmt(v['min'])}-{_fmt(v['max'])}]"
                        if v and what == "cutouts_per_s"
                        else ""
                    )
                    vals.append(f"{_fmt(v['median'])}{spread_}" if v else "-")
                lines.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(vals) + " |")
        lines += [
            "",
            f"Normalisation (asinh, numpy): {_fmt(model['normalisation_cutouts_per_s'])} "
            "cutouts/s.",
        ]
    goal = result["goal"]
    lines += [
        "",
        "## Goal",
        "",
        f"{goal['criterion']}: **{'met' if goal['met'] else 'NOT met'}**"
        f"; ONNX Runtime / torch: {json.dumps(goal['ort_over_torch'])}",
    ]
    if result["skipped"]:
        lines += ["", "## Not measured", ""]
        for sk in result["skipped"]:
            where = ", ".join(f"{k} {v}" for k, v in sk.items() if k != "reason")
            lines.append(f"- {where}: {sk['reason']}")
    return "\n".join(lines) + "\n"


def plot_models(result: dict[str, Any], path: Path) -> Path:
    """Throughput against batch size, one panel per model, one line per runtime."""
    plt = pyplot()

    models = result["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in result["results"] if r["model"] == model["name"]]
        for key in sorted({(r["runtime"], r["precision"], r["mode"]) for r in rows}):
            pts = sorted(
                (r["batch_size"], r["cutouts_per_s"])
                for r in rows
                if (r["runtime"], r["precision"], r["mode"]) == key
            )
            b = [p[0] for p in pts]
            med = np.array([p[1]["median"] for p in pts])
            err = [med - [p[1]["min"] for p in pts], [p[1]["max"] for p in pts] - med]
            ax.errorbar(b, med, yerr=err, marker="o", capsize=3, label=" ".join(key))
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            result["settings"]["batch_sizes"], map(str, result["settings"]["batch_sizes"])
        )
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("cutouts / s")
        ax.set_title(f"{model['name']} ({'x'.join(map(str, model['input_shape']))})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"engine bench models, {result['machine_slug']}, {result['date_utc'][:10]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_models_result(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``<date>-<machine>-models.json``, ``.md`` and ``.png`` into ``out_dir``."""
    return write_result_files(result, out_dir, models_markdown, plot_models)


def datapath_markdown(result: dict[str, Any]) -> str:
    """A Markdown table of a ``bench datapath`` result."""
    m, s = result["machine"], result["settings"]
    lines = [
        f"# engine bench datapath, {result['date_utc'][:10]}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} cores. Survey {s['survey']}, cutouts "
        f"{'x'.join(map(str, s['cutout']))}; {s['repeats']} repeats, median [min-max]. "
        f"Command: `{result['command']}`.",
        "",
        "| stage | cutouts/s | min | max | notes |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, r in result["stages"].items():
        note = r["how"]
        if "bytes_per_cutout" in r:
            note += f"; {r['bytes_per_cutout'] / 1024:.1f} KiB per cutout on disk"
        cells = " | ".join(f"{r[k]:,.0f}" for k in ("median", "min", "max"))
        lines.append(f"| {name} | {cells} | {note} |")
    return "\n".join(lines) + "\n"


def plot_datapath(result: dict[str, Any], path: Path) -> Path:
    """Horizontal bars of cutouts/s per stage (log scale), min-max as error bars."""
    plt = pyplot()

    names = list(result["stages"])
    med = np.array([result["stages"][n]["median"] for n in names])
    lo = med - [result["stages"][n]["min"] for n in names]
    hi = np.array([result["stages"][n]["max"] for n in names]) - med
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    ax.barh(names, med, xerr=[lo, hi], capsize=3, color="tab:blue")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("cutouts / s")
    ax.set_title(f"engine bench datapath, {result['machine_slug']}, {result['date_utc'][:10]}")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_datapath_result(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``<date>-<machine>-datapath.json``, ``.md`` and ``.png`` into ``out_dir``."""
    return write_result_files(result, out_dir, datapath_markdown, plot_datapath)
