"""Science check: the default des_y3 architecture against the seed papers' networks.

Trains every architecture of the registry that can take DES data on the same
simulated ``des_y3`` objects and evaluates it on one held-out simulated set:
AUROC, TPR0, TPR10, F-beta (beta 0.17) and accuracy / precision / recall at
0.5, parameters, GFLOP per cutout, and throughput (ONNX Runtime CPU and torch
eager CPU, 1 thread, batch 256, measured by ``engine bench models``'s harness on
the exported models). The shipped ``des_y3`` model is scored on the same test
set as a reference row (it was trained on 16,000 objects x 6 epochs).

Inputs, as each paper defines them, from the same objects (same pixels):

* ``lensfind_des_compact``, ``jacobs_des``: griz 100x100 (0.263"/px, 26.3");
* ``ou66``: griz centre-cropped to 66x66 (17.4"; the paper's OU-66 sees 19.8"
  of VIS,Y,J,H at 0.3"/px);
* ``ou200``: griz 100x100 upsampled bilinearly to 200x200 (0.1315"/px, counts
  divided by 4 so fluxes are kept; no new information; the paper's OU-200 sees
  20" of VIS at 0.1"/px). Its throughput is the network's alone, without the
  upsampling;
* ``resnet18_1band``, ``resnet_small_1band``: the r band alone, 100x100.

A run is ``NAME`` (``--n-train`` objects, ``--epochs`` epochs) or
``NAME@NxE`` (the first N training objects, E epochs): the two expensive
networks get a smaller budget, and ``lensfind_des_compact`` is also trained on
that smaller budget, so the comparison at equal steps is in the table too.
Everything else is the shipped model's recipe (AdamW, one-cycle lr 2e-3, batch
64, 90-degree rotations and flips, epoch kept by validation AUROC), 1 torch
thread.

Run from the repository root (one command; the default configuration took 37.3
minutes end to end on 2026-12-06 on a 2-core AMD EPYC CPU without GPU, with other
jobs sharing the CPU at times: 23.0 min of training, the rest simulation, exports,
scoring and the throughput measurement; training seconds per step of batch 64 with
1 thread, validation included: compact 0.31, ou66 0.99, resnet18_1band 2.2,
resnet_small_1band 0.085, ou200 8.4, jacobs_des 12.3)::

    python benchmarks/compare_architectures.py

writes ``benchmarks/results/architectures-des_y3-<date>.json``, ``.md`` and
``.png``. Sets, runs and exported models go to ``--work`` (default
``work/archcompare``); sets and runs already there with the same settings are
reused.
"""

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from lensfind.bench.models import bench_models
from lensfind.bench.report import machine_info
from lensfind.export.onnx_export import export_checkpoint
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.dataset import BLOCK, cached_dataset, read_dataset
from lensfind.surveys import get_survey
from lensfind.training.architectures import build_model
from lensfind.training.flops import count_parameters, gflop_per_cutout
from lensfind.training.loop import TrainConfig, train
from lensfind.training.metrics import DEFAULT_BETA, evaluate_all
from lensfind.versions import versions

SURVEY = "des_y3"
TRAIN_SEED, TEST_SEED = 21, 22  # the shipped model used sets of seeds 1 and 2
DEFAULT_RUNS = (
    "lensfind_des_compact,ou66,resnet18_1band,resnet_small_1band,"
    "jacobs_des@2000x1,ou200@2000x1,lensfind_des_compact@2000x1"
)
#: architecture -> input kind
INPUT_OF = {
    "lensfind_des_compact": "griz100",
    "jacobs_des": "griz100",
    "ou66": "griz66crop",
    "ou200": "griz200up",
    "resnet18_1band": "r100",
    "resnet_small_1band": "r100",
}
INPUT_LABEL = {
    "griz100": 'griz 100x100 (26.3")',
    "griz66crop": 'griz 66x66 centre crop (17.4")',
    "griz200up": 'griz 200x200 bilinear x2 (26.3")',
    "r100": 'r 100x100 (26.3")',
}
METRICS = ("auroc", "tpr0", "tpr10", "fbeta", "accuracy", "precision", "recall")


