"""``engine bench scan``: end-to-end scan throughput against the bare model, in one run.

Both numbers come from the same machine, model, cutouts, batch size and number
of cores: the bare model is ONNX Runtime on the scan's own stored cutouts
(one session with ``workers`` threads), the end-to-end figure is the scan's
scored cutouts per second from the first shard submitted to the last commit
(Dask start-up excluded, reported apart). The ratio is what the engine costs.
Each repeat runs the scan, then the bare model, so that a shared machine's
drift hits both alike; the ratio of each repeat is reported too.
"""

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind.bench.report import envelope, write_json
from lensfind.engine.cluster import DEFAULT_WORKERS
from lensfind.engine.config import ScanConfig
from lensfind.engine.metrics import STAGES
from lensfind.engine.scan import run_scan
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.runtime.scorer import OnnxScorer


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
    with tempfile.TemporaryDirectory(prefix="lensfind-bench-") as tmp:
        for k in tqdm(range(repeats), desc="scans and bare model", disable=config.quiet):
            # interleaved: a scan without and one with injections, then the bare model on
            # the first scan's cutouts (the machine's drift hits all three alike)
            for runs, r, label in ((scans, 0.0, "run"), (injected, rate, "inj")):
                if r == 0.0 and runs is injected:
                    continue
                cfg = ScanConfig(**{**config.__dict__, "out": Path(tmp) / f"{label}{k}",
                                    "resume": False, "quiet": True, "inject_rate": r})  # fmt: skip
                runs.append(run_scan(cfg).summary)
            if k == 0:
                store = Path(tmp) / "run0" / STORE_NAME
                cutouts = np.concatenate(
                    [read_shard_cutouts(store, s)[1] for s in list_shards(store)]
                )
                scorer = OnnxScorer(
                    _card_dir(config), threads=max(config.workers or DEFAULT_WORKERS, 1)
                )
                scorer(cutouts[: config.batch_size])  # warm-up
            t0 = time.perf_counter()
            for i in range(0, len(cutouts), config.batch_size):
                scorer(cutouts[i : i + config.batch_size])
            bare.append(len(cutouts) / (time.perf_counter() - t0))
    e2e = [s["n_scored"] / s["dispatch_s"] for s in scans]
    e2e_inj = [s["n_scored"] / s["dispatch_s"] for s in injected]
    with_startup = [s["n_scored"] / s["scan_s"] for s in scans]
    n = scans[0]["n_scored"]
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
            "how": f"ONNX Runtime CPU, {max(config.workers or DEFAULT_WORKERS, 1)} threads, "
            f"batch {config.batch_size}, on the scan's cutouts",
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
        "end_to_end_over_model": statistics.median(e2e) / statistics.median(bare),
        "end_to_end_over_model_per_repeat": [e / b for e, b in zip(e2e, bare, strict=True)],
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


def _card_dir(config: ScanConfig) -> Path:
    from lensfind.runtime.shipped import resolve_model

    return resolve_model(config.model, config.survey).directory


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Write ``result`` as ``<out_dir>/<benchmark>-<survey>-<n>cutouts[-store]-<date>[-k].json``."""
    name = f"{result['benchmark']}-{result['config']['survey']}-{result['n_cutouts']}cutouts"
    if "store_compression" in result["config"]:
        name += f"-{result['config']['store_dtype']}-{result['config']['store_compression']}"
    return write_json(result, out_dir / f"{name}-{result['date_utc'][:10]}")
