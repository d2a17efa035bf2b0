"""What every run (``engine scan``, ``engine score``) shares: the run directory,
dispatching shards with metrics, and the final candidates and summary."""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from lensfind import __version__
from lensfind.catalogue.candidate_files import CandidateProvenance, write_candidates
from lensfind.catalogue.known_lenses import add_known_lens_columns
from lensfind.catalogue.purity import DEFAULT_PRIOR_LENS_RATE, expected_purity, ranked_posterior
from lensfind.engine.candidates import ScoreTally, rank_candidates, tally_scores
from lensfind.engine.cluster import DEFAULT_WORKERS, executor_kind, local_gpus
from lensfind.engine.config import RunConfig
from lensfind.engine.dispatch import Dispatcher, quarantined_shards
from lensfind.engine.manifest import Manifest
from lensfind.engine.metrics import ScanMetrics
from lensfind.engine.plan import PLAN_NAME, Plan, Shard
from lensfind.engine.scoring import warm_up
from lensfind.engine.shard import ShardResult
from lensfind.errors import ConfigError, ResumeError
from lensfind.parquet_files import read_parquet
from lensfind.probes.selection import INJECTIONS_NAME
from lensfind.run_dir_checks import check_run_dir, reports_storage_errors
from lensfind.runtime.card import ModelCard

SUMMARY_NAME = "summary.json"
#: The model a run scores with: sha256 and score calibration (checked on resume).
MODEL_NAME = "model.json"
PURITY_PNG = "expected_purity.png"
EXIT_OK = 0
EXIT_WITH_FAILURES = 3  # the run completed, but some objects ended "failed"
EXIT_WITH_QUARANTINE = 4  # the run completed, but some shards were quarantined
log = logging.getLogger("lensfind.run")
R = TypeVar("R", bound=RunConfig)


@dataclass(frozen=True)
class ScanResult:
    """A finished run: its directory, summary, and final metric values."""

    run_dir: Path
    summary: dict[str, Any]
    metrics: ScanMetrics

    @property
    def exit_code(self) -> int:
        if self.summary["n_shards_quarantined"]:
            return EXIT_WITH_QUARANTINE
        return EXIT_OK if self.summary["n_failed"] == 0 else EXIT_WITH_FAILURES


def default_run_dir(label: str) -> Path:
    return Path("runs") / f"{label}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"


def model_identity(card: ModelCard) -> dict[str, Any]:
    """What fixes a run's scores besides the inputs: the ONNX sha256 and the calibration."""
    cal = card.calibration
    return {"model_sha256": card.sha256, "calibration": None if cal is None else cal.summary()}


def prepare_run_dir(run_dir: Path, plan: Plan, card: ModelCard, resume: bool) -> None:
    """Write the plan of a new run, or check that a resumed run has the same inputs."""
    plan_file = run_dir / PLAN_NAME
    model_sha = card.sha256
    identity = model_identity(card)
    if plan_file.exists():
        if not resume:
            raise ConfigError(f"{run_dir}: already holds a run; use --resume or another --out")
        old = Plan.read(plan_file)
        if old.fingerprint != plan.fingerprint:
            raise ResumeError(
                f"{run_dir}: inputs changed since the run started: the catalogue, a tile file's "
                "content or an option that changes what shards store (--shard-size, --inject-*, "
                f"--store-*); fingerprint {old.fingerprint[:12]} -> {plan.fingerprint[:12]}"
            )
        for entry in Manifest(run_dir).committed().values():
            if entry["model_sha256"] != model_sha:
                raise ResumeError(
                    f"{run_dir}: shard {entry['shard_id']} was scored with model "
                    f"{entry['model_sha256'][:12]}, not {model_sha[:12]}"
                )
        model_file = run_dir / MODEL_NAME
        if model_file.is_file() and json.loads(model_file.read_text()) != identity:
            raise ResumeError(
                f"{run_dir}: the model's score calibration changed since the run started "
                f"(see {MODEL_NAME})"
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MODEL_NAME).write_text(json.dumps(identity, indent=2))
    tmp = run_dir / f".{PLAN_NAME}.tmp"
    plan.write(tmp)
    tmp.replace(plan_file)


