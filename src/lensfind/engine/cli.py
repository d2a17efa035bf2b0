"""The ``engine`` (alias ``lensfind``) command line: parse, build a config, call one function."""

import argparse
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from lensfind import __version__
from lensfind.engine.cli_common import add_inject_arguments, add_run_arguments, report, run_flags
from lensfind.engine.cli_probes import add_probe_parsers
from lensfind.engine.cli_train import add_train_parsers
from lensfind.errors import LensfindError

EXIT_ERROR = 2


def _cmd_surveys(args: argparse.Namespace) -> int:
    from lensfind.surveys import list_surveys

    for spec in list_surveys():
        bands = ", ".join(
            f'{b.name} ({b.pixel_scale_arcsec}"/px, PSF {b.psf_fwhm_arcsec}", '
            f"10σ {b.depth_10sigma_mag})"
            for b in spec.bands
        )
        print(f"{spec.name:12s} {spec.title}; cutout {spec.cutout_px} px; bands: {bands}")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScanConfig, build_config
    from lensfind.engine.scan import run_scan

    flags = {"survey": args.survey, "data_dir": args.data, "shard_size": args.shard_size,
             "inject_rate": args.inject_rate, "inject_seed": args.inject_seed,
             "store_dtype": args.store_dtype,
             "store_compression": args.store_compression}  # fmt: skip
    return report(run_scan(build_config(ScanConfig, {**run_flags(args), **flags})))


