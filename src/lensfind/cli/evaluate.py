"""``engine evaluate``: any model on any labelled simulated set (ONNX Runtime, no torch)."""

import argparse
from pathlib import Path
from typing import Any

from lensfind.cli.flags import add_command, count, existing, fraction, positive


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lensfind.training.evaluate import METRICS_NAME, evaluate_model

    with tqdm(desc="evaluate", unit="cutout", disable=args.quiet) as bar:
        result = evaluate_model(
            args.model, args.set, args.out, threshold=args.threshold, beta=args.beta,
            threads=args.threads, provider=args.provider, batch_size=args.batch_size,
            progress=bar.update,
        )  # fmt: skip
    print(
        f"{result['model']['name']} on {args.set} ({result['n']} objects, "
        f"{result['n_lenses']} lenses): AUROC {result['auroc']:.4f}, TPR0 {result['tpr0']:.4f}, "
        f"TPR10 {result['tpr10']:.4f}, F-beta {result['fbeta']:.4f} (beta {result['beta']:g}, "
        f"threshold {result['threshold']:g}); precision {result['precision']:.4f}, "
        f"recall {result['recall']:.4f}"
    )
    print(f"metrics, plots and scores -> {args.out} ({METRICS_NAME})")
    return 0


def add_evaluate_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``evaluate`` to the ``engine`` subcommands."""
    from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE, PROVIDER_CHOICES
    from lensfind.training.metrics import DEFAULT_BETA

    s = add_command(
        sub, "evaluate", common,
        "score a labelled simulated set with a model: metrics.json (AUROC, TPR0/TPR10, "
        "F-beta, per kind), ROC and F-beta plots",
        examples=["engine evaluate --model des_y3 --set test.zarr --out eval/des_y3",
                  "engine evaluate --model models/m --set test.zarr --threshold 0.9 --out eval/m"],
    )  # fmt: skip
    s.add_argument("--model", required=True, help="model directory or shipped model name")
    s.add_argument("--set", type=existing, required=True, help="labelled set (engine simulate)")
    s.add_argument("--out", type=Path, required=True, help="output directory")
    s.add_argument(
        "--threshold",
        type=fraction,
        help="decision threshold on the lens probability (default: the model card's)",
    )
    s.add_argument("--beta", type=positive, default=DEFAULT_BETA, help="F-beta's beta (vL: 0.17)")
    s.add_argument("--threads", type=count, default=2, help="ONNX Runtime threads")
    s.add_argument("--provider", choices=PROVIDER_CHOICES, default="cpu",
                   help="ONNX Runtime execution provider")  # fmt: skip
    s.add_argument("--batch-size", type=count, default=DEFAULT_BATCH_SIZE,
                   help="cutouts per model call")  # fmt: skip
    s.set_defaults(func=_cmd_evaluate)
