"""The scan's injections: lensed copies of chosen host stamps, scored beside the originals.

The copies measure the scan's selection function: they are scored by the same
session in the same shard, written to ``injections/<shard_id>.parquet`` and
never enter the candidates.
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.engine.config import ScanConfig
from lensfind.engine.scoring import score_batches
from lensfind.runtime.card import ModelCard
from lensfind.simulation.hosts import (
    classify_hosts,
    default_hosts,
    host_columns,
    light_shape,
    load_hosts,
)
from lensfind.simulation.inject import (
    InjectedBatch,
    InjectionPlan,
    batch_seed,
    choose_hosts,
    inject_lenses,
    injection_population,
    plan_for_catalogue,
)
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.population_file import (
    load_population,
    population_from_dict,
)
from lensfind.simulation.simulate import reference_band
from lensfind.surveys.spec import SurveySpec

if TYPE_CHECKING:
    from lensfind.engine.shard import ShardTask

INJECTIONS_DIR = "injections"


def plan_injections(
    config: ScanConfig, card: ModelCard, catalog: pa.Table, spec: SurveySpec
) -> tuple[InjectionPlan | None, dict[str, Any]]:
    """The scan's :class:`InjectionPlan` (None: no injections) and its summary entries.

    The population is the one the model was trained on (its card's
    ``training.train_set.population``; the default population for cards
    without one), with ``config.inject_population`` over it; the hosts are the
    survey's default deflector cuts (:func:`~lensfind.simulation.hosts.default_hosts`)
    with ``config.inject_hosts`` over them (:func:`~lensfind.simulation.inject.plan_for_catalogue`).
    """
    trained = card.raw.get("training", {}).get("train_set", {}).get("population")
    population = population_from_dict(trained) if trained else PopulationConfig()
    if config.inject_population is not None:
        population = load_population(config.inject_population, population)
    population = injection_population(population)
    hosts = default_hosts(spec.name)
    if config.inject_hosts is not None:
        hosts = load_hosts(config.inject_hosts, hosts)
    plan, summary = plan_for_catalogue(
        population,
        hosts,
        config.inject_rate,
        config.inject_min,
        config.inject_seed,
        host_columns(catalog),
        catalog.num_rows,
    )
    summary["population_source"] = "model card" if trained else "lensfind default"
    return plan, summary


def inject_and_score(
    task: "ShardTask",
    spec: SurveySpec,
    stamps: np.ndarray,
    rows: np.ndarray,
    ids: np.ndarray,
    tile_psf: list[float | None],
    status: np.ndarray,
    reason: np.ndarray,
    score: np.ndarray,
    seconds: dict[str, float],
) -> list[int]:
    """Score the shard's stamps, and its injected-lens copies if it has hosts.

    Hosts are the eligible objects (:class:`InjectionPlan`) chosen by id and
    seed. The copies are made first (scoring normalises ``stamps`` in place),
    scored by the same session right after, and written to ``injections/``
    with the score of their host (a host above the threshold is a candidate
    itself: the run leaves its copies out). Returns the size of each model
    call; adds ``inject`` and ``score`` to ``seconds``.
    """
    plan = task.injection
    hosts = np.zeros(len(ids), dtype=bool)
    if plan is not None:
        objects = task.objects if len(rows) == task.objects.num_rows else task.objects.take(rows)
        classes = classify_hosts(host_columns(objects), plan.hosts, len(rows))
        hosts = choose_hosts(ids, plan.rate, plan.seed) & classes.eligible
    if hosts.any():
        t0 = time.perf_counter()
        injected = _inject(task, spec, stamps, hosts, ids, tile_psf[reference_band(spec)])
        injected.truth["host_class"] = np.repeat(classes.host_class[hosts], plan.copies)
        seconds["inject"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    sizes = score_batches(task, stamps, rows, status, reason, score)
    if hosts.any():
        m = len(injected.images)
        inj_status = np.full(m, "failed", dtype=object)
        inj_reason = np.full(m, "", dtype=object)
        inj_score = np.full(m, np.nan, dtype=np.float32)
        sizes += score_batches(task, injected.images, np.arange(m), inj_status, inj_reason,
                               inj_score)  # fmt: skip
    seconds["score"] = time.perf_counter() - t1
    if hosts.any():
        injected.truth["host_score"] = np.repeat(score[rows[hosts]], plan.copies)
        _write_injections(task, injected.truth, inj_status, inj_reason, inj_score)
    return sizes


def _inject(
    task: "ShardTask",
    spec: SurveySpec,
    stamps: np.ndarray,
    hosts: np.ndarray,
    ids: np.ndarray,
    psf_fwhm_arcsec: float | None,
) -> InjectedBatch:
    """Injected-lens copies of the chosen hosts, with their truth, host ids and shapes.

    Each host's axis ratio and angle are measured on its stamp (reference band,
    3-sigma sky isophote) and the injected mass follows them.
    """
    plan = task.injection
    assert plan is not None
    ref = reference_band(spec)
    k = plan.copies
    host_ids = np.repeat(ids[hosts], k)
    q, phi = light_shape(stamps[hosts, ref], sky_sigma=spec.bands[ref].sky_sigma_counts)
    q, phi = np.repeat(q, k), np.repeat(phi, k)
    mag_col = f"mag_{spec.band_names[ref]}"
    mags = None
    if mag_col in task.objects.column_names:
        by_id = dict(
            zip(task.objects.column("object_id").to_pylist(),
                task.objects.column(mag_col).to_pylist(), strict=True)
        )  # fmt: skip
        mags = np.array([by_id[int(i)] for i in host_ids], dtype=float)
    host_stamps = stamps[hosts] if k == 1 else np.repeat(stamps[hosts], k, axis=0)
    batch = inject_lenses(spec, host_stamps, batch_seed(plan.seed, task.shard_id),
                          psf_fwhm_arcsec, mags, plan.population, (q, phi))  # fmt: skip
    batch.truth["object_id"] = host_ids
    batch.truth["copy"] = np.tile(np.arange(k), int(hosts.sum()))
    batch.truth["host_q"], batch.truth["host_phi_rad"] = q, phi
    batch.truth["psf_fwhm_tile_arcsec"] = np.full(len(host_ids), psf_fwhm_arcsec or np.nan)
    return batch


def _write_injections(
    task: "ShardTask",
    truth: dict[str, np.ndarray],
    status: np.ndarray,
    reason: np.ndarray,
    score: np.ndarray,
) -> None:
    """Write ``injections/<shard_id>.parquet`` atomically (before the shard's scores)."""
    table = pa.table({
        "object_id": pa.array(truth["object_id"]),
        "tile": pa.array([task.tile] * len(score), type=pa.string()),
        "status": pa.array(status.tolist(), type=pa.string()),
        "reason": pa.array(reason.tolist(), type=pa.string()),
        "score": pa.array(score, type=pa.float32()),
        **{k: pa.array(np.asarray(v).tolist() if np.asarray(v).dtype.kind in "OUS"
                       else np.asarray(v, dtype=float))
           for k, v in truth.items() if k != "object_id"},
    })  # fmt: skip
    out_dir = Path(task.run_dir) / INJECTIONS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{task.shard_id}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out_dir / f"{task.shard_id}.parquet")
