"""What the ``engine`` subcommands share: run flags, and printing a run's outcome."""

import argparse
import sys
from pathlib import Path
from typing import Any

from lensfind.export.scorer import PROVIDER_CHOICES


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~lensfind.engine.config.RunConfig` fields from the shared run flags."""
    return {
        "model": args.model, "out": args.out, "workers": args.workers,
        "scheduler": args.scheduler, "batch_size": args.batch_size,
        "threshold": args.threshold, "resume": args.resume or None,
        "quiet": args.quiet or None, "metrics_port": args.metrics_port,
        "metrics_host": args.metrics_host, "pushgateway": args.pushgateway,
        "shard_attempts": args.shard_attempts, "provider": args.provider,
        "known_lenses": args.known_lenses,
        "known_lens_radius_arcsec": args.known_lens_radius,
        "prior_lens_rate": args.prior_lens_rate,
    }  # fmt: skip


def report(result: Any) -> int:
    """Print where a run went and what it found; return its exit status."""
    s = result.summary
    skipped = ", ".join(f"{k} {v}" for k, v in s["skip_reasons"].items())
    failed = ", ".join(f"{k} {v}" for k, v in s["fail_reasons"].items())
    print(f"run directory: {result.run_dir}")
    print(
        f"objects {s['n_objects']}: scored {s['n_scored']}, skipped {s['n_skipped']}"
        f"{f' ({skipped})' if skipped else ''}, failed {s['n_failed']}"
        f"{f' ({failed})' if failed else ''}"
    )
    print(
        f"candidates (score >= {s['threshold']}): {s['n_candidates']} -> "
        f"{result.run_dir / 'candidates.parquet'}"
    )
    sel = s.get("selection_function") or {}
    if sel.get("n_injected"):
        print(
            f"selection function: {sel['n_injected_scored']} injected lenses, "
            f"{sel['completeness']:.1%} recovered -> {result.run_dir / sel['file']}"
        )
    print(
        f'known lenses within {s["known_lens_radius_arcsec"]:g}": '
        f"{s['n_known_lenses_matched']} of the candidates"
    )
    print(purity_line(s["expected_purity"]))
    rate = f", {s['cutouts_per_s']} cutouts/s" if s["cutouts_per_s"] else ""
    print(f"time {s['elapsed_s']:.1f} s{rate}; model {s['model']} ({s['model_sha256'][:12]})")
    if s["n_shards_quarantined"]:
        print(
            f"warning: {s['n_shards_quarantined']} shard(s) quarantined; see "
            f"{result.run_dir / 'quarantine.jsonl'}",
            file=sys.stderr,
        )
    if s["n_failed"]:
        print(
            f"warning: {s['n_failed']} object(s) failed; reasons in the scores files",
            file=sys.stderr,
        )
    return int(result.exit_code)


def purity_line(p: dict[str, Any]) -> str:
    """One line on the candidates' expected purity at the run's threshold."""
    row = p["thresholds"][0]
    purity = row["expected_purity"]
    how = "calibrated" if p["calibrated_scores"] else "uncalibrated"
    found = ", ".join(f"{k} for {n}" for n, k in p["inspect_to_find"].items() if k is not None)
    return (
        f"expected true lenses at prior rate {p['prior_lens_rate']:g} ({how} scores): "
        f"{row['expected_true_lenses']:.1f} of {row['n_candidates']}"
        + (f" (purity {purity:.1%})" if purity is not None else "")
        + (f"; candidates to inspect: {found}" if found else "")
        + (
            ""
            if p["prior_consistent"]
            else f"; more than the {p['expected_lenses_scanned']:.1f} the prior allows in the "
            "whole scan: raise --prior-lens-rate"
        )
    )


def add_run_arguments(s: argparse.ArgumentParser, model: bool = True) -> None:
    """Flags shared by ``scan`` and ``score`` (and ``probe``, which has its own ``--model``)."""
    if model:
        s.add_argument("--model", help="shipped model name or model directory")
    s.add_argument("--out", type=Path, help="run directory (default: runs/<name>-<time>)")
    s.add_argument("--workers", type=int, help="local Dask worker processes (0: in-process)")
    s.add_argument("--scheduler", help="address of an existing Dask scheduler")
    s.add_argument("--batch-size", type=int, help="cutouts per model call")
    s.add_argument("--threshold", type=float, help="candidate threshold (default: model card)")
    s.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    s.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    s.add_argument("--metrics-host", help="metrics bind address (default 127.0.0.1)")
    s.add_argument("--pushgateway", help="push final metrics to this Pushgateway URL")
    s.add_argument("--shard-attempts", type=int, help="crashes before a shard is quarantined")
    s.add_argument(
        "--known-lenses",
        type=Path,
        help="known-lens catalogue to cross-match candidates with (lenscat-format CSV; "
        "default: the bundled lenscat catalogue)",
    )
    s.add_argument(
        "--known-lens-radius", type=float, help='cross-match radius, arcsec (default 3")'
    )
    s.add_argument(
        "--prior-lens-rate",
        type=float,
        help="fraction of galaxies expected to be lenses, for the candidates' expected "
        "purity (default 1e-3)",
    )
    s.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        help="ONNX Runtime execution provider (default auto: the best available of tensorrt, "
        "cuda, cpu; a named one that is missing is an error)",
    )


def add_inject_arguments(s: argparse.ArgumentParser, default: str) -> None:
    s.add_argument(
        "--inject-rate",
        type=float,
        help=f"fraction of galaxies also scored with an injected lens, for the selection "
        f"function (default {default}; 0 turns it off)",
    )
    s.add_argument("--inject-seed", type=int, help="seed of the injections (default 0)")
