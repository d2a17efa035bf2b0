"""``engine bench models``: model throughput and latency per runtime, precision and batch size.

Every runtime scores the same normalised cutouts (simulated for shipped models,
Gaussian for seed architectures with random weights), so the numbers are the
model alone; the card's normalisation is timed apart. Repeats are interleaved
across runtimes (repeat 1 of every runtime, then repeat 2, ...) so that machine
load drifts hit all of them alike and the ratios come from one run. On GPUs,
``host`` timings include the copies from and to host memory, ``device`` timings
start and end with the data on the GPU.
"""

import math
import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind.bench.report import (
    PRECISION_ORDER,
    envelope,
    spread,
)
from lensfind.bench.runtimes import (
    Run,
    Variant,
    arch_card,
    available_runtimes,
    make_runs,
    precision_card,
    torch_threads,
)
from lensfind.errors import ConfigError
from lensfind.runtime.card import ModelCard

BATCH_SIZES = (1, 16, 64, 256)
QUICK_BATCH_SIZES = (1, 8)
PRECISIONS = PRECISION_ORDER


@dataclass
class _Base:
    """A model in fp32: card, torch module (or None), prepared normalised inputs."""

    kind: str
    card: ModelCard
    module: Any
    inputs: np.ndarray

    def record(self) -> dict[str, Any]:
        seconds = []
        for _ in range(3):
            t0 = time.perf_counter()
            self.card.normalisation(self.inputs)
            seconds.append(time.perf_counter() - t0)
        rate = len(self.inputs) / float(np.median(seconds))
        return {"name": self.card.name, "kind": self.kind,
                "input_shape": list(self.card.input_shape), "sha256": self.card.sha256,
                "torch_weights": self.module is not None,
                "normalisation_cutouts_per_s": rate}  # fmt: skip


@dataclass
class _Cell:
    """One (model, runtime, precision, mode, batch): its runner and timings (s per call)."""

    where: dict[str, Any]
    run: Run
    iters: int
    times: list[float] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        b = self.where["batch_size"]
        return {**self.where, "iterations": self.iters,
                "cutouts_per_s": spread([b / t for t in self.times]),
                "latency_ms": spread([1e3 * t for t in self.times])}  # fmt: skip


def _bases(
    models: list[str] | None,
    archs: tuple[str, ...],
    runtimes: list[str],
    n: int,
    workdir: Path,
    skipped: list[dict[str, Any]],
) -> list[_Base]:
    """Shipped models (simulated inputs) and seed architectures (N(0, 1) inputs)."""
    from lensfind.export.precision import simulated_set
    from lensfind.export.torch_weights import load_torch_model
    from lensfind.runtime.shipped import resolve_model, shipped_models

    bases = []
    for name in shipped_models() if models is None else models:
        card = resolve_model(name, survey="")
        module = None
        if "torch-cpu" in runtimes or "torch-cuda" in runtimes:
            try:
                module = load_torch_model(card)
            except Exception as exc:
                skipped.append({"model": card.name, "runtime": "torch", "reason": str(exc)})
        images, _ = simulated_set(card, n, seed=12)
        bases.append(_Base("shipped", card, module, card.normalisation(np.array(images))))
    for arch in archs:
        card, module = arch_card(arch, workdir)
        x = np.random.default_rng(0).normal(0, 1, (n, *card.input_shape)).astype(np.float32)
        bases.append(_Base("seed architecture, random weights", card, module, x))
    return bases


def _prepare(
    variants: list[Variant],
    runtimes: list[str],
    batch_sizes: tuple[int, ...],
    inputs: dict[str, np.ndarray],
    threads: int,
    min_cutouts: int,
    stack: ExitStack,
    skipped: list[dict[str, Any]],
) -> list[_Cell]:
    """Every cell's runner, warmed up; a runner that cannot start is skipped with why."""
    cells = []
    for v in variants:
        for runtime in runtimes:
            for b in batch_sizes:
                x = np.ascontiguousarray(inputs[v.name][:b])
                where = {"model": v.name, "runtime": runtime, "precision": v.precision}
                try:
                    runs = make_runs(v, runtime, x, threads, stack)
                    for run in runs.values():
                        run()
                        run()  # warm-up: arenas, autotuning, lazy initialisation
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    skipped.append({**where, "batch_size": b, "reason": reason})
                    continue
                iters = max(1, math.ceil(min_cutouts / b))
                for mode, run in runs.items():
                    cells.append(_Cell({**where, "mode": mode, "batch_size": b}, run, iters))
    return cells


