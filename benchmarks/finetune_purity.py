"""Science check: what fine-tuning on graded candidates does to purity at fixed completeness.

The embedded des_y3 region is scanned with the shipped model; its objects are
split by catalogue id into a *graded* half (even ids) and an *evaluation* half
(odd ids). The graded half's candidates get grades from the region's truth
(``truth.parquet``, ``is_lens``: A for a lens, X otherwise), standing in for a
person; ``engine train --finetune des_y3`` fine-tunes the shipped model on them
(plus ``--random`` ungraded non-candidates as non-lenses; with ``--injections N``
a third setting adds N of the run's injected lenses) for each setting and seed.
The parent and every fine-tuned model then score the evaluation half's stored
cutouts (``lensfind.score`` on ``RUN/cutouts.zarr``; objects drawn into any
labelled set, injection hosts included, are left out), and the script reports
purity at completeness 0.5, 0.8 and 0.9 of the truth lenses, AUROC, and the
candidates at the model's threshold.

Run from the repository root (about 6 minutes on 2 shared CPU cores; 12 with
``--injections 300``, whose hosts leave the evaluation set: about half its lenses,
since the planted lenses' deflectors are the kind of galaxy that hosts injections)::

    python benchmarks/finetune_purity.py [--injections 300]

writes ``benchmarks/results/finetune-des_y3-<date>[-injectionsN].json`` and ``.md``; the scan
and the models go to ``--work`` (default ``work/finetune``; a finished scan there
is reused).
"""

import argparse
import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np

import lensfind
from lensfind.bench.report import machine_info
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.parquet_files import read_parquet
from lensfind.testing import run_cli
from lensfind.training.labels import build_labelled_set
from lensfind.training.metrics import auroc, purity_at_completeness
from lensfind.versions import versions

COMPLETENESS = (0.5, 0.8, 0.9)
#: (label, extra engine train flags)
SETTINGS = (
    ("all layers", []),
    ("frozen features", ["--freeze", "features"]),
    ("all layers + injections", ["--injections", "INJECTIONS"]),
)


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    out = {"auroc": round(auroc(labels, scores), 4)}
    for c in COMPLETENESS:
        purity, t = purity_at_completeness(labels, scores, c)
        out[f"purity_at_{c}"] = round(purity, 4)
        out[f"threshold_at_{c}"] = float(f"{t:.6g}")
    flagged = scores >= threshold
    out["candidates_at_threshold"] = int(flagged.sum())
    out["completeness_at_threshold"] = round(float((flagged & labels).sum() / labels.sum()), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("work/finetune"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--random", type=int, default=200, help="random non-candidates added")
    ap.add_argument("--injections", type=int, default=0,
                    help="add a setting with N of the run's injected lenses (0: none); their "
                    "hosts leave the evaluation set")  # fmt: skip
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    run_dir = args.work / "scan"
    if not (run_dir / "summary.json").is_file():
        lensfind.scan("des_y3", out=run_dir, quiet=True)
    run = lensfind.Run(run_dir)
    truth = read_parquet(Path(run.summary["data_dir"]) / "truth.parquet", ["object_id", "is_lens"])
    is_lens = dict(zip(truth["object_id"].to_pylist(), truth["is_lens"].to_pylist(), strict=True))
    store = run_dir / STORE_NAME
    parts = [read_shard_cutouts(store, s) for s in list_shards(store)]
    ids = np.concatenate([p[0] for p in parts])
    images = np.concatenate([p[1] for p in parts])
    bands = lensfind.load_model("des_y3").bands  # the store's bands are the survey's: g, r, i, z

    grades = args.work / "grades.csv"
    graded = [int(i) for i in run.candidates["object_id"] if int(i) % 2 == 0]
    with open(grades, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["object_id", "grade", "graded_utc", "grader"])
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        w.writerows([(i, "A" if is_lens[i] else "X", now, "truth.parquet") for i in graded])

    seeds = [int(s) for s in args.seeds.split(",")]
    used: set[int] = set(graded)
    for seed in seeds:  # every labelled object (injection hosts too) is left out of evaluation
        labelled = build_labelled_set(run_dir, grades, args.random, seed,
                                      n_injections=args.injections)  # fmt: skip
        used |= set(labelled.object_id.tolist())
    evaluate = np.array([int(i) % 2 == 1 and int(i) not in used for i in ids])
    labels = np.array([bool(is_lens[int(i)]) for i in ids[evaluate]])
    x = images[evaluate]

    parent = lensfind.load_model("des_y3")
    rows = [{"model": "des_y3 (parent)", "seed": None,
             **_metrics(labels, lensfind.score(x, parent, bands), parent.threshold)}]  # fmt: skip
    commands = []
    for label, flags in SETTINGS if args.injections else SETTINGS[:2]:
        for seed in seeds:
            out = args.work / f"ft-{label.replace(' ', '-').replace('+', 'plus')}-{seed}"
            flags = [str(args.injections) if f == "INJECTIONS" else f for f in flags]
            argv = ["train", "--finetune", "des_y3", "--labels", str(grades), "--run",
                    str(run_dir), "--out", str(out), "--epochs", str(args.epochs), "--random",
                    str(args.random), "--seed", str(seed), "--quiet", *flags]  # fmt: skip
            commands.append("engine " + " ".join(argv))
            code, _ = run_cli(*argv)
            if code:
                raise SystemExit(f"engine {' '.join(argv)} failed ({code})")
            card = lensfind.load_model(out)
            scores = lensfind.score(x, card, bands)
            counts = card.raw["training"]["finetune"]["counts"]
            rows.append({"model": f"fine-tuned, {label}", "seed": seed, "labels": counts,
                         **_metrics(labels, scores, card.threshold)})  # fmt: skip
            print(rows[-1])
    counts = rows[1]["labels"]
    record = {
        "benchmark": "finetune_purity", "date": dt.date.today().isoformat(),
        "machine": machine_info(), "versions": versions(),
        "run": {"survey": "des_y3", "embedded_default": run.summary.get("embedded_default"),
                "n_scored": run.summary["n_scored"], "n_candidates": len(run.candidates)},
        "protocol": {"graded": "candidates with even object_id, grade from truth is_lens",
                     "evaluated": "odd object_id, stored cutouts, labelled-set objects and "
                                  "injection hosts left out",
                     "epochs": args.epochs, "random": args.random, "seeds": seeds,
                     "injections": args.injections,
                     "label_counts": counts},
        "n_evaluated": int(evaluate.sum()), "n_lenses_evaluated": int(labels.sum()),
        "rows": rows, "commands": commands,
    }  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    tag = f"-injections{args.injections}" if args.injections else ""
    stem = args.results / f"finetune-des_y3-{record['date']}{tag}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    keys = ["auroc", *(f"purity_at_{c}" for c in COMPLETENESS), "candidates_at_threshold",
            "completeness_at_threshold"]  # fmt: skip
    md = [f"# Fine-tuning on graded candidates, des_y3 embedded region ({record['date']})", "",
          f"Evaluated on {record['n_evaluated']} objects ({record['n_lenses_evaluated']} "
          f"lenses); labels {counts} (+ {args.injections} injected lenses in the last "
          f"setting, if any); {args.epochs} epochs.", "",
          "| model | seed | " + " | ".join(keys) + " |",
          "|" + " --- |" * (len(keys) + 2)]  # fmt: skip
    md += [f"| {r['model']} | {r['seed'] if r['seed'] is not None else ''} | "
           + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]  # fmt: skip
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