def _cmd_score(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScoreConfig, build_config
    from lensfind.engine.rescore import run_score

    flags = {"cutouts": args.cutouts}
    return report(run_score(build_config(ScoreConfig, {**run_flags(args), **flags})))


def _cmd_bench_scan(args: argparse.Namespace) -> int:
    from lensfind.engine.bench import bench_scan, write_result
    from lensfind.engine.config import ScanConfig, build_config

    flags = {"survey": args.survey, "data_dir": args.data, "model": args.model,
             "workers": args.workers, "batch_size": args.batch_size,
             "shard_size": args.shard_size, "quiet": args.quiet or None,
             "inject_rate": args.inject_rate, "store_dtype": args.store_dtype,
             "store_compression": args.store_compression}  # fmt: skip
    result = bench_scan(build_config(ScanConfig, flags), repeats=args.repeats)
    path = write_result(result, args.results)
    print(f"bare model      {result['model_cutouts_per_s']['median']:8.1f} cutouts/s")
    print(
        f"end to end      {result['end_to_end_cutouts_per_s']['median']:8.1f} cutouts/s "
        f"({result['end_to_end_with_startup_cutouts_per_s']['median']:.1f} with Dask start-up)"
    )
    print(f"end_to_end_over_model {result['end_to_end_over_model']:.3f}")
    if "injection" in result:
        inj = result["injection"]
        print(
            f"with injections (rate {inj['inject_rate']:g}): slowdown {inj['slowdown']:.3f} "
            f"(budget {inj['budget']:.3f}, {'within' if inj['within_budget'] else 'OVER'})"
        )
    print(f"-> {path}")
    return 0


def _cmd_bench_score(args: argparse.Namespace) -> int:
    from lensfind.engine.bench_score import bench_score, gpu_rates, write_score_result
    from lensfind.errors import ConfigError
    from lensfind.models import resolve_model

    sizes = [int(float(v)) for v in args.sizes.split(",")]
    rates = None
    if args.gpu_rates is not None:
        rates = gpu_rates(args.gpu_rates, resolve_model(args.model, args.survey).name)
        if not rates:
            raise ConfigError(f"{args.gpu_rates}: no GPU rows for model {args.model}")
    result = bench_score(sizes, args.model, args.survey, rates)
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
    from lensfind.engine.bench_models import QUICK_BATCH_SIZES, bench_models
    from lensfind.engine.bench_report import write_models_result

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
    from lensfind.engine.bench_datapath import bench_datapath
    from lensfind.engine.bench_report import write_datapath_result

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


def _lens_mix(text: str | None) -> dict[str, float]:
    """``--lens-kinds lens=0.5,double_ring=0.5`` as a ``lens_mix`` (a bare name: weight 1)."""
    from lensfind.errors import ConfigError
    from lensfind.simulation.population import LENS_KINDS

    if not text:
        return {"lens": 1.0}
    mix: dict[str, float] = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition("=")
        if name not in LENS_KINDS:
            known = ", ".join(LENS_KINDS)
            raise ConfigError(f"--lens-kinds: unknown lens kind {name!r} (known: {known})")
        try:
            mix[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"--lens-kinds: bad weight in {item!r}") from None
    return mix


def _cmd_simulate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lensfind.simulation.dataset import write_dataset
    from lensfind.simulation.population import PopulationConfig
    from lensfind.surveys import get_survey

    spec = get_survey(args.survey)
    if args.bands:
        spec = spec.select(tuple(args.bands.split(",")))
    config = PopulationConfig(lens_fraction=args.lens_fraction, lens_mix=_lens_mix(args.lens_kinds))
    if (args.pixel_scale is None) != (args.cutout_px is None):
        from lensfind.errors import ConfigError

        raise ConfigError("--pixel-scale and --cutout-px go together")
    if args.pixel_scale is not None:
        from lensfind.simulation.dataset import on_common_grid

        spec, config = on_common_grid(spec, args.pixel_scale, args.cutout_px, config)
    with tqdm(total=args.n, desc=f"simulate {spec.name}", unit="obj", disable=args.quiet) as bar:
        write_dataset(args.out, spec, args.n, args.seed, config, progress=bar.update)
    print(f"wrote {args.n} objects to {args.out}")
    return 0


def _cmd_survey_make(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lensfind.simulation.region import RegionConfig, make_region
    from lensfind.surveys import get_survey

    spec = get_survey(args.survey)
    config = RegionConfig(
        tiles_ra=args.tiles_ra,
        tiles_dec=args.tiles_dec,
        tile_px=args.tile_px,
        spacing_px=args.spacing_px,
        lens_fraction=args.lens_fraction,
        seed=args.seed,
    )
    n = config.tiles_ra * config.tiles_dec * len(range(0, config.tile_px, config.spacing_px)) ** 2
    with tqdm(total=n, desc=f"region {spec.name}", unit="obj", disable=args.quiet) as bar:
        make_region(args.out, spec, config, progress=bar.update)
    print(f"wrote a synthetic {spec.name} region to {args.out}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from lensfind.export.calibrate_card import CALIBRATION_PNG, calibrate_model
    from lensfind.models import resolve_model

    model_dir = resolve_model(args.model, survey="").directory
    cal = calibrate_model(model_dir, args.set, args.eval_set, threads=args.threads)
    print(
        f"{model_dir / 'model_card.json'}: temperature {cal['temperature']:.4f} (fitted on "
        f"{cal['n']} objects of {cal['set']}); held-out {cal['eval_set']} ({cal['n_eval']}): "
        f"ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}, "
        f"NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}; plot {model_dir / CALIBRATION_PNG}"
    )
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    import onnxruntime

    from lensfind.export.cuda import CudaError, cudart, list_gpus
    from lensfind.export.scorer import EXECUTION_PROVIDERS, resolve_provider
    from lensfind.models import shipped_models
    from lensfind.versions import package_version, versions

    print(f"lensfind {__version__}, Python {platform.python_version()} on {platform.platform()}")
    for pkg, version in versions().items():
        if pkg not in ("lensfind", "python"):
            print(f"  {pkg:12s} {version}")
    gpu_wheel = package_version("onnxruntime-gpu")
    print(f"  {'':12s} onnxruntime build: {onnxruntime.get_device()}"
          f"{f' (onnxruntime-gpu {gpu_wheel})' if gpu_wheel else ''}")  # fmt: skip
    try:
        from lensfind.training._torch import torch

        print(f"  {'':12s} torch CUDA build: {torch.version.cuda or 'none'}, "
              f"devices visible to torch: {torch.cuda.device_count()}")  # fmt: skip
    except ImportError:
        pass
    try:
        rt = cudart()
        driver = rt.driver_version()
        print(f"CUDA: runtime {rt.runtime_version()} ({rt.path}), driver {driver or 'none'}")
    except CudaError:
        print("CUDA: no CUDA runtime library (libcudart) found")
    providers = onnxruntime.get_available_providers()
    print(f"ONNX Runtime providers: {', '.join(providers)}")
    gpus = list_gpus()
    print("GPUs: " + ("; ".join(f"{g.index}: {g.name} (compute capability "
                               f"{g.compute_capability}, {g.memory_mib} MiB)" for g in gpus)
                     or "none found"))  # fmt: skip
    auto = resolve_provider("auto", providers)
    if auto == "cpu":
        missing = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                   if p not in providers]  # fmt: skip
        print(f"GPU scoring path: not used; --provider auto -> cpu (onnxruntime lacks "
              f"{', '.join(missing)}; install lensfind[gpu])")  # fmt: skip
    else:
        note = "" if gpus else "; WARNING: no GPU found, sessions will fail to start on it"
        print(f"GPU scoring path: used; --provider auto -> {auto} "
              f"({EXECUTION_PROVIDERS[auto]}){note}")  # fmt: skip
    trt = package_version("tensorrt") or package_version("tensorrt-cu12")
    native = "available" if trt and gpus else "not available"
    why = "" if trt and gpus else (" (no GPU)" if trt else " (tensorrt not installed)")
    print(f"native TensorRT scorer: {native}{why}")
    print(f"shipped models: {', '.join(shipped_models()) or 'none'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    # --quiet/--debug work before or after the subcommand; SUPPRESS keeps a
    # subcommand's unset flag from overwriting the top-level one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    p = argparse.ArgumentParser(
        prog="engine", description="lensfind: survey-scale strong-lens finder"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"lensfind {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("surveys", parents=[common], help="list known surveys")
    s.set_defaults(func=_cmd_surveys)

    s = sub.add_parser("scan", parents=[common], help="scan a survey region for lenses")
    s.add_argument("--survey", default="des_y3")
    s.add_argument("--data", type=Path, help="data directory (default: the embedded region)")
    s.add_argument("--shard-size", type=int, help="objects per shard")
    s.add_argument("--store-dtype", choices=("float32", "float16"),
                   help="cutout store precision (default float16: half the bytes)")  # fmt: skip
    s.add_argument("--store-compression", choices=("zstd", "none"),
                   help="cutout store compression (default none: float32 survey noise "
                   "compresses ~7%%)")  # fmt: skip
    add_inject_arguments(s, "0.05")
    add_run_arguments(s)
    s.set_defaults(func=_cmd_scan)

    s = sub.add_parser(
        "score",
        parents=[common],
        help="re-score a cutout store (a scan's cutouts.zarr) with a model",
    )
    s.add_argument("--cutouts", type=Path, required=True, help="zarr cutout store")
    add_run_arguments(s)
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser(
        "calibrate",
        parents=[common],
        help="fit a model's score calibration (temperature scaling) on a held-out simulated "
        "set and store it in its model card",
    )
    s.add_argument("--model", required=True, help="model directory (or shipped name)")
    s.add_argument("--set", type=Path, required=True, help="held-out simulated set to fit on")
    s.add_argument(
        "--eval-set", type=Path, help="second held-out set to measure on (default: half of --set)"
    )
    s.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    s.set_defaults(func=_cmd_calibrate)

    s = sub.add_parser("simulate", parents=[common], help="write a simulated training/test set")
    s.add_argument("--survey", default="des_y3")
    s.add_argument("--bands", help="comma-separated subset of bands on one pixel grid")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--lens-fraction", type=float, default=0.5)
    s.add_argument("--lens-kinds", help="split the lenses: lens=0.5,compound_arc=0.2,"
                   "double_ring=0.2,red_source=0.1 (default: all 'lens')")  # fmt: skip
    s.add_argument(
        "--pixel-scale",
        type=float,
        help="put every band on this grid, arcsec/px (e.g. Euclid 0.3 for NISP, 0.1 for VIS); "
        "with --cutout-px; the same --seed gives the same objects on any grid",
    )
    s.add_argument("--cutout-px", type=int, help="stamp side on the --pixel-scale grid")
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("survey", parents=[common], help="synthetic survey regions")
    ssub = s.add_subparsers(dest="survey_command", required=True)
    m = ssub.add_parser("make", parents=[common], help="write a synthetic region")
    m.add_argument("--survey", default="des_y3")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--tiles-ra", type=int, default=2)
    m.add_argument("--tiles-dec", type=int, default=2)
    m.add_argument("--tile-px", type=int, default=2400)
    m.add_argument("--spacing-px", type=int, default=100)
    m.add_argument("--lens-fraction", type=float, default=0.05)
    m.add_argument("--seed", type=int, default=2026)
    m.set_defaults(func=_cmd_survey_make)

    add_train_parsers(sub, common)

    s = sub.add_parser("bench", parents=[common], help="benchmarks")
    bsub = s.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser(
        "scan", parents=[common], help="end-to-end scan throughput over bare model throughput"
    )
    b.add_argument("--survey", default="des_y3")
    b.add_argument("--data", type=Path, help="data directory (default: the embedded region)")
    b.add_argument("--model", help="shipped model name or model directory")
    b.add_argument("--workers", type=int, help="local Dask worker processes")
    b.add_argument("--batch-size", type=int)
    b.add_argument("--shard-size", type=int)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument(
        "--inject-rate", type=float, help="injection rate of the with-injection scans (0: skip)"
    )
    b.add_argument("--store-dtype", choices=("float32", "float16"))
    b.add_argument("--store-compression", choices=("zstd", "none"))
    b.add_argument(
        "--results", type=Path, default=Path("benchmarks/results"), help="where the JSON goes"
    )
    b.set_defaults(func=_cmd_bench_scan)
    b = bsub.add_parser(
        "score", parents=[common], help="engine score memory vs store size; 10^9 projection"
    )
    b.add_argument("--sizes", default="10000,100000", help="comma-separated store sizes")
    b.add_argument("--model", default="des_y3", help="shipped model name or model directory")
    b.add_argument("--survey", default="des_y3")
    b.add_argument(
        "--gpu-rates",
        type=Path,
        help="an engine bench models result from a GPU machine: adds GPU-hours to the projection",
    )
    b.add_argument(
        "--results", type=Path, default=Path("benchmarks/results"), help="where the JSON goes"
    )
    b.set_defaults(func=_cmd_bench_score)
    b = bsub.add_parser(
        "models", parents=[common],
        help="model throughput and latency per runtime, precision and batch size",
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
    b.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated")
    b.add_argument("--batch-sizes", default="1,16,64,256", help="comma-separated")
    b.add_argument("--repeats", type=int, default=5, help="timed repeats (medians, min, max)")
    b.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    b.add_argument(
        "--quick",
        action="store_true",
        help="batches 1,8 and 2 repeats of >= 8 cutouts (tests, smoke checks)",
    )
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the JSON, Markdown and PNG go")  # fmt: skip
    b.set_defaults(func=_cmd_bench_models)
    b = bsub.add_parser(
        "datapath", parents=[common],
        help="FITS read, cutouts, zarr write/read, perturbation kernels in cutouts/s",
    )  # fmt: skip
    b.add_argument("--survey", default="des_y3")
    b.add_argument("--model", help="model scored beside the kernels (default: the survey's)")
    b.add_argument("--tile-px", type=int, default=2000, help="side of the test tile")
    b.add_argument("--n", type=int, default=2048, help="cutouts per repeat")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--quick", action="store_true", help="a small tile, few cutouts, 2 repeats")
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the JSON, Markdown and PNG go")  # fmt: skip
    b.set_defaults(func=_cmd_bench_datapath)

    add_probe_parsers(sub, common)

    s = sub.add_parser("doctor", parents=[common], help="versions, providers, GPU")
    s.set_defaults(func=_cmd_doctor)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LensfindError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
