"""``engine calibrate``: fit a model's score calibration and store it in its card."""

import argparse
from typing import Any

from lensfind.cli.flags import add_command, count, existing


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from lensfind.runtime.calibrate import CALIBRATION_PNG, calibrate_model
    from lensfind.runtime.shipped import resolve_model

    model_dir = resolve_model(args.model, survey="").directory
    cal = calibrate_model(model_dir, args.set, args.eval_set, threads=args.threads)
    print(
        f"{model_dir / 'model_card.json'}: temperature {cal['temperature']:.4f} (fitted on "
        f"{cal['n']} objects of {cal['set']}); held-out {cal['eval_set']} ({cal['n_eval']}): "
        f"ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}, "
        f"NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}; plot {model_dir / CALIBRATION_PNG}"
    )
    return 0


def add_calibrate_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the calibrate command(s) to the ``engine`` subparsers."""
    s = add_command(
        sub, "calibrate", common,
        "fit a model's score calibration (temperature scaling) on a held-out simulated "
        "set and store it in its model card",
        examples=["engine calibrate --model models/m --set cal.zarr --eval-set test.zarr"],
    )  # fmt: skip
    s.add_argument("--model", required=True, help="model directory (or shipped name)")
    s.add_argument("--set", type=existing, required=True, help="held-out simulated set to fit on")
    s.add_argument(
        "--eval-set", type=existing,
        help="second held-out set to measure on (default: half of --set)",
    )  # fmt: skip
    s.add_argument("--threads", type=count, default=2, help="ONNX Runtime threads")
    s.set_defaults(func=_cmd_calibrate)
