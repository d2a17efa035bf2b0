"""``engine bench score``: peak memory of ``engine score`` against store size, and the
projection of a 10^9-cutout run from measured rates.

The synthetic store holds one real block of cutouts (simulated, survey noise)
written once and hard-linked under every shard with distinct object ids, so a
10^6-cutout store costs one block of disk. Each size is scored in a fresh
process (``workers=0``), whose own peak RSS (``ru_maxrss``) is the figure: flat
memory means the same peak whatever the number of cutouts.
"""

import json
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from lensfind.bench.report import envelope, write_json
from lensfind.engine.store import STORE_NAME, write_shard_cutouts

#: Lens fraction of the synthetic block (a survey has ~1e-3 lenses among its galaxies).
SYNTHETIC_LENS_FRACTION = 0.001
#: Stated assumptions of the 10^9 projection.
PROJECTION_ASSUMPTIONS = (
    "throughput scales linearly with cores (one single-threaded worker per core)",
    "the store is read at least as fast as measured here (local disk, page cache warm)",
)
NO_GPU_RATE = "GPU-hours need a measured GPU rate (engine bench models on a GPU); none is assumed"
GPU_RATE = (
    "GPU-hours: one GPU scores at its bare-model rate of `engine bench models` (best batch size "
    "per runtime), fed by cpu_cores_per_gpu single-threaded readers at the rate measured here"
)
#: Runtimes of ``engine bench models`` that run on a GPU.
GPU_RUNTIMES = ("ort-cuda", "ort-tensorrt", "tensorrt", "torch-cuda")


