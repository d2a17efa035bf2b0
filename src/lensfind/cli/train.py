"""``engine train``, ``engine export`` and ``engine ensemble``: model making on the command line.

``engine export`` takes a checkpoint of ``engine train`` (``--checkpoint``), a
published torch state dict of a registry architecture (``--weights FILE.pt
--arch ou66 --survey euclid_wide``), or, with ``--fp16``/``--int8``, an exported
model (``--model``).

``engine train`` takes every setting of :class:`~lensfind.training.config.TrainConfig`
and :class:`~lensfind.training.config.TrainJob` as a flag (``--select-by``,
``--no-flip``, ...) and from a flat YAML file (``--config FILE.yaml``, keys as the
field names; relative paths are relative to the file); flags win over the file,
the file over the defaults, and an unknown key is an error naming it.
"""

import argparse
import json
from pathlib import Path
from typing import Any

from lensfind.cli.common import add_config_flags
from lensfind.cli.finetune import add_finetune_arguments, cmd_finetune
from lensfind.cli.flags import add_command, count, existing, fraction, natural, positive
from lensfind.cli.ou_tsne import add_ou_tsne_options, add_ou_tsne_parser
from lensfind.training.config import CONFIG_FIELDS, JOB_FIELDS, TrainConfig, TrainJob


def _cmd_train(args: argparse.Namespace) -> int:
    if args.finetune is not None:
        return cmd_finetune(args)
    from lensfind.training.config import build_train_job

    flags = {k: getattr(args, k, None) for k in (*JOB_FIELDS, *CONFIG_FIELDS)}
    flags["quiet"] = True if getattr(args, "quiet", False) else None
    job = build_train_job(flags, args.config)  # the settings are checked before torch loads
    from lensfind.training.loop import CHECKPOINT_NAME, train

    report = train(job.train_set, job.out, job.config, job.test_set, job.quiet, job.resume)
    print(
        f"checkpoint: {job.out / CHECKPOINT_NAME}; best validation AUROC "
        f"{report['best_val_auroc']:.4f}; kept epoch {report['best_epoch']} of "
        f"{report['epochs_run']} by {report['select_by']} = {report['best_value']:.4f}"
    )
    print(f"metrics, plots and report: {job.out}")
    if "test_metrics_torch" in report:
        print("held-out:", json.dumps(report["test_metrics_torch"]))
    if job.export:
        _export(job.out / CHECKPOINT_NAME, job.export_dir or job.out / "model", job.name,
                job.test_set, job.threshold)  # fmt: skip
    return 0


def _export(
    checkpoint: Path, out: Path, name: str | None, test_set: Path | None, threshold: float
) -> None:
    from lensfind.export.onnx_export import export_checkpoint
    from lensfind.runtime.card_md import MODEL_CARD_MD

    card = export_checkpoint(checkpoint, out, name=name, test_set=test_set, threshold=threshold)
    print(
        f"wrote {out / 'model.onnx'} (sha256 {card['sha256'][:12]}); parity max |diff| "
        f"{card['parity']['max_abs_diff']:.2e}; card {out / MODEL_CARD_MD}"
    )
    if "test_metrics" in card:
        print("held-out (ONNX Runtime):", json.dumps(card["test_metrics"]))


def _export_weights(args: argparse.Namespace, out: Path) -> None:
    from lensfind.export.published import export_weights
    from lensfind.runtime.card_md import MODEL_CARD_MD

    card = export_weights(
        args.weights, args.arch, args.survey, out, name=args.name, test_set=args.test_set,
        threshold=args.threshold, normalisation=args.normalisation,
        pixel_scale_arcsec=args.pixel_scale,
    )  # fmt: skip
    print(
        f"wrote {out / 'model.onnx'} ({card['arch']}, bands {','.join(card['bands'])}, "
        f"{card['normalisation']['kind']} inputs; sha256 {card['sha256'][:12]}); parity max "
        f"|diff| {card['parity']['max_abs_diff']:.2e}; card {out / MODEL_CARD_MD}"
    )
    if "test_metrics" in card:
        print("held-out (ONNX Runtime):", json.dumps(card["test_metrics"]))


