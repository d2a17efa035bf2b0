"""``engine surveys``, ``engine simulate`` and ``engine survey make``: the data lensfind makes."""

import argparse
from pathlib import Path
from typing import Any

from lensfind.cli.flags import (
    add_command,
    count,
    existing,
    fraction,
    natural,
    positive,
    survey_name,
)


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
    if args.population is not None:  # e.g. a wider seeing range: seeing_sigma_ln: 0.3
        from lensfind.simulation.population_file import load_population

        config = load_population(args.population, config)
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
    s = add_command(sub, "surveys", common, "list known surveys",
                    examples=["engine surveys"])  # fmt: skip
    s.set_defaults(func=_cmd_surveys)

    s = add_command(
        sub, "simulate", common, "write a simulated training/test set",
        examples=[
            "engine simulate --survey des_y3 --n 20000 --out train.zarr",
            "engine simulate --survey des_y3 --n 5000 --seed 1 --out test.zarr",
            "engine simulate --survey euclid_wide --bands VIS --n 1000 --out vis.zarr",
            "engine simulate --survey des_y3 --n 2000 --lens-kinds lens=0.5,double_ring=0.5 "
            "--out rare.zarr",
        ],
    )  # fmt: skip
    s.add_argument("--survey", default="des_y3", type=survey_name, help="survey to simulate")
    s.add_argument("--bands", help="comma-separated subset of bands on one pixel grid "
                   "(default: all)")  # fmt: skip
    s.add_argument("--n", type=count, required=True, help="objects to simulate (>= 1)")
    s.add_argument("--out", type=Path, required=True, help="output zarr store (DATA.zarr)")
    s.add_argument("--seed", type=natural, default=0, help="seed (same seed: same objects)")
    s.add_argument("--lens-fraction", type=fraction, default=0.5,
                   help="fraction of the objects that are lenses, 0..1")  # fmt: skip
    s.add_argument("--lens-kinds", help="split the lenses: lens=0.5,compound_arc=0.2,"
                   "double_ring=0.2,red_source=0.1 (default: all 'lens')")  # fmt: skip
    s.add_argument("--population", type=existing, metavar="POP.yaml",
                   help="YAML of population settings over the defaults (and over --lens-*), "
                   "e.g. 'seeing_sigma_ln: 0.3' for a wider seeing range")  # fmt: skip
    s.add_argument(
        "--pixel-scale",
        type=positive,
        help="put every band on this grid, arcsec/px (e.g. Euclid 0.3 for NISP, 0.1 for VIS); "
        "with --cutout-px; the same --seed gives the same objects on any grid",
    )
    s.add_argument("--cutout-px", type=count, help="stamp side on the --pixel-scale grid, px")
    s.set_defaults(func=_cmd_simulate)

    s = add_command(sub, "survey", common, "synthetic survey regions",
                    examples=["engine survey make --survey des_y3 --out region"])  # fmt: skip
    ssub = s.add_subparsers(
        dest="survey_command", required=True, metavar="COMMAND", help="the command to run:"
    )
    m = add_command(
        ssub, "make", common, "write a synthetic region (FITS tiles, catalogue, truth)",
        examples=[
            "engine survey make --survey des_y3 --out region   # 2x2 tiles, 5% lenses",
            "engine survey make --survey des_y3 --tiles-ra 4 --tiles-dec 4 --lens-fraction 0.01 "
            "--out big",
            "engine scan --survey des_y3 --data region          # then scan it",
        ],
    )  # fmt: skip
    m.add_argument("--survey", default="des_y3", type=survey_name, help="survey to imitate")
    m.add_argument("--out", type=Path, required=True, help="output directory")
    m.add_argument("--tiles-ra", type=count, default=2, help="tiles along right ascension")
    m.add_argument("--tiles-dec", type=count, default=2, help="tiles along declination")
    m.add_argument("--tile-px", type=count, default=2400, help="tile side, px")
    m.add_argument("--spacing-px", type=count, default=100,
                   help="grid spacing of the objects, px")  # fmt: skip
    m.add_argument(
        "--lens-fraction",
        type=fraction,
        default=0.05,
        help="fraction of the objects planted as lenses, 0..1 (the scan's prior)",
    )
    m.add_argument("--seed", type=natural, default=2026, help="seed of the region")
    m.set_defaults(func=_cmd_survey_make)
