"""``engine scan``: plan -> shards on Dask -> commit -> candidates + summary."""

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from lensfind import __version__
from lensfind.engine.candidates import read_scores, select_candidates, write_candidates
from lensfind.engine.catalog import read_catalog
from lensfind.engine.config import ScanConfig
from lensfind.engine.datadir import catalog_path, default_region
from lensfind.engine.dispatch import Dispatcher, quarantined_shards
from lensfind.engine.manifest import Manifest
from lensfind.engine.metrics import ScanMetrics
from lensfind.engine.plan import PLAN_NAME, Plan, make_plan
from lensfind.engine.shard import STATUSES, ShardTask, reason_class
from lensfind.errors import ConfigError, ResumeError
from lensfind.models import resolve_model
from lensfind.simulation.region import TRUTH_NAME
from lensfind.surveys.registry import get_survey

SUMMARY_NAME = "summary.json"
EXIT_OK = 0
EXIT_WITH_FAILURES = 3  # the scan completed, but some objects ended "failed"
EXIT_WITH_QUARANTINE = 4  # the scan completed, but some shards were quarantined
log = logging.getLogger("lensfind.scan")


@dataclass(frozen=True)
class ScanResult:
    """A finished scan: its run directory, summary, and final metric values."""

    run_dir: Path
    summary: dict[str, Any]
    metrics: ScanMetrics

    @property
    def exit_code(self) -> int:
        if self.summary["n_shards_quarantined"]:
            return EXIT_WITH_QUARANTINE
        return EXIT_OK if self.summary["n_failed"] == 0 else EXIT_WITH_FAILURES


def default_run_dir(survey: str) -> Path:
    return Path("runs") / f"{survey}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"


def _prepare_run_dir(run_dir: Path, plan: Plan, model_sha: str, resume: bool) -> None:
    plan_file = run_dir / PLAN_NAME
    if plan_file.exists():
        if not resume:
            raise ConfigError(f"{run_dir}: already holds a scan; use --resume or another --out")
        old = Plan.read(plan_file)
        if old.fingerprint != plan.fingerprint:
            raise ResumeError(
                f"{run_dir}: inputs changed since the scan started "
                f"(fingerprint {old.fingerprint[:12]} -> {plan.fingerprint[:12]})"
            )
        for entry in Manifest(run_dir).committed().values():
            if entry["model_sha256"] != model_sha:
                raise ResumeError(
                    f"{run_dir}: shard {entry['shard_id']} was scored with model "
                    f"{entry['model_sha256'][:12]}, not {model_sha[:12]}"
                )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{PLAN_NAME}.tmp"
    plan.write(tmp)
    tmp.replace(plan_file)


