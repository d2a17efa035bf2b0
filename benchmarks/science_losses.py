"""Science check: the loss functions of van Lohuizen (2021) Table 5.1 on simulated KiDS.

Trains one network per (loss, seed) on a simulated KiDS DR3 r-band set
(``kids_dr3``, 101x101 px) and reports accuracy, F-beta (beta 0.17), precision
and recall at threshold 0.5 on a held-out simulated set, as mean +- standard
deviation over the seeds (sample std, ddof 1; vL do not say which), next to vL's
Table 5.1. It checks the direction vL found: the soft F-beta loss gives the
highest precision and the lowest recall, the soft F1 loss the highest recall.

Run from the repository root (one command; about 15 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/science_losses.py

writes ``benchmarks/results/science-losses-kids_dr3-<date>.json`` and ``.md``.
Sets and run directories go to ``--work`` (default ``work/science-losses``; sets
already there with the same size and seed are reused).

Differences from vL, forced by a CPU budget of 30 minutes for the whole sweep:
``resnet_small_1band`` (ResNet18 at 1/8 width, 0.18 M parameters) instead of
ResNet18; 3 seeds instead of 10; a few thousand fully simulated lenses and
non-lenses (lensfind's simulator) instead of mock lenses on real KiDS LRGs and
contaminants; a few epochs instead of 8000 chunks of 4096. Each run keeps the
epoch with the lowest validation loss (its own loss), as vL's checkpointing.

Threads: one torch thread by default. On the shared 2-core machine this was
written on, a training step of ``resnet_small_1band`` (batch 64) took 0.12-0.17 s
with one thread but 0.7-4 s with two whenever other jobs ran beside it (OpenMP
threads waiting on a descheduled partner); two threads only pay off on an idle
machine (about 0.08 s).
"""

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.simulation.dataset import cached_dataset
from lensfind.surveys import get_survey
from lensfind.training.loop import TrainConfig, train
from lensfind.versions import versions

SURVEY = "kids_dr3"
LOSS_LABELS = {
    "bce": "Binary cross-entropy",
    "soft_fbeta": "F-beta soft loss",
    "soft_f1": "F1 soft loss",
    "double_soft_f1": "F1 double soft loss",
}
METRICS = ("accuracy", "fbeta", "precision", "recall")
#: van Lohuizen 2021 Table 5.1 (threshold 0.5, 10 runs): mean, std.
VL_TABLE_5_1 = {
    "bce": {"accuracy": (0.937, 0.005), "fbeta": (0.947, 0.006),
            "precision": (0.948, 0.007), "recall": (0.924, 0.016)},
    "soft_fbeta": {"accuracy": (0.849, 0.008), "fbeta": (0.969, 0.007),
                   "precision": (0.979, 0.008), "recall": (0.713, 0.014)},
    "soft_f1": {"accuracy": (0.892, 0.015), "fbeta": (0.854, 0.029),
                "precision": (0.852, 0.030), "recall": (0.951, 0.015)},
    "double_soft_f1": {"accuracy": (0.917, 0.008), "fbeta": (0.927, 0.012),
                       "precision": (0.927, 0.012), "recall": (0.904, 0.013)},
}  # fmt: skip


