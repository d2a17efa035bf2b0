"""``engine bench scan|score|models|datapath``: measured throughput, written as JSON + Markdown."""

import argparse
import shlex
from pathlib import Path
from typing import Any

from lensfind.cli.common import add_config_flags, config_values
from lensfind.cli.flags import add_command, count, survey_name
from lensfind.engine.config import ScanConfig

#: The :class:`ScanConfig` fields ``engine bench scan`` takes as flags.
BENCH_SCAN_FIELDS = ("survey", "data_dir", "model", "workers", "batch_size", "shard_size",
                     "inject_rate", "inject_min", "store_dtype", "store_compression")  # fmt: skip


def _cmd_bench_scan(args: argparse.Namespace) -> int:
    from lensfind.bench.scan import bench_scan, write_result
    from lensfind.engine.config import build_config

    flags = {**config_values(args, BENCH_SCAN_FIELDS), "quiet": args.quiet or None}
    config = build_config(ScanConfig, flags)
    result = bench_scan(config, repeats=args.repeats, command=_command(args))
    path = write_result(result, args.results)
    print(f"bare model      {result['model_cutouts_per_s']['median']:8.1f} cutouts/s")
    print(
        f"end to end      {result['end_to_end_cutouts_per_s']['median']:8.1f} cutouts/s "
        f"({result['end_to_end_with_startup_cutouts_per_s']['median']:.1f} with executor start-up)"
    )
    per = ", ".join(f"{r:.3f}" for r in result["end_to_end_over_model_per_repeat"])
    print(f"end_to_end_over_model {result['end_to_end_over_model']:.3f} (per repeat {per}); "
          f"{result['validity']}")  # fmt: skip
    print(f"seconds outside the shards (median) {result['fixed_seconds']['median']:.2f}")
    if "injection" in result:
        inj = result["injection"]
        print(
            f"with injections (rate {inj['inject_rate']:g}, {inj['n_injected']} injected, "
            f"{inj['cost_per_injection_over_object']:.2f} x an object each): "
            f"slowdown {inj['slowdown']:.3f} "
            f"(budget {inj['budget']:.3f}, {'within' if inj['within_budget'] else 'OVER'})"
        )
    print(f"-> {path}")
    return 0


def _cmd_bench_startup(args: argparse.Namespace) -> int:
    from lensfind.bench.startup import bench_startup, write_startup_result

    result = bench_startup(args.survey, args.model, args.repeats, args.quiet, _command(args),
                           args.data)  # fmt: skip
    path = write_startup_result(result, args.results)
    for label, key in (("engine scan", "scan_wall_s"), ("plain loop", "plain_loop_wall_s")):
        runs = ", ".join(f"{v:.2f}" for v in result[key]["runs"])
        print(f"{label:12s} {result[key]['median']:6.2f} s wall (runs {runs})")
    goal, per = result["goal"], result["scan_over_plain_loop_per_repeat"]
    print(
        f"scan_over_plain_loop {result['scan_over_plain_loop']:.3f} (per repeat "
        f"{', '.join(f'{r:.3f}' for r in per)}; goal <= {goal['ratio_at_most']}: "
        f"{'met' if goal['met'] else 'NOT met'})"
    )
    print(
        f"load average before {result['load_average']['before'][0]:.2f}, "
        f"after {result['load_average']['after'][0]:.2f}"
    )
    print(f"-> {path}")
    return 0


