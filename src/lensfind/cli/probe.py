"""``engine probe ...`` and ``engine explain ...``: the probes on the command line."""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lensfind.cli.common import add_inject_arguments, add_run_arguments, report, run_flags

PROBE_HELP = (
    "sensitivity probes: suite (the paper's full set), selection (injection-recovery), "
    "rare (recall on compound / red-source lenses, Wilde+22; --n per class), "
    "a perturbation (colour, blur, noise, annulus, disk, rotation, flux, psf) or a "
    "parameter (theta_e, source_mag, lens_mag, seeing, alpha, or 'parameter --column C')"
)


def _floats(text: str | None) -> list[float] | None:
    if text is None:
        return None
    from lensfind.errors import ConfigError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from None


def _cmd_probe(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lensfind.probes.suite import SUITE, ProbeOptions, run_probes
    from lensfind.runtime.shipped import resolve_model
    from lensfind.surveys import get_survey

    if args.name == "selection":
        return _probe_selection(args)
    if args.name == "rare":
        return _probe_rare(args)
    spec = get_survey(args.survey)
    cards = [resolve_model(m, spec.name) for m in (args.model or [None])]
    scorers = {c.name: _scorer(c, args.runtime, args.threads, spec.band_names) for c in cards}
    shas = {c.name: c.sha256 for c in cards}
    names = list(SUITE) if args.name == "suite" else [args.name]
    opts = ProbeOptions(
        strengths=_floats(args.strengths), column=args.column, bins=args.bins,
        width=args.width, edges=_floats(args.edges), quantile=args.quantile,
        min_count=args.min_count, fill=args.fill, seed=args.perturb_seed,
        threshold=0.5 if args.threshold is None else args.threshold, by=args.by,
    )  # fmt: skip
    out = args.out or Path("probes") / f"{spec.name}-{args.name}"
    bars: list[Any] = []

    def progress(name: str) -> Callable[[int], None]:
        for bar in bars:
            bar.close()
        bars[:] = [tqdm(desc=name, unit="step", disable=args.quiet)]
        return bars[0].update

    try:
        path = run_probes(names, scorers, shas, spec, args.n, args.seed, out, opts, progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"probe results, plots and report -> {path}")
    return 0


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
    from lensfind.runtime.shipped import resolve_model
    from lensfind.surveys import get_survey

    spec = get_survey(args.survey)
    cards = [resolve_model(m, spec.name) for m in (args.model or [None])]
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
    from lensfind.probes.explain import explain_cli

    return explain_cli(args)


def add_probe_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``probe`` and ``explain`` to the ``engine`` subcommands."""
    s = sub.add_parser("probe", parents=[common], help=PROBE_HELP, description=PROBE_HELP)
    s.add_argument("name", help="probe name (see above)")
    s.add_argument("--survey", default="des_y3")
    s.add_argument(
        "--model", action="append", help="shipped name or model directory (repeat to compare)"
    )
    s.add_argument("--n", type=int, default=1000, help="simulated objects, half lenses")
    s.add_argument("--seed", type=int, default=0, help="seed of the simulated probe set")
    s.add_argument("--strengths", help="comma-separated perturbation strengths")
    s.add_argument("--column", help="truth column for 'parameter'")
    s.add_argument("--bins", type=int, help="number of bins")
    s.add_argument("--width", type=float, help="bin width (units of the parameter)")
    s.add_argument("--edges", help="comma-separated bin edges")
    s.add_argument("--quantile", action="store_true", help="equal-count bins")
    s.add_argument("--min-count", type=int, default=10, help="fewest objects in a trusted bin")
    s.add_argument("--fill", default="zero", choices=("zero", "sky"), help="occlusion fill")
    s.add_argument("--perturb-seed", type=int, default=0, help="seed of random perturbations")
    s.add_argument("--by", help="also a 2-D surface over this truth column")
    s.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    s.add_argument("--runtime", default="onnx", choices=("onnx", "torch"),
                   help="score with ONNX Runtime or the card's torch weights")  # fmt: skip
    s.add_argument("--data", type=Path, help="selection: data directory (default: embedded)")
    s.add_argument("--shard-size", type=int, help=argparse.SUPPRESS)
    add_inject_arguments(s, "1.0 for 'selection'")
    add_run_arguments(s, model=False)
    s.set_defaults(func=_cmd_probe)

    s = sub.add_parser("explain", parents=[common], help="saliency maps of a model's decisions")
    s.add_argument("method", help="occlusion, gradcam, guided_backprop, guided_gradcam, "
                   "deep_dream, class_image or kernels")  # fmt: skip
    s.add_argument("--model", help="shipped name or model directory")
    s.add_argument("--survey", default="des_y3")
    s.add_argument("--input", help="a simulated set (.zarr), a .npy of cutouts, or 'simulated'")
    s.add_argument(
        "--run", type=Path, help="a scan's run directory: explain its candidates (stored cutouts)"
    )
    s.add_argument("--top", type=int, help="--run: the N best-ranked candidates (default 8)")
    s.add_argument("--ids", help="--run: comma-separated object ids instead of --top")
    s.add_argument("--n", type=int, default=8, help="objects (for --input simulated)")
    s.add_argument("--index", help="comma-separated object indices of the input")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="output directory")
    s.set_defaults(func=_cmd_explain)
