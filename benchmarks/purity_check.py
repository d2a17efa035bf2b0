"""Check a scan's expected purity against the truth of a synthetic region.

``engine scan`` reports, per threshold, the expected number of true lenses
among the candidates from the calibrated scores and from the selection
function (``summary.json``, ``expected_purity``). On a synthetic region the
truth is known (``truth.parquet``), so the estimates can be compared with the
real counts. Run from the repository root, with the region's real lens
fraction as the prior::

    engine scan --survey des_y3 --out work/scan-default
    engine scan --survey des_y3 --out work/scan-default --resume --prior-lens-rate 0.056
    python benchmarks/purity_check.py --run work/scan-default

(the second command only re-finalises the committed run with the new prior).
Writes ``benchmarks/results/purity-<survey>-<date>.json`` and ``.md``.
"""

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lensfind.engine.datadir import default_region
from lensfind.simulation.region import TRUTH_NAME
from lensfind.surveys import get_survey


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished scan's run directory")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    summary = json.loads((args.run / "summary.json").read_text())
    data_dir = (
        default_region(get_survey(summary["survey"]), quiet=True)
        if summary.get("embedded_default")
        else Path(summary["data_dir"])
    )
    truth = pq.read_table(data_dir / TRUTH_NAME, columns=["object_id", "is_lens"])
    lenses = truth["object_id"].to_numpy()[truth["is_lens"].to_numpy(zero_copy_only=False)]
    scores = pq.read_table(args.run / "scores")
    scored = scores.filter(pc.equal(scores["status"], "scored"))
    cand = pq.read_table(args.run / "candidates.parquet")
    ids, sc = cand["object_id"].to_numpy(), cand["score"].to_numpy()
    is_lens = np.isin(ids, lenses)
    p = summary["expected_purity"]
    rows = []
    for r in p["thresholds"]:
        sel = sc >= r["threshold"]
        true = int(is_lens[sel].sum())
        rows.append({**r, "true_lenses": true,
                     "true_purity": round(true / sel.sum(), 6) if sel.any() else None})  # fmt: skip
    found = np.cumsum(is_lens[np.argsort(-sc, kind="stable")])
    inspect = {n: (int(np.searchsorted(found, int(n))) + 1 if found[-1] >= int(n) else None)
               for n in p["inspect_to_find"]}  # fmt: skip
    result = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run": str(args.run), "survey": summary["survey"], "model_sha256": summary["model_sha256"],
        "n_scored": summary["n_scored"],
        "true_lens_rate": round(float(np.isin(scored["object_id"].to_numpy(), lenses).mean()), 6),
        "prior_lens_rate": p["prior_lens_rate"], "calibrated_scores": p["calibrated_scores"],
        "thresholds": rows, "inspect_to_find": {"expected": p["inspect_to_find"],
                                                "true": inspect},
    }  # fmt: skip
    stem = f"purity-{summary['survey']}-{result['date_utc'][:10]}"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Expected vs true lenses among the candidates ({summary['survey']}, {result['n_scored']} "
        f"scored, true lens rate {result['true_lens_rate']}, prior {p['prior_lens_rate']})",
        "",
        "| threshold | candidates | expected (calibrated scores) | expected (selection "
        "function) | true | expected purity | true purity |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['threshold']} | {r['n_candidates']} | {r['expected_true_lenses']:.1f} | "
            f"{r.get('expected_true_lenses_selection', float('nan')):.1f} | {r['true_lenses']} | "
            f"{r['expected_purity']} | {r['true_purity']} |"
        )
    lines += ["", "Candidates to inspect, best first, to find n lenses: "
              + ", ".join(f"n = {n}: expected {p['inspect_to_find'][n]}, true {inspect[n]}"
                          for n in inspect)]  # fmt: skip
    (args.results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