def scores_lens_fraction(card: ModelCard) -> tuple[float, bool]:
    """Lens fraction the card's scores are probabilities for, and whether they are calibrated.

    A calibrated card's scores are honest on its calibration set; without a
    calibration the raw network output is taken as a probability at the
    training set's lens fraction (0.5 if the card does not say).
    """
    cal = card.calibration
    if cal is not None:
        return cal.lens_fraction, True
    population = card.raw.get("training", {}).get("train_set", {}).get("population", {})
    return float(population.get("lens_fraction", 0.5)), False


def candidate_purity(
    run_dir: Path,
    candidates: Any,
    n_scored: int,
    threshold: float,
    card: ModelCard,
    prior_lens_rate: float,
) -> dict[str, Any]:
    """:func:`~lensfind.catalogue.purity.expected_purity` of the run's candidates.

    Uses the run's ``injections.parquet`` (written by the scan's selection
    function) for the selection-function estimate when there is one, and plots
    both to ``expected_purity.png``.
    """
    from lensfind.catalogue.plots import plot_purity  # matplotlib: only when a run ends

    lens_fraction, calibrated = scores_lens_fraction(card)
    inj_file = run_dir / INJECTIONS_NAME
    injected = None
    if inj_file.is_file():  # the injections the selection function counts
        inj = read_parquet(inj_file, columns=["score", "in_selection"])
        used = inj["in_selection"].to_numpy(zero_copy_only=False).astype(bool)
        injected = inj["score"].to_numpy(zero_copy_only=False)[used]
    scores = candidates["score"].to_numpy(zero_copy_only=False)
    purity = expected_purity(scores, n_scored, threshold, prior_lens_rate, lens_fraction, injected)
    _, by_rank = ranked_posterior(scores, prior_lens_rate, lens_fraction)
    plot_purity(purity, by_rank, run_dir / PURITY_PNG)
    return {"calibrated_scores": calibrated, **purity, "file": PURITY_PNG}


def with_prior(config: R, region_lens_fraction: float | None = None) -> tuple[R, str]:
    """``config`` with its prior lens rate resolved, and where the rate came from.

    ``--prior-lens-rate`` wins; else a synthetic region's planted lens fraction;
    else :data:`~lensfind.catalogue.purity.DEFAULT_PRIOR_LENS_RATE` (the sky's).
    """
    if config.prior_lens_rate is not None:
        return config, "--prior-lens-rate"
    if region_lens_fraction:
        return replace(config, prior_lens_rate=region_lens_fraction), "the region's planted lenses"
    return replace(config, prior_lens_rate=DEFAULT_PRIOR_LENS_RATE), "the sky (Jacobs+22)"