def _summary(runs: list[dict[str, Any]], losses: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for loss in losses:
        rows = [r["test"] for r in runs if r["loss"] == loss]
        out[loss] = {
            m: {"mean": float(np.mean([r[m] for r in rows])),
                "std": float(np.std([r[m] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
            for m in (*METRICS, "auroc", "fbeta_curve_mean")
        }  # fmt: skip
    return out


def _direction(summary: dict[str, Any]) -> dict[str, bool]:
    def best(metric: str, pick: Any) -> str:
        return str(pick(summary, key=lambda k: summary[k][metric]["mean"]))

    checks = {}
    if "soft_fbeta" in summary:
        checks["soft_fbeta_highest_precision"] = best("precision", max) == "soft_fbeta"
        checks["soft_fbeta_lowest_recall"] = best("recall", min) == "soft_fbeta"
    if "soft_f1" in summary:
        checks["soft_f1_highest_recall"] = best("recall", max) == "soft_f1"
    if "bce" in summary:
        checks["bce_highest_accuracy"] = best("accuracy", max) == "bce"
    return checks


def _markdown(result: dict[str, Any]) -> str:
    s, c = result["summary"], result["config"]
    head = "| loss | accuracy | F-beta | precision | recall | AUROC |"
    lines = [
        f"# Loss functions on simulated {SURVEY} ({result['date_utc'][:10]})",
        "",
        f"`{result['command']}` — {c['arch']}, {result['data']['n_train']} training / "
        f"{result['data']['n_test']} test objects, {c['epochs']} epochs, seeds "
        f"{', '.join(map(str, result['seeds']))}; threshold 0.5, beta {c['beta']}; mean ± std "
        f"(ddof 1) over seeds. Wall time {result['wall_seconds'] / 60:.1f} min on "
        f"{result['machine']['cpus']} CPU cores, {c['threads']} torch thread(s) "
        f"({result['machine']['platform']}).",
        "",
        head,
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for loss, m in s.items():
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in (*METRICS, "auroc")]
        lines.append(f"| {LOSS_LABELS.get(loss, loss)} | {' | '.join(cells)} |")
    lines += ["", "van Lohuizen 2021, Table 5.1 (ResNet18, real KiDS LRGs + simulated sources, "
              "10 runs):", "", head, "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for loss in s:
        if loss in VL_TABLE_5_1:
            ref = VL_TABLE_5_1[loss]
            cells = [f"{ref[k][0]:.3f} ± {ref[k][1]:.3f}" for k in METRICS]
            lines.append(f"| {LOSS_LABELS[loss]} | {' | '.join(cells)} | – |")
    lines += ["", "Direction of vL's result:", ""]
    lines += [
        f"- {k.replace('_', ' ')}: {'yes' if v else 'NO'}" for k, v in result["direction"].items()
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--losses", default="bce,soft_fbeta,soft_f1,double_soft_f1")
    p.add_argument("--arch", default="resnet_small_1band")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads (see the docstring)")
    p.add_argument("--work", type=Path, default=Path("work/science-losses"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args(argv)
    start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    losses = args.losses.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    train_set = cached_dataset(args.work / "train.zarr", get_survey(SURVEY), args.n_train, seed=11)
    test_set = cached_dataset(args.work / "test.zarr", get_survey(SURVEY), args.n_test, seed=12)
    sim_seconds = time.perf_counter() - start
    runs = []
    for seed in seeds:
        for loss in losses:
            config = TrainConfig(
                arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                optimizer="adam", weight_decay=0.0, schedule="onecycle", seed=seed,
                threads=args.threads, loss=loss, beta=0.17, select_by="val_loss",
                rotation="90", flip=True, augment_per="sample",
            )  # fmt: skip
            out = args.work / f"{loss}-seed{seed}"
            report = train(train_set, out, config, test_set=test_set, quiet=True)
            t = report["test_metrics_torch"]
            runs.append({"loss": loss, "seed": seed, "test": t, "best_epoch": report["best_epoch"],
                         "train_seconds": report["train_seconds"]})  # fmt: skip
            print(f"{loss:15s} seed {seed}: acc {t['accuracy']:.3f} F-beta {t['fbeta']:.3f} "
                  f"precision {t['precision']:.3f} recall {t['recall']:.3f} AUROC "
                  f"{t['auroc']:.3f} ({report['train_seconds']:.0f} s)", flush=True)  # fmt: skip
    summary = _summary(runs, losses)
    result: dict[str, Any] = {
        "benchmark": "science-losses",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/science_losses.py", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions(),
        "data": {
            "survey": SURVEY,
            "n_train": args.n_train,
            "n_test": args.n_test,
            "train_seed": 11,
            "test_seed": 12,
            "lens_fraction": 0.5,
        },
        "config": {k: v for k, v in asdict(config).items() if k not in ("seed", "loss")},
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
        "direction": _direction(summary),
        "van_lohuizen_table_5_1": VL_TABLE_5_1,
        "simulation_seconds": round(sim_seconds, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"science-losses-{SURVEY}-{result['date_utc'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))
    print(f"-> {stem}.json, {stem}.md ({result['wall_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
