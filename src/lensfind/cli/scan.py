"""``engine scan`` and ``engine score``: a survey region, or a cutout store, to a run directory."""

import argparse
from typing import Any

from lensfind.cli.common import (
    SCAN_FIELDS,
    add_config_flags,
    add_run_arguments,
    config_values,
    report,
    run_flags,
)
from lensfind.cli.flags import add_command, existing
from lensfind.engine.config import ScanConfig


def _cmd_scan(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScanConfig, build_config

    # the settings are checked before the engine (Dask, ONNX Runtime) is imported
    config = build_config(ScanConfig, {**run_flags(args), **config_values(args, SCAN_FIELDS)})
    from lensfind.engine.scan import run_scan

    return report(run_scan(config))


def _cmd_score(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScoreConfig, build_config

    config = build_config(ScoreConfig, {**run_flags(args), "cutouts": args.cutouts})
    from lensfind.engine.rescore import run_score

    return report(run_score(config))


def add_scan_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the scan command(s) to the ``engine`` subparsers."""
    s = add_command(
        sub, "scan", common, "scan a survey region for lenses",
        examples=[
            "engine scan --survey des_y3                      # the embedded demo region",
            "engine scan --survey des_y3 --data DIR --out runs/tile1 --workers 4",
            "engine scan --survey des_y3 --prior-lens-rate 1e-3  # the sky's lens rate",
            "engine scan --survey des_y3 --out runs/r --resume  # continue an interrupted run",
            "engine scan --survey des_y3 --scheduler tcp://head:8786 --metrics-port 9100",
        ],
        description="Scan a survey region (FITS tiles + object catalogue) for strong lenses. "
        "Writes a run directory: candidates.fits and candidates.parquet (ranked, with units "
        "and provenance), scores/*.parquet (every object's state), the selection function "
        "and summary.json.",
    )  # fmt: skip
    add_config_flags(s, ScanConfig, SCAN_FIELDS)
    add_run_arguments(s)
    s.set_defaults(func=_cmd_scan)

    s = add_command(
        sub, "score", common, "re-score a cutout store (a scan's cutouts.zarr) with a model",
        examples=["engine score --cutouts runs/r/cutouts.zarr --model des_y3 --out runs/r2"],
    )  # fmt: skip
    s.add_argument("--cutouts", type=existing, required=True,
                   help="zarr cutout store written by engine scan (RUN/cutouts.zarr)")  # fmt: skip
    s.add_argument("--model", required=True,
                   help="shipped model name or model directory to score with")  # fmt: skip
    add_run_arguments(s, model=False)
    s.set_defaults(func=_cmd_score)