def run_scan(config: ScanConfig) -> ScanResult:
    """Scan a survey region and write the run directory (see the design's Formats)."""
    start = time.perf_counter()
    spec = get_survey(config.survey)
    card = resolve_model(config.model, spec.name)
    if card.bands != spec.band_names or card.input_shape[1] != spec.cutout_px:
        raise ConfigError(
            f"model {card.name} expects bands {card.bands} at "
            f"{card.input_shape[1]} px; survey {spec.name} gives "
            f"{spec.band_names} at {spec.cutout_px} px"
        )
    threshold = card.threshold if config.threshold is None else config.threshold
    data_dir = config.data_dir or default_region(spec, quiet=config.quiet)
    cat_file = catalog_path(data_dir)
    catalog = read_catalog(cat_file)
    plan = make_plan(catalog, cat_file, data_dir, spec, config.shard_size)
    run_dir = config.out or default_run_dir(spec.name)
    _prepare_run_dir(run_dir, plan, card.sha256, config.resume)
    manifest = Manifest(run_dir)
    done = manifest.committed()
    pending = [s for s in plan.shards if s.shard_id not in done]

    def task(shard: Any) -> ShardTask:
        return ShardTask(
            shard_id=shard.shard_id,
            tile=shard.tile,
            objects=catalog.take(list(shard.rows)),
            data_dir=str(data_dir),
            run_dir=str(run_dir),
            bands=spec.band_names,
            cutout_px=spec.cutout_px,
            model_dir=str(card.directory),
            model_sha256=card.sha256,
            batch_size=config.batch_size,
        )

    metrics = ScanMetrics(spec.name, card.sha256)
    metrics.objects_planned.set(sum(len(s.rows) for s in pending))
    if config.metrics_port is not None:
        port = metrics.serve(config.metrics_port, config.metrics_host)
        log.info("metrics at http://%s:%d/metrics", config.metrics_host, port)
    dispatcher = Dispatcher(
        run_dir,
        plan.fingerprint,
        card.sha256,
        threshold,
        metrics,
        lens_ids=_planted_lens_ids(data_dir),
        shard_attempts=config.shard_attempts,
    )
    n_done = sum(len(s.rows) for s in plan.shards if s.shard_id in done)
    try:
        with tqdm(
            total=plan.n_objects,
            initial=n_done,
            desc=f"scan {spec.name}",
            unit="obj",
            disable=config.quiet,
            smoothing=0.1,
        ) as bar:
            scan_start = time.perf_counter()
            dispatcher.run([task(s) for s in pending], config.workers, config.scheduler, bar)
            scan_seconds = time.perf_counter() - scan_start
    finally:
        metrics.close()
    stage_seconds = dispatcher.stage_seconds

    committed = manifest.committed()
    shard_ids = [s.shard_id for s in plan.shards]
    missing = [s for s in shard_ids if s not in committed]
    if missing:  # cannot happen unless the manifest was edited by hand
        raise ResumeError(f"{run_dir}: shards {missing[:3]} never committed")
    scores = read_scores(run_dir, shard_ids)
    candidates = select_candidates(scores, threshold, card.sha256)
    write_candidates(run_dir, candidates)
    status = scores["status"].to_numpy(zero_copy_only=False)
    counts = {s: int((status == s).sum()) for s in STATUSES}
    elapsed = time.perf_counter() - start
    summary: dict[str, Any] = {
        "survey": spec.name,
        "n_objects": plan.n_objects,
        "n_scored": counts["scored"],
        "n_skipped": counts["skipped"],
        "n_failed": counts["failed"],
        "n_candidates": candidates.num_rows,
        "threshold": threshold,
        "data_dir": str(data_dir),
        "embedded_default": config.data_dir is None,
        "model": card.name,
        "model_sha256": card.sha256,
        "n_shards": len(plan.shards),
        "n_shards_this_run": len(pending),
        "n_shards_quarantined": len(quarantined_shards(run_dir) & set(shard_ids)),
        "elapsed_s": round(elapsed, 3),
        "scan_s": round(scan_seconds, 3),
        "cutouts_per_s": round(
            sum(committed[s]["counts"]["scored"] for s in (x.shard_id for x in pending))
            / scan_seconds,
            1,
        )
        if pending and scan_seconds > 0
        else None,
        "stage_seconds": {k: round(v, 3) for k, v in sorted(stage_seconds.items())},
        "skip_reasons": _reason_counts(scores, "skipped"),
        "fail_reasons": _reason_counts(scores, "failed"),
        "workers": config.workers if config.scheduler is None else config.scheduler,
        "lensfind_version": __version__,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    assert sum(counts.values()) == plan.n_objects, "every object ends in exactly one state"
    (run_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    if config.pushgateway:
        try:
            metrics.push(config.pushgateway, run_dir.name)
        except OSError as exc:  # the scan succeeded; a monitoring hiccup must not fail it
            log.warning("could not push metrics to %s: %s", config.pushgateway, exc)
    return ScanResult(run_dir, summary, metrics)


def _planted_lens_ids(data_dir: Path) -> set[int]:
    """Object ids of the planted lenses of a synthetic region (empty without truth)."""
    path = data_dir / TRUTH_NAME
    if not path.is_file():
        return set()
    truth = pq.read_table(path, columns=["object_id", "is_lens"])
    ids = truth["object_id"].to_numpy()[truth["is_lens"].to_numpy(zero_copy_only=False)]
    return {int(i) for i in ids}


def _reason_counts(scores: Any, status: str) -> dict[str, int]:
    st = scores["status"].to_numpy(zero_copy_only=False)
    reasons = scores["reason"].to_numpy(zero_copy_only=False)[st == status]
    # group "masked: 12 NaN pixel(s) in band z" style reasons by their prefix
    keys = [reason_class(r) for r in reasons]
    uniq, cnt = np.unique(np.array(keys, dtype=str), return_counts=True)
    return {str(k): int(c) for k, c in zip(uniq, cnt, strict=True)}
