"""Throughput of the perturbation kernels against the model's scoring throughput.

The sensitivity probe applies every perturbation at every strength to a test
set and scores the result; the kernels must not be the bottleneck, so each one
should run at least ten times faster than the model scores (in cutouts/s).
"""

import time
from collections.abc import Callable, Iterable
from functools import partial

import numba
import numpy as np

from lensfind.probes.perturbations import PERTURBATIONS, get_perturbation
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE, Scorer

SCORE_BATCH = DEFAULT_BATCH_SIZE  # cutouts per scorer call


def _score_all(scorer: Scorer, images: np.ndarray) -> None:
    for start in range(0, len(images), SCORE_BATCH):
        scorer(images[start : start + SCORE_BATCH])


def bench_kernels(
    images: np.ndarray,
    scorer: Scorer,
    repeats: int = 5,
    names: Iterable[str] | None = None,
    settle_s: float = 0.05,
) -> dict:
    """Measure cutouts/s of each registered kernel and of ``scorer`` in one run.

    Every callable is called once to warm up (JIT compilation, ONNX Runtime
    arenas), then ``repeats`` rounds time the scorer and each kernel in turn,
    so that all medians see the same machine load. Kernels run at the middle
    of their default strength grid with seed 0 and zero fill.

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts, N >= 1; scored in batches of ``DEFAULT_BATCH_SIZE``.
    scorer : Scorer
        The model, e.g. :class:`lensfind.runtime.scorer.OnnxScorer`.
    repeats : int
        Timed rounds (>= 1).
    names : iterable of str, optional
        Perturbations to time; default all of
        :data:`lensfind.probes.perturbations.PERTURBATIONS`.
    settle_s : float
        Pause before each timed call, seconds, so that thread pools still
        spinning after the previous call (ONNX Runtime's) do not slow it.

    Returns
    -------
    dict
        ``model_cutouts_per_s`` (median), ``model_min``, ``model_max``;
        ``kernels``: name -> ``{"strength", "cutouts_per_s"`` (median), ``"min"``,
        ``"max"``, ``"over_model"`` (median over the model median)``}``; ``n``;
        ``repeats``; ``threads`` (numba threads).
    """
    x = np.ascontiguousarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"images: expected (N >= 1, bands, H, W), got shape {x.shape}")
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    perturbations = [get_perturbation(n) for n in (PERTURBATIONS if names is None else names)]
    calls: dict[str, Callable[[], object]] = {"model": lambda: _score_all(scorer, x)}
    strengths = {p.name: p.strengths[len(p.strengths) // 2] for p in perturbations}
    for p in perturbations:
        calls[p.name] = partial(p.apply, x, strengths[p.name], 0, None)
    for call in calls.values():
        call()
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            time.sleep(settle_s)
            t0 = time.perf_counter()
            call()
            rates[name].append(len(x) / (time.perf_counter() - t0))
    model = float(np.median(rates["model"]))
    kernels = {
        name: {
            "strength": strengths[name],
            "cutouts_per_s": float(np.median(r)),
            "min": min(r),
            "max": max(r),
            "over_model": float(np.median(r)) / model,
        }
        for name, r in rates.items()
        if name != "model"
    }
    return {
        "model_cutouts_per_s": model,
        "model_min": min(rates["model"]),
        "model_max": max(rates["model"]),
        "kernels": kernels,
        "n": len(x),
        "repeats": repeats,
        "threads": numba.get_num_threads(),
    }