def _time(run: Run, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        run()
    return time.perf_counter() - t0


def bench_models(
    models: list[str] | None = None,
    archs: tuple[str, ...] = (),
    provider: str = "all",
    precisions: tuple[str, ...] = PRECISIONS,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    repeats: int = 5,
    min_cutouts: int = 256,
    threads: int | None = None,
    quiet: bool = False,
    command: str | None = None,
    settle_s: float = 0.05,
) -> dict[str, Any]:
    """Measure throughput and latency of every (model, runtime, precision, batch, mode).

    Parameters
    ----------
    models : list of str, optional
        Shipped model names or model directories (default: every shipped model).
    archs : tuple of str
        Seed architectures to add, with random weights (needs torch).
    provider : str
        ``all`` (every runtime available here), ``cpu``, ``cuda`` or ``tensorrt``.
    precisions : tuple of str
        Any of ``fp32``, ``fp16``, ``int8``.
    batch_sizes : tuple of int
        Cutouts per call.
    repeats : int
        Timed repeats (medians, with min and max).
    min_cutouts : int
        Cutouts scored per repeat (calls of one batch are repeated up to this).
    threads : int, optional
        CPU threads of ONNX Runtime and torch (default: all cores).
    quiet : bool
        No progress bar.
    command : str, optional
        The command line, for the record.
    settle_s : float
        Pause before each timed cell, seconds.
    """
    if repeats < 1 or min(batch_sizes) < 1 or not set(precisions) <= set(PRECISIONS):
        raise ConfigError("repeats and batch sizes must be >= 1; precisions fp32, fp16, int8")
    threads = threads or os.cpu_count() or 1
    runtimes, left_out = available_runtimes(provider)
    skipped: list[dict[str, Any]] = [{"runtime": r, "reason": w} for r, w in left_out.items()]
    with tempfile.TemporaryDirectory(prefix="lensfind-bench-models-") as tmp, ExitStack() as stack:
        bases = _bases(models, archs, runtimes, max(batch_sizes), Path(tmp), skipped)
        variants = []
        for base in bases:
            for p in precisions:
                try:
                    card = precision_card(base.card, p, Path(tmp), base.inputs[:128])
                except Exception as exc:
                    skipped.append({"model": base.card.name, "precision": p, "reason": str(exc)})
                    continue
                variants.append(Variant(base.card.name, base.kind, p, card, base.module))
        inputs = {b.card.name: b.inputs for b in bases}
        cells = _prepare(variants, runtimes, batch_sizes, inputs, threads, min_cutouts, stack,
                         skipped)  # fmt: skip
        with ExitStack() as threads_ctx:
            if any(r.startswith("torch") for r in runtimes):
                threads_ctx.enter_context(torch_threads(threads))
            for _ in tqdm(range(repeats), desc="bench models (repeats)", disable=quiet):
                for cell in cells:
                    time.sleep(settle_s)  # let thread pools still spinning from the last cell stop
                    cell.times.append(_time(cell.run, cell.iters) / cell.iters)
        results = [cell.record() for cell in cells]
    model_info = [b.record() for b in bases]
    return {
        **envelope("models", command or "lensfind.bench.models.bench_models()"),
        "settings": {
            "provider": provider,
            "runtimes": runtimes,
            "precisions": list(precisions),
            "batch_sizes": list(batch_sizes),
            "repeats": repeats,
            "min_cutouts": min_cutouts,
            "threads": threads,
            "settle_s": settle_s,
            "inputs": "normalised cutouts (simulated for shipped models, N(0,1) for seed "
            "architectures); normalisation timed apart",
            "modes": "host: numpy in, probabilities out; device: data resident on the GPU",
        },
        "models": model_info,
        "results": results,
        "skipped": skipped,
        "goal": goal_check(results, [m["name"] for m in model_info if m["kind"] == "shipped"]),
    }


def goal_check(results: list[dict[str, Any]], shipped: list[str]) -> dict[str, Any]:
    """On CPU, ONNX Runtime fp32 >= torch eager fp32 for every shipped model and batch."""

    median = {
        (r["model"], r["runtime"], r["batch_size"]): float(r["cutouts_per_s"]["median"])
        for r in results
        if r["precision"] == "fp32" and r["mode"] == "host"
    }
    ratios: dict[str, dict[str, float]] = {}
    for model in shipped:
        for b in sorted({r["batch_size"] for r in results if r["model"] == model}):
            ort, torch = median.get((model, "ort-cpu", b)), median.get((model, "torch-cpu", b))
            if ort and torch:
                ratios.setdefault(model, {})[str(b)] = round(ort / torch, 3)
    met = bool(ratios) and all(v >= 1.0 for m in ratios.values() for v in m.values())
    return {
        "criterion": "ONNX Runtime CPU fp32 >= torch eager CPU fp32, every shipped model and "
        "batch size, medians of the same run",
        "ort_over_torch": ratios,
        "met": met if ratios else None,
    }