def _cmd_bench_score(args: argparse.Namespace) -> int:
    from lensfind.bench.score import bench_score, gpu_rates, write_score_result
    from lensfind.errors import ConfigError
    from lensfind.runtime.shipped import resolve_model

    sizes = [int(float(v)) for v in args.sizes.split(",")]
    rates = None
    if args.gpu_rates is not None:
        rates = gpu_rates(args.gpu_rates, resolve_model(args.model, args.survey).name)
        if not rates:
            raise ConfigError(f"{args.gpu_rates}: no GPU rows for model {args.model}")
    result = bench_score(sizes, args.model, args.survey, rates, command=_command(args))
    path = write_score_result(result, args.results)
    for r in result["runs"]:
        print(f"{r['n_cutouts']:>9d} cutouts: {r['cutouts_per_s']:8.1f} cutouts/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")  # fmt: skip
    proj = result["projection_1e9"]
    print(f"peak RSS growth {result['peak_rss_growth']:+.1%} from {min(sizes)} to {max(sizes)}")
    print(f"10^9 cutouts: {proj['cpu_core_hours']:.0f} CPU core-hours "
          f"({proj['wall_hours_this_machine']:.0f} h on this machine); assumptions:")  # fmt: skip
    for label, hours in (proj["gpu_hours"] or {}).items():
        print(f"10^9 cutouts on one GPU ({label}): {hours:.1f} GPU-hours, "
              f"{proj['cpu_cores_per_gpu'][label]:.1f} CPU cores to feed it")  # fmt: skip
    for a in proj["assumptions"]:
        print(f"  - {a}")
    print(f"-> {path}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """An ``engine bench`` command line equivalent to ``args``, for the records."""
    words = ["engine", "bench", args.bench_command]
    for key, value in sorted(vars(args).items()):
        if key in ("func", "command", "bench_command", "debug") or value in (None, False, []):
            continue
        flag = "--" + key.replace("_", "-")
        for v in value if isinstance(value, list) else [value]:
            words += [flag] if v is True else [flag, str(v)]
    return shlex.join(words)


def _cmd_bench_models(args: argparse.Namespace) -> int:
    from lensfind.bench.models import QUICK_BATCH_SIZES, bench_models
    from lensfind.bench.report import write_models_result

    quick = args.quick
    batches = tuple(int(b) for b in args.batch_sizes.split(","))
    result = bench_models(
        models=args.model, archs=tuple(args.arch), provider=args.provider,
        precisions=tuple(p.strip() for p in args.precisions.split(",")),
        batch_sizes=QUICK_BATCH_SIZES if quick else batches,
        repeats=2 if quick else args.repeats, min_cutouts=8 if quick else 256,
        threads=args.threads, quiet=args.quiet, command=_command(args),
    )  # fmt: skip
    for r in result["results"]:
        print(f"{r['model']:24s} {r['runtime']:12s} {r['precision']:4s} {r['mode']:6s} "
              f"batch {r['batch_size']:>4d}: {r['cutouts_per_s']['median']:9.1f} cutouts/s, "
              f"{r['latency_ms']['median']:8.2f} ms/batch")  # fmt: skip
    for s in result["skipped"]:
        print(f"not measured: {', '.join(f'{k} {v}' for k, v in s.items() if k != 'reason')}: "
              f"{s['reason']}")  # fmt: skip
    goal = result["goal"]
    print(f"goal (ONNX Runtime >= torch eager on CPU): {goal['met']} {goal['ort_over_torch']}")
    for path in write_models_result(result, args.results).values():
        print(f"-> {path}")
    return 0


def _cmd_bench_datapath(args: argparse.Namespace) -> int:
    from lensfind.bench.datapath import bench_datapath
    from lensfind.bench.report import write_datapath_result

    quick = args.quick
    result = bench_datapath(
        survey=args.survey, model=args.model, tile_px=400 if quick else args.tile_px,
        n_cutouts=32 if quick else args.n, n_kernel=8 if quick else 256,
        repeats=2 if quick else args.repeats,
        kernels=("blur", "disk") if quick else None,
        quiet=args.quiet, command=_command(args),
    )  # fmt: skip
    for name, r in result["stages"].items():
        print(f"{name:28s} {r['median']:12,.0f} cutouts/s  [{r['min']:,.0f}-{r['max']:,.0f}]")
    for path in write_datapath_result(result, args.results).values():
        print(f"-> {path}")
    return 0


def add_bench_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the bench command(s) to the ``engine`` subparsers."""
    s = add_command(sub, "bench", common, "benchmarks",
                    examples=["engine bench scan", "engine bench models --quick"])  # fmt: skip
    bsub = s.add_subparsers(
        dest="bench_command", required=True, metavar="COMMAND", help="the command to run:"
    )
    b = add_command(
        bsub, "scan", common, "end-to-end scan throughput over bare model throughput",
        examples=["engine bench scan --survey des_y3 --repeats 3",
                  "engine bench scan --workers 4 --inject-rate 0   # without injections"],
    )  # fmt: skip
    add_config_flags(
        b,
        ScanConfig,
        BENCH_SCAN_FIELDS,
        {"inject_rate": "the scan's; 0 skips the with-injection scans"},
    )
    b.add_argument("--repeats", type=count, default=3, help="timed repeats (medians)")
    b.add_argument(
        "--results", type=Path, default=Path("benchmarks/results"), help="where the JSON goes"
    )
    b.set_defaults(func=_cmd_bench_scan)
    b = add_command(
        bsub, "startup", common,
        "wall time of the default scan over a plain astropy + ONNX Runtime loop",
        examples=["engine bench startup  # the cached embedded des_y3 region, 3 timed pairs",
                  "engine bench startup --data big-region --repeats 5"],
        description="Alternates `engine scan --survey S` on the cached embedded region with a "
        "plain astropy Cutout2D + ONNX Runtime loop (fresh processes, after one untimed pair) "
        "and records every wall time, their ratios and the load average.",
    )  # fmt: skip
    b.add_argument("--survey", default="des_y3", type=survey_name,
                   help="survey of the embedded region (default: des_y3)")  # fmt: skip
    b.add_argument("--model", help="shipped model name or model directory (default: the survey's)")
    b.add_argument("--data", type=Path, help="another region's data directory "
                   "(default: the embedded region, generated first if needed)")  # fmt: skip
    b.add_argument("--repeats", type=count, default=3, help="timed pairs (default: 3)")
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the JSON goes (default: benchmarks/results)")  # fmt: skip
    b.set_defaults(func=_cmd_bench_startup)
    b = add_command(
        bsub, "score", common, "engine score memory vs store size; 10^9 projection",
        examples=["engine bench score --sizes 10000,100000",
                  "engine bench score --gpu-rates benchmarks/results/models-h100.json"],
    )  # fmt: skip
    b.add_argument("--sizes", default="10000,100000",
                   help="comma-separated store sizes, cutouts")  # fmt: skip
    b.add_argument("--model", default="des_y3", help="shipped model name or model directory")
    b.add_argument("--survey", default="des_y3", type=survey_name, help="survey of the cutouts")
    b.add_argument(
        "--gpu-rates",
        type=Path,
        help="an engine bench models result from a GPU machine: adds GPU-hours to the projection",
    )
    b.add_argument(
        "--results", type=Path, default=Path("benchmarks/results"), help="where the JSON goes"
    )
    b.set_defaults(func=_cmd_bench_score)
    b = add_command(
        bsub, "models", common,
        "model throughput and latency per runtime, precision and batch size",
        examples=["engine bench models --quick", "engine bench models --provider cuda,tensorrt"],
    )  # fmt: skip
    b.add_argument(
        "--model",
        action="append",
        help="shipped model name or model directory (repeat; default: every shipped)",
    )
    b.add_argument(
        "--arch",
        action="append",
        default=[],
        help="also a seed architecture with random weights (repeat; needs torch)",
    )
    b.add_argument(
        "--provider",
        default="all",
        help="runtimes: all available here (default), or groups cpu, cuda, tensorrt "
        "(comma-separated; a group missing here is an error)",
    )
    b.add_argument("--precisions", default="fp32,fp16,int8",
                   help="comma-separated precisions to measure")  # fmt: skip
    b.add_argument("--batch-sizes", default="1,16,64,256",
                   help="comma-separated batch sizes, cutouts")  # fmt: skip
    b.add_argument("--repeats", type=count, default=5, help="timed repeats (medians, min, max)")
    b.add_argument("--threads", type=count, help="CPU threads (default: all cores)")
    b.add_argument(
        "--quick",
        action="store_true",
        help="batches 1,8 and 2 repeats of >= 8 cutouts (tests, smoke checks)",
    )
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the JSON, Markdown and PNG go")  # fmt: skip
    b.set_defaults(func=_cmd_bench_models)
    b = add_command(
        bsub, "datapath", common,
        "FITS read, cutouts, zarr write/read, perturbation kernels in cutouts/s",
        examples=["engine bench datapath --quick", "engine bench datapath --n 4096"],
    )  # fmt: skip
    b.add_argument("--survey", default="des_y3", type=survey_name, help="survey of the tile")
    b.add_argument("--model", help="model scored beside the kernels (default: the survey's)")
    b.add_argument("--tile-px", type=count, default=2000, help="side of the test tile, px")
    b.add_argument("--n", type=count, default=2048, help="cutouts per repeat")
    b.add_argument("--repeats", type=count, default=5, help="timed repeats (medians)")
    b.add_argument("--quick", action="store_true", help="a small tile, few cutouts, 2 repeats")
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the JSON, Markdown and PNG go")  # fmt: skip
    b.set_defaults(func=_cmd_bench_datapath)
