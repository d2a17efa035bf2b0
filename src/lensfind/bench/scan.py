"""``engine bench scan``: end-to-end scan throughput against the bare model, in one run.

Both numbers come from the same machine, model, cutouts, batch size and process
layout: the bare model scores the scan's own stored cutouts, one shard per task,
on the executor the scan itself uses (threads here, or Dask worker processes,
each with the scan's one-thread session), from the first task submitted to the
last result; the end-to-end figure is the scan's scored cutouts per second from
the first shard submitted to the last commit. Each repeat runs the scan, the
scan with injections, then the bare model, so that a shared machine's drift hits
all alike; every repeat's ratio is reported, and a ratio above
:data:`VALID_RATIO_MAX` marks the measurement invalid (the scan cannot beat the
model it runs; the baseline was then not measured under the scan's conditions).
The seconds a scan spends outside its shards (configuration, planning, cluster
start and warm-up, finalising) are reported beside, so the ratio cannot hide them.
"""

import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lensfind.bench.report import envelope, write_json
from lensfind.engine.cluster import DEFAULT_WORKERS, executor
from lensfind.engine.config import ScanConfig
from lensfind.engine.metrics import STAGES
from lensfind.engine.scan import run_scan
from lensfind.engine.scoring import scorer_for, warm_up
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.runtime.shipped import resolve_model

#: An end-to-end/bare ratio above this is not a measurement (see the module docstring).
VALID_RATIO_MAX = 1.05


def bench_scan(config: ScanConfig, repeats: int = 3, command: str | None = None) -> dict[str, Any]:
    """Measure end-to-end scan and bare-model throughput; return the result record.

    Parameters
    ----------
    config : ScanConfig
        What to scan (``out`` and ``resume`` are ignored: each repeat scans into a
        fresh temporary run directory).
    repeats : int
        Repeats of each measurement; medians are reported with every run's value.
    """
    scans: list[dict[str, Any]] = []
    injected: list[dict[str, Any]] = []
    bare: list[float] = []
    rate = config.inject_rate
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lensfind-bench-") as tmp:
        for k in tqdm(range(repeats), desc="scans and bare model", disable=config.quiet):
            for runs, r, label in ((scans, 0.0, "run"), (injected, rate, "inj")):
                if r == 0.0 and runs is injected:
                    continue
                cfg = ScanConfig(**{**config.__dict__, "out": Path(tmp) / f"{label}{k}",
                                    "resume": False, "quiet": True, "inject_rate": r})  # fmt: skip
                runs.append(run_scan(cfg).summary)
            bare.append(bare_model_rate(Path(tmp) / "run0" / STORE_NAME, config,
                                        scans[0]["n_objects"]))  # fmt: skip
    load_after = os.getloadavg()
    e2e = [s["n_scored"] / s["dispatch_s"] for s in scans]
    e2e_inj = [s["n_scored"] / s["dispatch_s"] for s in injected]
    with_startup = [s["n_scored"] / s["scan_s"] for s in scans]
    n = scans[0]["n_scored"]
    per_repeat = [e / b for e, b in zip(e2e, bare, strict=True)]
    ratio = statistics.median(e2e) / statistics.median(bare)
    valid = max(per_repeat) <= VALID_RATIO_MAX
    fixed = [s["elapsed_s"] - s["dispatch_s"] for s in scans]
    stages = {
        k: statistics.median(s["stage_seconds"].get(k, 0.0) for s in scans) / n for k in STAGES
    }
    result = {
        **envelope("scan", command or "lensfind.bench.scan.bench_scan()"),
        "config": {
            "survey": config.survey,
            "data_dir": "embedded default" if config.data_dir is None else str(config.data_dir),
            "model": scans[0]["model"],
            "model_sha256": scans[0]["model_sha256"],
            "workers": config.workers or DEFAULT_WORKERS,
            "batch_size": config.batch_size,
            "shard_size": config.shard_size,
            "store_dtype": config.store_dtype,
            "store_compression": config.store_compression,
            "repeats": repeats,
        },
        "n_cutouts": n,
        "model_cutouts_per_s": {
            "median": statistics.median(bare),
            "runs": bare,
            "how": f"ONNX Runtime CPU on the scan's own executor ({scans[0]['executor']}, "
            f"{scans[0]['workers']} workers, a one-thread session each, batch "
            f"{config.batch_size}), one stored shard per task, first submit -> last result",
        },
        "end_to_end_cutouts_per_s": {
            "median": statistics.median(e2e),
            "runs": e2e,
            "how": "scored / (first submit -> last commit)",
        },
        "end_to_end_with_startup_cutouts_per_s": {
            "median": statistics.median(with_startup),
            "runs": with_startup,
        },
        "end_to_end_over_model": ratio,
        "end_to_end_over_model_per_repeat": per_repeat,
        "end_to_end_over_model_spread": [min(per_repeat), max(per_repeat)],
        "valid": valid,
        "validity": f"valid: every repeat's ratio <= {VALID_RATIO_MAX}"
        if valid
        else f"INVALID: a repeat's ratio exceeds {VALID_RATIO_MAX}"
        ": the scan cannot score faster than the model alone, so the bare model was not "
        "measured under the scan's conditions (another load, a cold cache?)",
        "fixed_seconds": {
            "median": statistics.median(fixed),
            "runs": fixed,
            "how": "elapsed_s - dispatch_s of the scans without injections: configuration, "
            "planning, cluster start and warm-up, candidates, selection function, plots "
            "(imports and interpreter start-up are not in it: engine bench startup has them)",
        },
        "load_average": {
            "before": load_before,
            "after": load_after,
            "how": "1, 5 and 15 min; above the core count, something else ran",
        },
        "stage_cpu_seconds_per_cutout": stages,
        "driver_cpu_fraction": {
            "median": statistics.median(s["driver_cpu_s"] / s["dispatch_s"] for s in scans),
            "how": "CPU seconds of the scan's own process (commits, local scheduler) "
            "per wall second of dispatch",
        },
    }
    if injected:
        slowdown = statistics.median(e2e) / statistics.median(e2e_inj)
        n_inj = injected[0]["selection_function"]["n_injected"]
        # the injected fraction: --inject-min and the host cuts make it differ from the rate
        fraction = n_inj / max(injected[0]["n_scored"], 1)
        result["injection"] = {
            "inject_rate": rate,
            "n_injected": n_inj,
            "injected_fraction": fraction,
            "end_to_end_cutouts_per_s": {"median": statistics.median(e2e_inj), "runs": e2e_inj},
            "slowdown": slowdown,
            # what one injection costs in units of one survey object's scan
            "cost_per_injection_over_object": (slowdown - 1) / fraction if fraction else None,
            "budget": (1 + fraction) * 1.1,
            "within_budget": slowdown <= (1 + fraction) * 1.1,
            "how": "survey objects scored per second without / with injections "
            "(injected copies not counted); budget (1 + injected / scored) x 1.1",
        }
    return result