def _cmd_export(args: argparse.Namespace) -> int:
    import tempfile

    from lensfind.errors import ConfigError

    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    sources = [x for x in (args.checkpoint, args.model, args.weights) if x is not None]
    if len(sources) != 1:
        raise ConfigError("engine export needs exactly one of --checkpoint, --weights or --model")
    if args.weights is not None and (args.arch is None or args.survey is None):
        raise ConfigError("--weights needs --arch and --survey (the weights' network and data)")
    if args.weights is None and (args.arch or args.survey or args.pixel_scale is not None):
        raise ConfigError("--arch, --survey and --pixel-scale go with --weights")
    if args.weights is None and args.normalisation != "arch":
        raise ConfigError("--normalisation goes with --weights (a checkpoint records its own)")
    if args.calibration is not None and precision != "int8":
        raise ConfigError("--calibration goes with --int8")

    def export_fp32(out: Path) -> None:
        if args.weights is not None:
            _export_weights(args, out)
        else:
            _export(args.checkpoint, out, args.name, args.test_set, args.threshold)

    if precision == "fp32":
        if args.model is not None:
            raise ConfigError("--model needs --fp16 or --int8 (it is already exported)")
        export_fp32(args.out)
        return 0
    from lensfind.export.precision import export_precision
    from lensfind.probes.precision_check import record_probe_changes
    from lensfind.runtime.card import load_card
    from lensfind.runtime.shipped import resolve_model

    with tempfile.TemporaryDirectory(prefix="lensfind-export-") as tmp:
        if args.model is None:
            source = Path(tmp) / "fp32"
            export_fp32(source)
        else:
            source = resolve_model(args.model, survey="").directory
        out = export_precision(source, args.out, precision, args.calibration)
        changes = record_probe_changes(load_card(source), out, load_card(out))
    print(f"wrote {precision} model {out / 'model.onnx'} (card {out / 'model_card.json'})")
    worst = max(changes["probes"].items(), key=lambda kv: abs(kv[1]["change"]))
    print(f"largest change of a probe's mean score vs fp32: {worst[0]} {worst[1]['change']:+.4f}")
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    if args.method == "ou_tsne":
        from lensfind.cli.ou_tsne import cmd_ou_tsne_fit

        return cmd_ou_tsne_fit(args)
    from lensfind.export.ensemble_export import export_ensemble
    from lensfind.runtime.card_md import MODEL_CARD_MD

    members = [Path(m) for m in args.members.split(",") if m.strip()]
    gate = {"epochs": args.gate_epochs, "batch_size": args.gate_batch_size,
            "lr": args.gate_lr, "width": args.gate_width}  # fmt: skip
    card = export_ensemble(
        members, args.out, args.method, val_set=args.val_set, test_set=args.test_set,
        name=args.name, threshold=args.threshold, seed=args.seed, gate_options=gate,
        threads=args.threads, quiet=args.quiet,
    )  # fmt: skip
    ens = card["ensemble"]
    weights = ens["weights"]
    shown = ", ".join(f"{w:.4f}" for w in weights) if weights else "per image (gating CNN)"
    print(f"ensemble of {len(ens['members'])} ({args.method}): weights {shown}")
    print(
        f"wrote {args.out / 'model.onnx'} (sha256 {card['sha256'][:12]}); parity max |diff| "
        f"{card['parity']['max_abs_diff']:.2e}; card {args.out / MODEL_CARD_MD}"
    )
    for key in ("val_metrics", "test_metrics"):
        if key in card:
            print(f"{key}:", json.dumps(card[key]))
    return 0


