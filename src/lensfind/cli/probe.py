"""``engine probe ...`` and ``engine explain ...``: the probes on the command line."""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lensfind.cli.common import add_inject_arguments, add_run_arguments, report, run_flags
from lensfind.cli.flags import (
    add_command,
    count,
    existing,
    floats,
    natural,
    positive,
    survey_name,
)

PROBE_HELP = (
    "sensitivity probes: suite (the paper's full set), selection (injection-recovery), "
    "rare (recall on compound / red-source lenses, Wilde+22; --n per class), "
    "a perturbation (colour, blur, noise, annulus, disk, rotation, flux, psf) or a "
    "parameter (theta_e, source_mag, lens_mag, seeing, alpha, or 'parameter --column C')"
)


def _cmd_probe(args: argparse.Namespace) -> int:
    import sys

    from lensfind.probes.names import check_probe

    check_probe(args.name)  # before the probe set is simulated
    from tqdm.auto import tqdm

    from lensfind.probes.suite import SUITE, ProbeOptions, run_probes

    if args.name == "selection":
        return _probe_selection(args)
    if args.name == "rare":
        return _probe_rare(args)
    spec, cards = _survey_and_models(args)
    scorers = {c.name: _scorer(c, args.runtime, args.threads, spec.band_names) for c in cards}
    shas = {c.name: c.sha256 for c in cards}
    names = list(SUITE) if args.name == "suite" else [args.name]
    opts = ProbeOptions(
        strengths=args.strengths, column=args.column, bins=args.bins,
        width=args.width, edges=args.edges, quantile=args.quantile,
        min_count=args.min_count, fill=args.fill, seed=args.perturb_seed,
        threshold=0.5 if args.threshold is None else args.threshold, by=args.by,
    )  # fmt: skip
    out = args.out or Path("probes") / f"{spec.name}-{args.name}"
    bars: list[Any] = []

    def progress(name: str, total: int) -> Callable[[int], None]:
        for bar in bars:
            bar.close()
        unit = "obj" if name == "simulate" else "step"
        bars[:] = [tqdm(total=total, desc=name, unit=unit, disable=args.quiet)]
        return bars[0].update

    try:
        path, sparse = run_probes(names, scorers, shas, spec, args.n, args.seed, out, opts,
                                  progress)  # fmt: skip
    finally:
        for bar in bars:
            bar.close()
    for name, s in sparse.items():
        fill = (f"; rerun with --n {s['suggested_n']} to fill them" if s["suggested_n"]
                else "")  # fmt: skip
        print(f"warning: {name}: {s['n_sparse']} of {s['n_bins']} bins hold fewer than "
              f"{s['min_count']} objects (--min-count) and are left out of its trend{fill}",
              file=sys.stderr)  # fmt: skip
    print(f"probe results, plots and report -> {path}")
    return 0


