"""``engine surveys``, ``engine simulate`` and ``engine survey make``: the data lensfind makes."""

import argparse
from pathlib import Path
from typing import Any


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


def add_make_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the make command(s) to the ``engine`` subparsers."""
    s = sub.add_parser("surveys", parents=[common], help="list known surveys")
    s.set_defaults(func=_cmd_surveys)

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