def gpu_rates(models_json: Path, model: str) -> dict[str, float]:
    """Best measured cutouts/s of ``model`` per GPU runtime and precision.

    Parameters
    ----------
    models_json : Path
        A result of ``engine bench models`` (run on a GPU machine).
    model : str
        Model name as the result records it (e.g. ``des_y3``).

    Returns
    -------
    dict
        ``"<runtime>-<precision>" -> cutouts/s`` (the median of the best batch size);
        empty if the file has no GPU rows for the model.
    """
    from lensfind.errors import ConfigError

    try:
        rows = json.loads(Path(models_json).read_text())["results"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{models_json}: not an engine bench models result ({exc})") from None
    best: dict[str, float] = {}
    for r in rows:
        if r.get("model") != model or r.get("runtime") not in GPU_RUNTIMES:
            continue
        label = f"{r['runtime']}-{r.get('precision', 'fp32')}"
        best[label] = max(best.get(label, 0.0), float(r["cutouts_per_s"]["median"]))
    return best


def projection(cpu_rate: float, cores: int, rates_gpu: dict[str, float] | None) -> dict[str, Any]:
    """Wall time, CPU core-hours and (given GPU rates) GPU-hours for 10^9 cutouts."""
    out: dict[str, Any] = {
        "cutouts_per_s_one_process": cpu_rate,
        "cpu_core_hours": 1e9 / cpu_rate / 3600.0,
        "wall_hours_this_machine": 1e9 / (cpu_rate * cores) / 3600.0,
        "gpu_hours": None,
        "assumptions": [*PROJECTION_ASSUMPTIONS, GPU_RATE if rates_gpu else NO_GPU_RATE],
    }
    if rates_gpu:
        out["gpu_hours"] = {k: 1e9 / v / 3600.0 for k, v in sorted(rates_gpu.items())}
        out["gpu_cutouts_per_s"] = dict(sorted(rates_gpu.items()))
        out["cpu_cores_per_gpu"] = {k: v / cpu_rate for k, v in sorted(rates_gpu.items())}
    return out


def make_synthetic_store(
    path: Path, n_objects: int, survey: str = "des_y3", shard_size: int = 256, seed: int = 0
) -> Path:
    """A cutout store of ``n_objects`` made of one hard-linked block of simulated cutouts.

    The block is a survey-like population (lens fraction
    :data:`SYNTHETIC_LENS_FRACTION`), so the candidates a run keeps in memory are as
    rare as on the sky.
    """
    from lensfind.simulation.population import PopulationConfig
    from lensfind.simulation.simulate import simulate
    from lensfind.surveys import get_survey

    spec = get_survey(survey)
    # survey-like: galaxies that are almost all non-lenses (candidates are what memory keeps)
    population = PopulationConfig(lens_fraction=SYNTHETIC_LENS_FRACTION)
    block = simulate(spec, shard_size, seed, config=population).images
    store = path / STORE_NAME
    template = "block-0000"
    ids = np.arange(shard_size, dtype=np.int64)
    write_shard_cutouts(store, template, ids, block, ra=np.zeros(shard_size),
                        dec=np.zeros(shard_size), tile="SYNTH", bands=spec.band_names)  # fmt: skip
    src = store / template
    for k in range(1, -(-n_objects // shard_size)):
        n = min(shard_size, n_objects - k * shard_size)
        name, new_ids = f"block-{k:07d}", ids[:n] + k * shard_size
        if n < shard_size:  # a short last block: a real (not linked) group
            write_shard_cutouts(store, name, new_ids, block[:n], ra=np.zeros(n),
                                dec=np.zeros(n), tile="SYNTH", bands=spec.band_names)  # fmt: skip
            continue
        dest = store / name
        shutil.copytree(src, dest, copy_function=os.link)  # every file a hard link ...
        shutil.rmtree(dest / "object_id")  # ... but the ids, which are rewritten
        arr = zarr.open_group(str(dest), mode="a").create_array(
            "object_id", shape=(n,), dtype="int64", chunks=(n,)
        )
        arr[:] = new_ids
    return store


def _score_child(store: str, model: str, out: str, queue: Any) -> None:
    from lensfind.engine.config import ScoreConfig
    from lensfind.engine.rescore import run_score

    t0 = time.perf_counter()
    result = run_score(ScoreConfig(cutouts=Path(store), model=model, out=Path(out), workers=0,
                                   quiet=True))  # fmt: skip
    queue.put({
        "n_scored": result.summary["n_scored"], "wall_s": time.perf_counter() - t0,
        "dispatch_s": result.summary["dispatch_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    })  # fmt: skip


def score_in_fresh_process(store: Path, model: str, out: Path) -> dict[str, Any]:
    """Run ``engine score`` on ``store`` in a new process; its counts, time and peak RSS."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_score_child, args=(str(store), model, str(out), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return dict(result)


def bench_score(
    sizes: list[int],
    model: str,
    survey: str = "des_y3",
    rates_gpu: dict[str, float] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Peak RSS and rate of ``engine score`` at each store size, plus the 10^9 projection.

    ``rates_gpu`` (from :func:`gpu_rates`) adds GPU-hours to the projection.
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="lensfind-bench-score-") as tmp:
        for n in sizes:
            store = make_synthetic_store(Path(tmp) / f"s{n}", n, survey)
            r = score_in_fresh_process(store, model, Path(tmp) / f"run{n}")
            runs.append({"n_cutouts": n, **r, "cutouts_per_s": r["n_scored"] / r["dispatch_s"]})
            shutil.rmtree(Path(tmp) / f"s{n}")
            shutil.rmtree(Path(tmp) / f"run{n}")
    peaks = [r["peak_rss_mb"] for r in runs]
    rate = runs[-1]["cutouts_per_s"]
    cores = os.cpu_count() or 1
    return {
        **envelope("score", command or "lensfind.bench.score.bench_score()"),
        "config": {"survey": survey, "model": model, "workers": 0},
        "n_cutouts": max(sizes),
        "runs": runs,
        "peak_rss_growth": max(peaks) / min(peaks) - 1.0,
        "projection_1e9": projection(rate, cores, rates_gpu),
    }


def write_score_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Write ``score-<survey>-<n>cutouts-<date>[-k].json`` into ``out_dir``."""
    name = f"score-{result['config']['survey']}-{result['n_cutouts']}cutouts"
    return write_json(result, out_dir / f"{name}-{result['date_utc'][:10]}")
