"""Plot a scan's key metrics from Prometheus's HTTP API into one PNG.

    python deploy/local/plot_metrics.py --prometheus http://127.0.0.1:9090 \
        --start 2026-11-23T17:00:00Z --end 2026-11-23T17:05:00Z --out scan-metrics.png

Panels: objects reaching each final state (cumulative), cutouts scored per
second, per-stage p95 shard latency, shards in flight and queued. Only the
standard library, numpy and matplotlib (``pip install matplotlib``) are used.
"""

import argparse
import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

PANELS = [
    ("Objects by final state", "sum by (status) (lensfind_objects_total)", "{status}", "objects"),
    ("Throughput", "sum(rate(lensfind_cutouts_scored_total[{w}]))", "scored", "cutouts / s"),
    (
        "Shard stage latency (p95)",
        "histogram_quantile(0.95, sum by (le, stage) "
        "(rate(lensfind_stage_duration_seconds_bucket[{w}])))",
        "{stage}",
        "seconds",
    ),
    ("Work in progress", "lensfind_shards_in_flight", "in flight", "shards"),
    ("Work in progress", "lensfind_shards_queued", "queued", "shards"),
]


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    """Run a PromQL range query; returns the ``result`` list."""
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{q}", timeout=30) as resp:
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {body}")
    return body["data"]["result"]


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090")
    ap.add_argument("--start", required=True, help="ISO time (UTC)")
    ap.add_argument("--end", required=True, help="ISO time (UTC)")
    ap.add_argument("--step", type=float, default=1.0, help="seconds")
    ap.add_argument("--rate-window", default="10s", help="window of rate() (>= 2 scrapes)")
    ap.add_argument("--title", default="lensfind scan")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start, end = _time(args.start), _time(args.end)
    titles = list(dict.fromkeys(p[0] for p in PANELS))
    ncols = 2
    nrows = (len(titles) + ncols - 1) // ncols
    fig, grid = plt.subplots(nrows, ncols, figsize=(10, 3.6 * nrows), squeeze=False)
    axes = grid.ravel()
    for title, expr, label, unit in PANELS:
        ax = axes[titles.index(title)]
        for series in query_range(
            args.prometheus, expr.format(w=args.rate_window), start, end, args.step
        ):
            t, v = np.array(series["values"], dtype=float).T
            ax.plot(t - start, v, label=label.format(**series["metric"]) or "(none)")
        ax.set_title(title)
        ax.set_xlabel("seconds since start")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