def _up2(x: np.ndarray) -> np.ndarray:
    from lensfind.training._torch import torch

    t = torch.nn.functional.interpolate(
        torch.from_numpy(x), scale_factor=2, mode="bilinear", align_corners=False
    )
    return (t / 4.0).numpy()


#: input kind -> (image transform, attrs it changes)
TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]] = {
    "griz100": (lambda x: x, {}),
    "griz66crop": (lambda x: x[:, :, 17:83, 17:83], {"cutout_px": 66}),
    "griz200up": (_up2, {"cutout_px": 200, "pixel_scale_arcsec": 0.263 / 2}),
    "r100": (lambda x: x[:, 1:2], {"bands": ["r"]}),
}


def derive_set(source: Path, out: Path, kind: str, n: int) -> Path:
    """The first ``n`` objects of ``source`` as input ``kind``, written once to ``out``."""
    if (out / "zarr.json").exists():
        return out
    fn, changes = TRANSFORMS[kind]
    root = zarr.open_group(str(source), mode="r")
    images = zarr.open_array(str(source / "images"), mode="r")
    shape = (n, *fn(np.asarray(images[:1])).shape[1:])
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dst = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    new = dst.create_array(
        "images", shape=shape, chunks=(256, *shape[1:]), dtype="float32", compressors=None
    )
    for start in range(0, n, BLOCK):
        new[start : min(n, start + BLOCK)] = fn(np.asarray(images[start : min(n, start + BLOCK)]))
    for key in ("label", *(f"truth/{k}" for k in root["truth"].array_keys())):
        arr = np.asarray(zarr.open_array(str(source / key), mode="r")[:n])
        dst.create_array(key, shape=arr.shape, chunks=(max(n, 1),), dtype=arr.dtype)[:] = arr
    dst.attrs.update({**dict(root.attrs), **changes, "n": n, "derived_from": str(source),
                      "derived_as": kind})  # fmt: skip
    tmp.rename(out)
    return out


def parse_run(spec: str, n_train: int, epochs: int) -> dict[str, Any]:
    """``NAME`` or ``NAME@NxE`` -> {label, arch, n_train, epochs}."""
    arch, _, budget = spec.partition("@")
    if arch not in INPUT_OF:
        raise SystemExit(f"--archs: {arch!r} takes no des_y3 input here ({', '.join(INPUT_OF)})")
    if budget:
        n_s, _, e_s = budget.partition("x")
        n_train, epochs = int(n_s), int(e_s)
    return {"label": spec, "arch": arch, "n_train": n_train, "epochs": epochs}