@reports_storage_errors(lambda run_dir: len(Manifest(run_dir).committed()))
def execute(
    config: RunConfig,
    plan: Plan,
    run_dir: Path,
    card: ModelCard,
    threshold: float,
    fn: Callable[[Any], ShardResult],
    make_task: Callable[[Shard], Any],
    lens_ids: set[int],
    extra_summary: dict[str, Any],
    start: float,
    finalise: Callable[[ScoreTally], dict[str, Any]] | None = None,
    warm_up_options: dict[str, Any] | None = None,
) -> ScanResult:
    """Run the plan's pending shards, then write candidates and ``summary.json``.

    ``finalise(tally)``, if given, runs after the candidates are written and
    returns more summary entries (the scan's selection function).
    ``warm_up_options`` go to every worker's :func:`~lensfind.engine.scoring.warm_up`
    besides the model (a scan's store precision and shard size).
    """
    metrics = ScanMetrics(plan.survey, card.sha256)
    if config.metrics_port is not None:  # bound first: a busy port leaves no run directory
        port = metrics.serve(config.metrics_port, config.metrics_host)
        log.info("metrics at http://%s:%d/metrics", config.metrics_host, port)
    try:
        check_run_dir(run_dir)
        prepare_run_dir(run_dir, plan, card, config.resume)
    except BaseException:
        metrics.close()
        raise
    manifest = Manifest(run_dir)
    done = manifest.committed()
    pending = [s for s in plan.shards if s.shard_id not in done]
    n_pending = sum(len(s.rows) for s in pending)
    metrics.objects_planned.set(n_pending)
    dispatcher = Dispatcher(
        run_dir, plan.fingerprint, card.sha256, threshold, metrics,
        lens_ids=lens_ids, shard_attempts=config.shard_attempts,
    )  # fmt: skip
    n_done = sum(len(s.rows) for s in plan.shards if s.shard_id in done)
    try:
        with tqdm(total=plan.n_objects, initial=n_done, desc=f"{plan.survey}", unit="obj",
                  disable=config.quiet, smoothing=0.1) as bar:  # fmt: skip
            run_start = time.perf_counter()
            tasks = (make_task(s) for s in pending)  # made as slots free up
            gpus = local_gpus(config.provider, config.workers, config.scheduler)
            warm = partial(warm_up, str(card.directory), card.sha256, config.provider,
                           config.batch_size, **(warm_up_options or {}))  # fmt: skip
            dispatcher.run(fn, tasks, config.workers, config.scheduler, bar, total=len(pending),
                           gpus=gpus, warm_up=warm if pending else None,
                           n_objects=n_pending)  # fmt: skip
            run_seconds = time.perf_counter() - run_start
    finally:
        metrics.close()

    committed = manifest.committed()
    shard_ids = [s.shard_id for s in plan.shards]
    missing = [s for s in shard_ids if s not in committed]
    if missing:  # cannot happen unless the manifest was edited by hand
        raise ResumeError(f"{run_dir}: shards {missing[:3]} never committed")
    tally = tally_scores(run_dir, shard_ids, threshold)
    candidates = rank_candidates(tally, card.sha256)
    candidates = add_known_lens_columns(
        candidates, config.known_lens_radius_arcsec, config.known_lenses
    )
    prior = config.prior_lens_rate
    assert prior is not None, "resolved by with_prior"
    prior_source = extra_summary.get("prior_lens_rate_source", "--prior-lens-rate")
    write_candidates(run_dir, candidates, CandidateProvenance(
        card.name, card.sha256, threshold, plan.survey, run_dir.name, prior, prior_source,
        __version__))  # fmt: skip
    finalised = finalise(tally) if finalise is not None else {}
    counts = tally.status_counts()
    scored_now = sum(committed[s.shard_id]["counts"]["scored"] for s in pending)
    summary: dict[str, Any] = {
        "survey": plan.survey,
        "n_objects": plan.n_objects,
        "n_scored": counts["scored"],
        "n_skipped": counts["skipped"],
        "n_failed": counts["failed"],
        "n_candidates": candidates.num_rows,
        "threshold": threshold,
        "data_dir": plan.data_dir,
        **extra_summary,
        "model": card.name,
        "model_sha256": card.sha256,
        "n_shards": len(plan.shards),
        "n_shards_this_run": len(pending),
        "n_shards_quarantined": len(quarantined_shards(run_dir) & set(shard_ids)),
        "elapsed_s": round(time.perf_counter() - start, 3),
        "scan_s": round(run_seconds, 3),
        "dispatch_s": round(dispatcher.dispatch_seconds, 3),
        "driver_cpu_s": round(dispatcher.driver_cpu_seconds, 3),
        "cutouts_per_s": round(scored_now / run_seconds, 1) if pending and run_seconds else None,
        "stage_seconds": {k: round(v, 3) for k, v in sorted(dispatcher.stage_seconds.items())},
        "skip_reasons": tally.reason_counts("skipped"),
        "fail_reasons": tally.reason_counts("failed"),
        "store_clipped_pixels": sum(e.get("store_clipped_pixels", 0) for e in committed.values()),
        **finalised,
        "n_known_lenses_matched": int(
            (candidates["known_lens_name"].to_numpy(zero_copy_only=False) != "").sum()
        ),
        "known_lens_radius_arcsec": config.known_lens_radius_arcsec,
        "expected_purity": candidate_purity(
            run_dir, candidates, counts["scored"], threshold, card, prior
        ),
        "workers": config.scheduler
        or (DEFAULT_WORKERS if config.workers is None else config.workers),
        "executor": executor_kind(config.workers, config.scheduler, n_pending, gpus),
        "lensfind_version": __version__,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    assert sum(counts.values()) == plan.n_objects, "every object ends in exactly one state"
    (run_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    if config.pushgateway:
        try:
            metrics.push(config.pushgateway, run_dir.name)
        except OSError as exc:  # the run succeeded; a monitoring hiccup must not fail it
            log.warning("could not push metrics to %s: %s", config.pushgateway, exc)
    return ScanResult(run_dir, summary, metrics)
