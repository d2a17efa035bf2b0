"""``engine train --finetune MODEL --labels RUN/grades.csv --run RUN --out DIR``.

Grades of a scan's candidates (A/B lenses, X non-lenses, C left out; see
:mod:`lensfind.training.labels`) fine-tune MODEL's torch weights for a few epochs
(:mod:`lensfind.training.finetune`); the kept epoch is exported as ``engine
export`` does into DIR (ONNX + model card + parity: a model directory ``engine
scan --model DIR`` takes), the card recording the labels' sha256, their counts
and the parent model; the run's checkpoint, metrics and plots go to ``DIR/training``.
"""

import argparse
import json
from pathlib import Path

from lensfind.errors import ConfigError

#: Random ungraded non-candidates added as non-lenses unless ``--random`` says otherwise:
#: a handful of X grades is then enough (non-lenses are what a survey has most of).
DEFAULT_RANDOM = 100


def add_finetune_arguments(s: argparse.ArgumentParser) -> None:
    """The fine-tuning flags of ``engine train``."""
    g = s.add_argument_group(
        "fine-tuning (--finetune MODEL)",
        "With --finetune, --out DIR becomes the model directory (--test-set: its held-out "
        "metrics); --epochs, "
        "--lr, --batch-size, --seed, "
        "--threads, --device, --schedule, --val-fraction and --select-by apply, with "
        "fine-tuning defaults: 2 epochs, constant lr 2e-4, batch 32, val fraction 0.2",
    )
    g.add_argument("--finetune", metavar="MODEL",
                   help="fine-tune this exported model (name or directory, with weights.npz) "
                   "on graded candidates instead of training from a simulated set")  # fmt: skip
    g.add_argument("--labels", type=Path, help="grades file, e.g. RUN/grades.csv")
    g.add_argument("--run", type=Path, help="the scan's run directory (its cutouts.zarr)")
    g.add_argument("--freeze", metavar="MODULES",
                   help="comma-separated modules kept fixed, e.g. features (only the head "
                   "learns)")  # fmt: skip
    g.add_argument(
        "--random",
        type=int,
        metavar="N",
        default=None,
        help="add N random ungraded non-candidates as non-lenses (default 100; 0: none)",
    )
    g.add_argument(
        "--injections",
        type=int,
        metavar="N",
        default=None,
        help="add N of the run's injected lenses as lenses (re-rendered; weight 0.5)",
    )
    g.add_argument(
        "--random-weight",
        type=float,
        metavar="W",
        default=None,
        help="their sampling weight (default 0.5; graded A/X 1.0, B 0.5)",
    )


def cmd_finetune(args: argparse.Namespace) -> int:
    """Build the labelled set, fine-tune, export; print where the model went."""
    from lensfind.export.onnx_export import export_checkpoint
    from lensfind.export.torch_weights import load_torch_model
    from lensfind.runtime.shipped import resolve_model
    from lensfind.training.checkpoint import CHECKPOINT_NAME
    from lensfind.training.finetune import finetune, finetune_config
    from lensfind.training.labels import DEFAULT_WEIGHTS, build_labelled_set

    if args.train_set is not None or args.config is not None:
        raise ConfigError("--finetune takes --labels and --run, not --train-set or --config")
    if args.resume:
        raise ConfigError("--finetune runs a few epochs and does not resume; rerun it")
    for flag in ("labels", "run", "out"):
        if getattr(args, flag) is None:
            raise ConfigError(f"engine train --finetune needs --{flag}")
    parent = resolve_model(args.finetune, survey="")
    weights = dict(DEFAULT_WEIGHTS)
    if args.random_weight is not None:
        if args.random_weight <= 0:
            raise ConfigError(f"--random-weight must be > 0, got {args.random_weight}")
        weights["random"] = args.random_weight
    seed = 0 if args.seed is None else args.seed
    n_random = DEFAULT_RANDOM if args.random is None else args.random
    labelled = build_labelled_set(args.run, args.labels, n_random, seed, weights,
                                  args.injections or 0)  # fmt: skip
    config = finetune_config(
        parent, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        threads=args.threads, device=args.device, schedule=args.schedule,
        val_fraction=args.val_fraction, select_by=args.select_by,
    )  # fmt: skip
    freeze = [m.strip() for m in (args.freeze or "").split(",") if m.strip()]
    quiet = bool(getattr(args, "quiet", False))
    model = load_torch_model(parent)
    work = args.out / "training"
    report = finetune(parent, model, labelled, work, config, freeze, quiet)
    counts = report["finetune"]["counts"]
    print(
        f"fine-tuned {parent.name} on {counts['A']} A, {counts['B']} B, {counts['X']} X, "
        f"{counts['random']} random, {counts['injection']} injected "
        f"({counts['C_left_out']} C left out); kept epoch "
        f"{report['best_epoch']} of {report['epochs_run']}, validation AUROC "
        f"{report['best_val_auroc']:.4f}"
    )
    out = args.export_dir or args.out
    name = args.name or f"{parent.name}-finetuned"
    threshold = parent.threshold if args.threshold is None else args.threshold
    card = export_checkpoint(work / CHECKPOINT_NAME, out, name=name, test_set=args.test_set,
                             threshold=threshold)  # fmt: skip
    print(
        f"wrote {out / 'model.onnx'} (sha256 {card['sha256'][:12]}); parity max |diff| "
        f"{card['parity']['max_abs_diff']:.2e}; card {out / 'model_card.json'}"
    )
    if "test_metrics" in card:  # --test-set: a simulated set, scored with ONNX Runtime
        print("held-out (ONNX Runtime):", json.dumps(card["test_metrics"]))
    return 0