def add_train_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``train``, ``export`` and ``ensemble`` to the ``engine`` subcommands."""
    s = add_command(
        sub, "train", common,
        "train a model (needs lensfind[train]); every setting also in --config YAML",
        description=__doc__,
        examples=[
            "engine train --train-set train.zarr --test-set test.zarr --out runs/m --export",
            "engine train --config train.yaml --epochs 20          # flags win over the file",
            "engine train --train-set train.zarr --arch ou66 --loss soft_fbeta --out runs/f",
            "engine train --train-set train.zarr --out runs/m --resume",
        ],
    )  # fmt: skip
    s.add_argument(
        "--config",
        type=existing,
        help="YAML file of settings (flat keys as the flag names; flags win)",
    )
    job_fields = tuple(f for f in JOB_FIELDS if f != "quiet")
    add_config_flags(s, TrainJob, job_fields)
    add_config_flags(s, TrainConfig, CONFIG_FIELDS)
    add_finetune_arguments(s)
    s.set_defaults(func=_cmd_train)

    s = add_command(
        sub, "export", common,
        "export a checkpoint or published weights (or convert a model) to ONNX + card",
        examples=[
            "engine export --checkpoint runs/m/checkpoint.pt --test-set test.zarr --out models/m",
            "engine export --weights ou66.pt --arch ou66 --survey euclid_wide --pixel-scale 0.3 "
            "--out models/ou66",
            "engine export --model models/m --fp16 --out models/m-fp16",
            "engine export --model models/m --int8 --calibration cal.zarr --out models/m-int8",
        ],
    )  # fmt: skip
    s.add_argument("--checkpoint", type=existing, help="a checkpoint written by engine train")
    s.add_argument(
        "--weights",
        type=existing,
        help="a torch state dict of --arch (e.g. published OU-66 weights; read weights_only)",
    )
    s.add_argument("--arch", help="--weights: the registry architecture (engine train --arch)")
    s.add_argument("--survey", help="--weights: the survey the network takes (e.g. euclid_wide)")
    s.add_argument(
        "--pixel-scale",
        type=positive,
        help="--weights: common pixel grid of the input, arcsec/px (asinh scales; e.g. 0.3)",
    )
    s.add_argument(
        "--normalisation",
        choices=("arch", "asinh", "minmax"),
        default="arch",
        help="--weights: input normalisation (arch: the architecture's own)",
    )
    s.add_argument("--model", help="with --fp16/--int8: convert this exported model instead")
    prec = s.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="fp16 graph (float32 I/O)")
    prec.add_argument("--int8", action="store_true", help="static INT8 quantisation")
    s.add_argument("--calibration", type=existing,
                   help="--int8: simulated set to calibrate on")  # fmt: skip
    s.add_argument("--out", type=Path, required=True, help="model directory to write")
    s.add_argument("--name", help="model name in the card (default: the checkpoint's)")
    s.add_argument("--test-set", type=existing,
                   help="held-out simulated set: its metrics go into the card")  # fmt: skip
    s.add_argument(
        "--threshold",
        type=fraction,
        default=0.5,
        help="decision threshold on the lens probability, recorded in the card",
    )
    s.set_defaults(func=_cmd_export)

    s = add_command(
        sub, "ensemble", common,
        "combine exported models into one ONNX model (ou_tsne: a grid classifier, no ONNX)",
        examples=[
            "engine ensemble --members models/a,models/b --val-set val.zarr --out models/ens",
            "engine ensemble --members models/a,models/b --method gated --val-set val.zarr "
            "--test-set test.zarr --out models/gated",
        ],
    )  # fmt: skip
    s.add_argument("--members", required=True, help="comma-separated model directories")
    s.add_argument(
        "--method", choices=("mean", "nelder_mead", "gated", "ou_tsne"), default="nelder_mead",
        help="mean of the members, Nelder-Mead weights, a gating CNN (per image), or OU-T-SNE",
    )  # fmt: skip
    s.add_argument(
        "--val-set",
        type=Path,
        help="set the weights / gate are fitted on (ou_tsne: the embedding and grid; "
        "comma-separated, one set per pixel grid, the same objects)",
    )
    s.add_argument(
        "--test-set", type=Path, help="held-out set for the metrics (ou_tsne: comma-separated)"
    )
    s.add_argument("--out", type=Path, required=True, help="ensemble model directory")
    s.add_argument("--name", help="model name in the card (default: ensemble-<method>)")
    s.add_argument(
        "--threshold",
        type=fraction,
        default=0.5,
        help="decision threshold on the lens probability, recorded in the card",
    )
    s.add_argument("--seed", type=natural, default=0, help="seed of the fit")
    s.add_argument("--threads", type=count, default=2, help="ONNX Runtime threads")
    s.add_argument("--gate-epochs", type=count, default=5, help="gated: training epochs")
    s.add_argument("--gate-batch-size", type=count, default=64, help="gated: batch size")
    s.add_argument("--gate-lr", type=positive, default=1e-3, help="gated: learning rate")
    s.add_argument("--gate-width", type=count, default=16, help="gated: channels of the gate")
    add_ou_tsne_options(s)
    s.set_defaults(func=_cmd_ensemble)
    add_ou_tsne_parser(sub, common)