def _survey_and_models(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The probed survey on its models' input grid, and the models' cards (exit 2 when the
    models take different grids: one probe set is simulated for all of them)."""
    from lensfind.errors import ConfigError
    from lensfind.runtime.shipped import resolve_model
    from lensfind.surveys import get_survey

    survey = get_survey(args.survey)
    cards = [resolve_model(m, survey.name) for m in (args.model or [None])]
    grids = {c.name: c.on_input_grid(survey) for c in cards}
    first = next(iter(grids.values()))
    odd = [name for name, g in grids.items() if g != first]
    if odd:
        raise ConfigError(f"models {', '.join(odd)} take another pixel grid or cutout size than "
                          f"{cards[0].name}: probe them separately")  # fmt: skip
    return first, cards


def _scorer(card: Any, runtime: str, threads: int, input_bands: tuple[str, ...]) -> Any:
    """The card's model as a scorer on the chosen runtime, for cutouts with ``input_bands``
    (the probed survey's bands, reordered to the card's)."""
    if runtime == "torch":
        from lensfind.export.torch_weights import TorchScorer

        return TorchScorer(card, input_bands=input_bands)
    from lensfind.runtime.scorer import OnnxScorer

    return OnnxScorer(card, threads=threads, input_bands=input_bands)


def _probe_rare(args: argparse.Namespace) -> int:
    """Recall on single, compound-arc, double-ring and red-source lenses (Wilde+22 Table 6)."""
    from tqdm.auto import tqdm

    from lensfind.probes.rare import RARE_CLASSES, rare_probe, write_rare

    spec, cards = _survey_and_models(args)
    scorers = {c.name: _scorer(c, args.runtime, args.threads, spec.band_names) for c in cards}
    thresholds = {c.name: c.threshold if args.threshold is None else args.threshold
                  for c in cards}  # fmt: skip
    total = args.n * len(RARE_CLASSES)
    with tqdm(total=total, desc="rare", unit="obj", disable=args.quiet) as bar:
        summary, scores = rare_probe(scorers, spec, args.n, args.seed, thresholds, bar.update)
    out = args.out or Path("probes") / f"{spec.name}-rare"
    description = {
        "survey": spec.name, "n_per_class": args.n, "seed": args.seed,
        "models": {c.name: c.sha256 for c in cards}, "thresholds": thresholds,
        "threshold_source": "model card" if args.threshold is None else "--threshold",
        "runtime": args.runtime,
    }  # fmt: skip
    paths = write_rare(out, summary, scores, description)
    print(paths["markdown"].read_text(), end="")
    print(f"rare-lens probe -> {out}")
    return 0


def _probe_selection(args: argparse.Namespace) -> int:
    """Injection-recovery over a whole data directory: a scan with injections."""
    from lensfind.engine.config import ScanConfig, build_config
    from lensfind.engine.scan import run_scan

    flags = {
        **run_flags(args), "model": (args.model or [None])[0], "survey": args.survey,
        "data_dir": args.data, "inject_rate": 1.0 if args.inject_rate is None else args.inject_rate,
        "inject_seed": args.inject_seed, "shard_size": args.shard_size,
        "out": args.out or Path("probes") / f"{args.survey}-selection",
    }  # fmt: skip
    return report(run_scan(build_config(ScanConfig, flags)))


def _cmd_explain(args: argparse.Namespace) -> int:
    from lensfind.probes.saliency import get_method

    get_method(args.method)  # an unknown method fails before the model or inputs load
    from lensfind.probes.explain import explain_cli

    return explain_cli(args)


def add_probe_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``probe`` and ``explain`` to the ``engine`` subcommands."""
    s = add_command(
        sub, "probe", common, PROBE_HELP,
        examples=[
            "engine probe suite --survey des_y3                 # the paper's set -> report.html",
            "engine probe blur --strengths 0,1,2,4 --n 2000     # one perturbation, own strengths",
            "engine probe theta_e --n 4000 --width 0.1          # by Einstein radius, 0.1\" bins",
            "engine probe colour --model des_y3 --model runs/m/model   # two models compared",
            "engine probe selection --data DIR                  # injection-recovery on real tiles",
            "engine probe rare --n 500                          # compound / red-source lenses",
        ],
    )  # fmt: skip
    s.add_argument("name", help="probe name (see above)")
    s.add_argument("--survey", default="des_y3", type=survey_name,
                   help="survey whose simulated objects are probed")  # fmt: skip
    s.add_argument(
        "--model", action="append",
        help="shipped name or model directory (repeat to compare; default: the survey's)",
    )  # fmt: skip
    s.add_argument("--n", type=count, default=1000,
                   help="simulated objects, half lenses (rare: per class)")  # fmt: skip
    s.add_argument("--seed", type=natural, default=0, help="seed of the simulated probe set")
    s.add_argument("--strengths", type=floats,
                   help="comma-separated perturbation strengths, in the perturbation's units "
                   "(default: the paper's grid)")  # fmt: skip
    s.add_argument("--column", help="truth column for 'parameter' (e.g. theta_e_arcsec)")
    s.add_argument("--bins", type=count, help="number of bins (default: the paper's widths)")
    s.add_argument("--width", type=positive, help="bin width, in the parameter's units")
    s.add_argument("--edges", type=floats, help="comma-separated bin edges, parameter's units")
    s.add_argument("--quantile", action="store_true", help="equal-count bins")
    s.add_argument("--min-count", type=count, default=10,
                   help="fewest objects in a bin that enters the trend and the plot")  # fmt: skip
    s.add_argument("--fill", default="zero", choices=("zero", "sky"),
                   help="occlusion fill: zeros (the paper) or sky noise")  # fmt: skip
    s.add_argument("--perturb-seed", type=natural, default=0,
                   help="seed of random perturbations (noise, colour jitter)")  # fmt: skip
    s.add_argument("--by", help="also a 2-D surface over this truth column")
    s.add_argument("--threads", type=count, default=2, help="ONNX Runtime threads")
    s.add_argument("--runtime", default="onnx", choices=("onnx", "torch"),
                   help="score with ONNX Runtime or the card's torch weights")  # fmt: skip
    s.add_argument(
        "--data",
        type=existing,
        help="selection: survey data directory (default: the embedded region)",
    )
    s.add_argument("--shard-size", type=count, help=argparse.SUPPRESS)
    add_inject_arguments(s, "1.0 for 'selection'")
    add_run_arguments(s, model=False)
    s.set_defaults(func=_cmd_probe)

    from lensfind.probes.saliency import METHODS  # names only (torch loads lazily)

    s = add_command(
        sub, "explain", common, "saliency maps of a model's decisions",
        examples=[
            "engine explain occlusion --n 8                 # ONNX model, no torch needed",
            "engine explain gradcam --input set.zarr --index 0,5,9   # needs lensfind[train]",
            "engine explain class_dream --model des_y3      # what the model thinks a lens is",
            "engine explain occlusion --run RUN --top 12    # a scan's best candidates",
        ],
    )  # fmt: skip
    s.add_argument("method", help=f"saliency method: {', '.join(METHODS)}")
    s.add_argument("--model", help="shipped name or model directory (default: the survey's)")
    s.add_argument("--survey", default="des_y3", type=survey_name,
                   help="survey of the default model and of simulated inputs")  # fmt: skip
    s.add_argument("--input", help="a simulated set (.zarr), a .npy of cutouts (N, bands, H, W) "
                   "in counts, a run's cutouts.zarr, or 'simulated' (default)")  # fmt: skip
    s.add_argument("--run", type=Path,
                   help="a run directory: explain its candidates (its stored cutouts)")  # fmt: skip
    s.add_argument("--top", type=count,
                   help="with --run: the N best-ranked candidates (default 8)")  # fmt: skip
    s.add_argument("--ids", help="with --run: comma-separated object ids instead of --top")
    s.add_argument("--n", type=count, default=8, help="objects (for --input simulated)")
    s.add_argument("--index", help="comma-separated object indices of the input")
    s.add_argument("--seed", type=natural, default=0, help="seed of the simulated inputs")
    s.add_argument("--out", type=Path,
                   help="output directory (default: explain/<model>-<method>)")  # fmt: skip
    s.set_defaults(func=_cmd_explain)
