"""``engine bench startup``: the default job's wall time against the plain loop, in one run.

The default job is ``engine scan --survey S`` on the embedded region, already
generated (with injections at the default rate, writing every output); the
plain loop is :mod:`lensfind.bench.plain_loop` (astropy ``Cutout2D`` + ONNX
Runtime, no lensfind). Both run as fresh processes, so their wall times hold
everything a user waits for: interpreter start, imports, start-up, the work
and exit. They alternate (scan, loop, scan, loop, ...) after one untimed pair
that warms the file cache, so a shared machine's drift hits both alike; the
load average before and after says what else was running.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lensfind.bench import plain_loop
from lensfind.bench.report import envelope, write_json
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.datadir import default_region
from lensfind.surveys.registry import get_survey

#: The issue's bar: the default job in at most half the plain loop's wall time.
GOAL_RATIO = 0.5


def _timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of ``cmd`` run to completion, and its stdout (a failure raises)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{cmd[2] if len(cmd) > 2 else cmd[0]} exited {out.returncode}: "
                           f"{tail[0]}")  # fmt: skip
    return seconds, out.stdout


def bench_startup(
    survey: str = "des_y3",
    model: str | None = None,
    repeats: int = 3,
    quiet: bool = False,
    command: str | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Alternate the default scan and the plain loop ``repeats`` times; the result record.

    ``data_dir`` scans another region (``--data``) than the embedded default.
    """
    spec = get_survey(survey)
    region = data_dir or default_region(spec, quiet=quiet)
    card = resolve_model(model, spec.name)
    load_before = os.getloadavg()
    scans: list[float] = []
    loops: list[float] = []
    inference: list[float] = []
    n_scan = n_loop = n_injected = 0
    with tempfile.TemporaryDirectory(prefix="lensfind-startup-") as tmp:
        scan = [sys.executable, "-m", "lensfind", "scan", "--survey", spec.name, "--quiet"]
        if model is not None:
            scan += ["--model", model]
        if data_dir is not None:
            scan += ["--data", str(data_dir)]
        loop = [sys.executable, plain_loop.__file__, str(region), str(card.directory)]
        for k in tqdm(range(repeats + 1), desc="scan / plain loop pairs", disable=quiet):
            out_dir = Path(tmp) / f"scan{k}"
            s, _ = _timed([*scan, "--out", str(out_dir)])
            p, stdout = _timed([*loop, str(Path(tmp) / f"loop{k}.parquet")])
            loop_record = json.loads(stdout.strip().splitlines()[-1])
            if k == 0:  # the untimed pair: file cache, kernel caches
                summary = json.loads((out_dir / "summary.json").read_text())
                n_scan, n_loop = summary["n_scored"], loop_record["n_scored"]
                n_injected = (summary.get("selection_function") or {}).get("n_injected", 0)
                continue
            scans.append(s)
            loops.append(p)
            inference.append(loop_record["inference_seconds"])
    ratios = [s / p for s, p in zip(scans, loops, strict=True)]
    median = statistics.median(ratios)
    return {
        **envelope("startup", command or "lensfind.bench.startup.bench_startup()"),
        "config": {
            "survey": spec.name,
            "model": card.name,
            "model_sha256": card.sha256,
            "region": str(data_dir) if data_dir else "embedded default (cached)",
            "repeats": repeats,
        },
        "scan_wall_s": {
            "median": statistics.median(scans),
            "runs": scans,
            "how": f"engine scan --survey {spec.name} (default injections, "
            "every output), a fresh process",
        },
        "plain_loop_wall_s": {
            "median": statistics.median(loops),
            "runs": loops,
            "how": "astropy Cutout2D + ONNX Runtime, batches of 256, one "
            "Parquet file (lensfind.bench.plain_loop), a fresh process",
        },
        "n_scored": {"scan": n_scan, "plain_loop": n_loop},
        "model_floor": _model_floor(inference, loops, n_loop, n_scan + n_injected),
        "scan_over_plain_loop": median,
        "scan_over_plain_loop_per_repeat": ratios,
        "spread": [min(ratios), max(ratios)],
        "goal": {"ratio_at_most": GOAL_RATIO, "met": median <= GOAL_RATIO},
        "load_average": {
            "before": load_before,
            "after": os.getloadavg(),
            "how": "1, 5 and 15 min load averages; above the core count, "
            "something else was running",
        },
    }


def _model_floor(
    inference: list[float], loops: list[float], n_loop: int, n_scan_inputs: int
) -> dict[str, Any]:
    """The least the scan's own model work can take, as a ratio to the plain loop's wall
    time: the loop's seconds in ONNX Runtime per cutout times the cutouts the scan scores
    (its objects and its injected copies), with the same model, batch and threads."""
    per_cutout = statistics.median(inference) / max(n_loop, 1)
    floor = per_cutout * n_scan_inputs
    return {
        "plain_loop_inference_s": statistics.median(inference),
        "scan_cutouts_scored": n_scan_inputs,
        "scan_inference_floor_s": floor,
        "ratio_floor": floor / statistics.median(loops),
        "how": "plain loop's median seconds in ONNX Runtime per cutout x the scan's "
        "scored objects plus injected copies, over the plain loop's median wall time: "
        "a scan ratio below this needs a faster model, not a faster engine",
    }


def write_startup_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Write ``result`` as ``<out_dir>/startup-<survey>-<date>[-k].json``."""
    return write_json(result, out_dir / f"startup-{result['config']['survey']}-"
                                        f"{result['date_utc'][:10]}")  # fmt: skip
