"""``engine scan`` and ``engine score``: a survey region, or a cutout store, to a run directory."""

import argparse
from pathlib import Path
from typing import Any

from lensfind.cli.common import (
    SCAN_FIELDS,
    add_config_flags,
    add_run_arguments,
    config_values,
    report,
    run_flags,
)
from lensfind.engine.config import ScanConfig


def _cmd_scan(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScanConfig, build_config
    from lensfind.engine.scan import run_scan

    return report(
        run_scan(build_config(ScanConfig, {**run_flags(args), **config_values(args, SCAN_FIELDS)}))
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from lensfind.engine.config import ScoreConfig, build_config
    from lensfind.engine.rescore import run_score

    flags = {"cutouts": args.cutouts}
    return report(run_score(build_config(ScoreConfig, {**run_flags(args), **flags})))


def add_scan_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the scan command(s) to the ``engine`` subparsers."""
    s = sub.add_parser("scan", parents=[common], help="scan a survey region for lenses")
    add_config_flags(s, ScanConfig, SCAN_FIELDS)
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