def _score_shard(store: str, shard_id: str, model_dir: str, sha256: str, batch: int) -> tuple:
    """Score one stored shard with this worker's scan session: (cutouts, start, end) wall."""
    _, cutouts = read_shard_cutouts(Path(store), shard_id)
    scorer = scorer_for(model_dir, sha256, "cpu", batch)
    start = time.time()  # wall clock: comparable between the worker processes
    for i in range(0, len(cutouts), batch):
        scorer(cutouts[i : i + batch], overwrite=True)
    return len(cutouts), start, time.time()


def bare_model_rate(store: Path, config: ScanConfig, n_objects: int) -> float:
    """Cutouts per second of the model alone on ``store``, in the scan's process layout.

    The shards go to the executor a scan of ``n_objects`` objects with ``config``
    uses (:func:`~lensfind.engine.cluster.executor`), each worker warmed up first.
    """
    card = resolve_model(config.model, config.survey)
    args = (str(card.directory), card.sha256, config.batch_size)
    shards = list_shards(store)
    with executor(config.workers, config.scheduler, 0, n_objects) as ex:
        opts = ex.submit_options()
        ex.warm_up(partial(warm_up, args[0], args[1], "cpu", config.batch_size), opts)
        futures = [ex.submit(_score_shard, str(store), s, *args, **opts) for s in shards]
        done = [f.result() for f in futures]
    n = sum(d[0] for d in done)
    return n / (max(d[2] for d in done) - min(d[1] for d in done))


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Write ``result`` as ``<out_dir>/<benchmark>-<survey>-<n>cutouts[-store]-<date>[-k].json``."""
    name = f"{result['benchmark']}-{result['config']['survey']}-{result['n_cutouts']}cutouts"
    if "store_compression" in result["config"]:
        name += f"-{result['config']['store_dtype']}-{result['config']['store_compression']}"
    return write_json(result, out_dir / f"{name}-{result['date_utc'][:10]}")
