"""What a float16 cutout store loses: pixel error in sky sigmas, and score changes on re-scoring.

Scans one region twice with the same plan, once with a float32 and once with
a float16 cutout store (no injections), then

- compares every stored pixel of the two stores (errors in units of each
  band's sky sigma, and relative to the pixel);
- re-scores the float16 store with ``engine score`` and compares those scores
  with the scan's own (which the model computed from the float32 stamps), and
  counts objects that cross the model's threshold;
- records both stores' sizes on disk.

Run from the repository root::

    engine survey make --survey des_y3 --out work/region16 --tiles-ra 4 --tiles-dec 4 --seed 7
    python benchmarks/store_precision.py --data work/region16

Writes ``benchmarks/results/store-precision-<survey>-<date>.json`` and ``.md``.
"""

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lensfind.bench.report import fresh_stem
from lensfind.engine.config import ScanConfig, ScoreConfig
from lensfind.engine.rescore import run_score
from lensfind.engine.scan import run_scan
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.runtime.shipped import resolve_model
from lensfind.surveys import get_survey


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _scores(run_dir: Path) -> dict[int, float]:
    t = pq.read_table(run_dir / "scores", columns=["object_id", "status", "score"])
    ok = np.asarray(t["status"].to_pylist()) == "scored"
    return dict(zip(t["object_id"].to_numpy()[ok].tolist(), t["score"].to_numpy()[ok].tolist(),
                    strict=True))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a survey data directory")
    ap.add_argument("--survey", default="des_y3")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    spec = get_survey(args.survey)
    sigma = np.array([b.sky_sigma_counts for b in spec.bands], dtype=np.float64)
    card = resolve_model(None, spec.name)
    with tempfile.TemporaryDirectory(prefix="lensfind-precision-") as tmp:
        runs = {}
        for dtype in ("float32", "float16"):
            cfg = ScanConfig(survey=spec.name, data_dir=args.data, out=Path(tmp) / dtype,
                             workers=args.workers, inject_rate=0.0, store_dtype=dtype,
                             quiet=True)  # fmt: skip
            runs[dtype] = run_scan(cfg)
        s32, s16 = (runs[d].run_dir / STORE_NAME for d in ("float32", "float16"))
        err_sigma, rel, n_pix = [], [], 0
        for shard in list_shards(s32):
            ids32, a = read_shard_cutouts(s32, shard)
            ids16, b = read_shard_cutouts(s16, shard)
            assert np.array_equal(ids32, ids16), shard
            d = (b.astype(np.float64) - a) / sigma.reshape(1, -1, 1, 1)
            err_sigma.append(np.abs(d).ravel())
            big = np.abs(a) > 3 * sigma.reshape(1, -1, 1, 1)
            rel.append((np.abs(b - a)[big] / np.abs(a)[big]).ravel())
            n_pix += a.size
        e, r = np.concatenate(err_sigma), np.concatenate(rel)
        rescored = run_score(ScoreConfig(cutouts=s16, model=str(card.directory),
                                         out=Path(tmp) / "rescore", workers=args.workers,
                                         quiet=True))  # fmt: skip
        scan, again = _scores(runs["float32"].run_dir), _scores(rescored.run_dir)
        common = sorted(scan.keys() & again.keys())
        ds = np.abs(np.array([again[k] - scan[k] for k in common]))
        above = np.array([scan[k] >= card.threshold for k in common])
        above16 = np.array([again[k] >= card.threshold for k in common])
        result = {
            "benchmark": "store-precision",
            "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "survey": spec.name,
            "data_dir": str(args.data),
            "model": card.name,
            "model_sha256": card.sha256,
            "n_cutouts": len(common),
            "n_pixels": int(n_pix),
            "pixel_error_sky_sigma": {
                "max": float(e.max()),
                "p99_9": float(np.quantile(e, 0.999)),
                "rms": float(np.sqrt(np.mean(e**2))),
            },
            "pixel_relative_error_above_3_sigma": {
                "max": float(r.max()),
                "median": float(np.median(r)),
            },
            "clipped_pixels": runs["float16"].summary["store_clipped_pixels"],
            "rescore_abs_score_change": {
                "max": float(ds.max()),
                "p99_9": float(np.quantile(ds, 0.999)),
                "median": float(np.median(ds)),
            },
            "threshold": card.threshold,
            "threshold_crossings": int((above != above16).sum()),
            "candidates_float32_scan": int(above.sum()),
            "store_bytes": {"float32": _size(s32), "float16": _size(s16)},
        }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = fresh_stem(args.results / f"store-precision-{spec.name}-{result['date_utc'][:10]}")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    p, s = result["pixel_error_sky_sigma"], result["rescore_abs_score_change"]
    md = "\n".join([
        f"# float16 cutout store precision ({spec.name}, {result['date_utc'][:10]})", "",
        f"{result['n_cutouts']} cutouts, {result['n_pixels']:,} pixels; "
        "`python benchmarks/store_precision.py --data DIR`.", "",
        "| what | value |", "| --- | --- |",
        f"| pixel error, max / 99.9% / rms | {p['max']:.2e} / {p['p99_9']:.2e} / {p['rms']:.2e} "
        "sky sigma |",
        f"| relative error of pixels above 3 sigma, max / median | "
        f"{result['pixel_relative_error_above_3_sigma']['max']:.2e} / "
        f"{result['pixel_relative_error_above_3_sigma']['median']:.2e} |",
        f"| pixels clipped | {result['clipped_pixels']} |",
        f"| score change on re-scoring, max / 99.9% / median | {s['max']:.2e} / "
        f"{s['p99_9']:.2e} / {s['median']:.2e} |",
        f"| objects crossing the threshold {card.threshold:g} | "
        f"{result['threshold_crossings']} of {result['candidates_float32_scan']} candidates |",
        f"| store size float32 / float16 | {result['store_bytes']['float32'] / 1e6:.1f} MB / "
        f"{result['store_bytes']['float16'] / 1e6:.1f} MB |",
    ])  # fmt: skip
    stem.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