def _train_run(run: dict[str, Any], args: argparse.Namespace, base: Path, test_base: Path) -> dict:
    kind = INPUT_OF[run["arch"]]
    sets = args.work / "sets"
    train_set = derive_set(base, sets / f"train-{kind}-{run['n_train']}.zarr", kind, run["n_train"])
    test_set = derive_set(test_base, sets / f"test-{kind}-{args.n_test}.zarr", kind, args.n_test)
    config = TrainConfig(arch=run["arch"], epochs=run["epochs"], batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed, threads=args.threads)  # fmt: skip
    out = args.work / "runs" / run["label"].replace("@", "-")
    report_path = out / "train_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is None or report["config"] != json.loads(json.dumps(asdict(config))):
        print(f"training {run['label']} on {train_set.name}", flush=True)
        report = train(train_set, out, config, test_set=test_set, quiet=args.quiet)
    card = export_checkpoint(out / "checkpoint.pt", out / "model", name=run["label"],
                             test_set=test_set)  # fmt: skip
    bands, size = report["input_shape"][0], report["input_shape"][1]
    model = build_model(run["arch"], bands=bands, size_px=size)
    n_fit = report["train_set"]["n_train"]
    return {
        **run,
        "input": INPUT_LABEL[kind],
        "input_shape": report["input_shape"],
        "n_fit": n_fit,
        "steps": run["epochs"] * -(-n_fit // args.batch_size),
        "best_epoch": report["best_epoch"],
        "train_seconds": report["train_seconds"],
        "parameters": count_parameters(model),
        "gflop_per_cutout": gflop_per_cutout(model, (bands, size, size)),
        "test_torch": report["test_metrics_torch"],
        "test_onnx": card["test_metrics"],
        "parity_max_abs_diff": card["parity"]["max_abs_diff"],
        "model_dir": str(out / "model"),
    }


def _shipped_row(test_base: Path) -> dict[str, Any]:
    card = resolve_model(SURVEY, survey=SURVEY)
    test, _ = read_dataset(test_base)
    scorer = OnnxScorer(card, threads=1)
    x = test.images
    scores = np.concatenate([scorer(x[i : i + 512]) for i in range(0, len(x), 512)])
    t = card.raw.get("training", {})
    n_fit = int(t.get("train_set", {}).get("n_train", 0))
    epochs = int(t.get("config", {}).get("epochs", 0))
    model = build_model(card.raw["arch"], bands=len(card.bands), size_px=card.input_shape[1])
    return {
        "label": f"{SURVEY} (shipped)",
        "arch": card.raw["arch"],
        "input": INPUT_LABEL["griz100"],
        "input_shape": list(card.input_shape),
        "n_train": int(t.get("train_set", {}).get("n", 0)),
        "epochs": epochs,
        "n_fit": n_fit,
        "steps": epochs * -(-n_fit // int(t.get("config", {}).get("batch_size", 64))),
        "train_seconds": t.get("train_seconds"),
        "parameters": count_parameters(model),
        "gflop_per_cutout": gflop_per_cutout(model, card.input_shape),
        "test_onnx": evaluate_all(test.truth["is_lens"], scores, card.threshold, DEFAULT_BETA),
        "model_dir": SURVEY,
    }


def _throughput(rows: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    bench = bench_models(models=[r["model_dir"] for r in rows], provider="cpu",
                         precisions=("fp32",), batch_sizes=(256,), repeats=repeats,
                         threads=1, quiet=True, command="compare_architectures")  # fmt: skip
    for row, info in zip(rows, bench["models"], strict=True):
        for r in bench["results"]:
            if r["model"] == info["name"]:
                row[f"{r['runtime']}_cutouts_per_s"] = r["cutouts_per_s"]
    return {k: bench[k] for k in ("settings", "skipped", "machine")}


def _fmt_rate(row: dict[str, Any], key: str) -> str:
    r = row.get(key)
    return f"{r['median']:,.0f}" if r else "–"


def _fmt_metric(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"# Architectures on simulated {SURVEY} ({result['date_utc'][:10]})",
        "",
        f"`{result['command']}` — {result['data']['n_test']} held-out test objects (seed "
        f"{TEST_SEED}), training objects from one set (seed {TRAIN_SEED}); batch "
        f"{c['batch_size']}, lr {c['lr']}, the shipped recipe otherwise; threshold 0.5, beta "
        f"{DEFAULT_BETA}; metrics from the exported ONNX models. Throughput: 1 thread, batch "
        f"256, median of {result['throughput']['settings']['repeats']} interleaved repeats, "
        f"model only (normalised inputs). Wall time {result['wall_seconds'] / 60:.1f} min on "
        f"{result['machine']['cpu']} ({result['machine']['cpus']} cores).",
        "",
        "| model | input | training: objects x epochs (steps) | params | GFLOP | AUROC | TPR0 "
        "| TPR10 | F-beta | acc | prec | recall | ORT cutouts/s | torch cutouts/s | train s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        t = r["test_onnx"]
        metrics = " | ".join(_fmt_metric(t[m]) for m in METRICS)
        secs = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "–"
        lines.append(
            f"| {r['label']} | {r['input']} | {r['n_fit']:,} x {r['epochs']} ({r['steps']}) | "
            f"{r['parameters'] / 1e6:.2f} M | {r['gflop_per_cutout']:.3f} | {metrics} | "
            f"{_fmt_rate(r, 'ort-cpu_cutouts_per_s')} | {_fmt_rate(r, 'torch-cpu_cutouts_per_s')}"
            f" | {secs} |"
        )
    lines += [
        "",
        "Training objects are those fitted (90% of the set; 10% is the validation split that "
        "picks the kept epoch). GFLOP = 2 x multiply-accumulates of the convolutions and dense "
        "layers per cutout (`lensfind.training.flops`). The shipped row was trained on its own "
        "16,000-object set (seed 1) with 2 threads; its training time is from its card. "
        "A run written `NAME@NxE` was trained on the first N objects of the set for E epochs "
        "(the expensive networks' smaller budget; `lensfind_des_compact@NxE` is the "
        "equal-step comparison). Every network gets the same recipe, not its paper's.",
    ]
    if any(not np.isfinite(r["test_onnx"][m]) for r in result["rows"] for m in METRICS):
        lines.append("")
        lines.append("–: undefined (no test object scored at or above the threshold, so no "
                     "precision).")  # fmt: skip
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    for r in result["rows"]:
        rate = r.get("ort-cpu_cutouts_per_s")
        if rate:
            ax.scatter(rate["median"], r["test_onnx"]["auroc"], s=30)
            ax.annotate(r["label"], (rate["median"], r["test_onnx"]["auroc"]), fontsize=7,
                        xytext=(4, 2), textcoords="offset points")  # fmt: skip
    ax.set(xscale="log", xlabel="ONNX Runtime CPU cutouts/s (1 thread, batch 256)",
           ylabel="test AUROC", title=f"Architectures on simulated {SURVEY}")  # fmt: skip
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--archs", default=DEFAULT_RUNS, help="NAME or NAME@NxE, comma-separated")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="throughput repeats")
    p.add_argument("--work", type=Path, default=Path("work/archcompare"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    start = time.perf_counter()
    runs = [parse_run(s, args.n_train, args.epochs) for s in args.archs.split(",")]
    biggest = max(r["n_train"] for r in runs)
    base = cached_dataset(
        args.work / "sets" / "train.zarr", get_survey(SURVEY), biggest, TRAIN_SEED
    )
    test_base = cached_dataset(
        args.work / "sets" / "test.zarr", get_survey(SURVEY), args.n_test, TEST_SEED
    )
    rows = []
    for run in runs:
        row = _train_run(run, args, base, test_base)
        t = row["test_onnx"]
        print(f"{row['label']:28s} AUROC {t['auroc']:.4f} TPR0 {t['tpr0']:.3f} TPR10 "
              f"{t['tpr10']:.3f} acc {t['accuracy']:.3f} ({row['train_seconds']:.0f} s)",
              flush=True)  # fmt: skip
        rows.append(row)
    rows.append(_shipped_row(test_base))
    throughput = _throughput(rows, args.repeats)
    result: dict[str, Any] = {
        "benchmark": "architectures",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/compare_architectures.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "versions": versions(),
        "data": {
            "survey": SURVEY,
            "n_train_set": biggest,
            "n_test": args.n_test,
            "train_seed": TRAIN_SEED,
            "test_seed": TEST_SEED,
            "inputs": {a: INPUT_LABEL[k] for a, k in INPUT_OF.items()},
        },
        "config": {k: v for k, v in vars(args).items() if k not in ("work", "results")},
        "rows": rows,
        "throughput": throughput,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    result["config"] = json.loads(json.dumps(result["config"], default=str))
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"architectures-{SURVEY}-{result['date_utc'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    _plot(result, stem.with_suffix(".png"))
    print(_markdown(result))
    print(f"-> {stem}.json, .md, .png ({result['wall_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
