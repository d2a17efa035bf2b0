"""``engine score``: re-score an existing cutout store with another model.

The 10^9-galaxy batch path: no FITS tiles, no cutting, only reading stored
cutouts and running the model. Sharded, resumable and monitored exactly like a
scan (one task per store shard, the same manifest, metrics and run directory).
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.engine.config import ScoreConfig
from lensfind.engine.plan import Plan, Shard
from lensfind.engine.run import ScanResult, default_run_dir, execute, with_prior
from lensfind.engine.scoring import check_model_session, check_provider, score_batches
from lensfind.engine.shard import ShardResult, release_memory, write_scores
from lensfind.engine.store import (
    COLUMNS,
    StoreError,
    list_shards,
    read_shard_cutouts,
    read_shard_info,
    store_fingerprint,
)
from lensfind.errors import ConfigError, ModelError
from lensfind.runtime.card import ModelCard
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE
from lensfind.runtime.shipped import resolve_model
from lensfind.zarr_checks import read_columns


@dataclass(frozen=True)
class RescoreTask:
    """One store shard to score (picklable)."""

    shard_id: str
    tile: str
    objects: pa.Table
    store: str
    run_dir: str
    model_dir: str
    model_sha256: str
    batch_size: int = DEFAULT_BATCH_SIZE
    provider: str = "auto"
    bands: tuple[str, ...] = ()  # the store's band order; the scorer reorders to the card's
    damage: str = ""  # why the shard's catalogue arrays cannot be read (its objects fail)


def process_rescore(task: RescoreTask) -> ShardResult:
    """Score one store shard and write ``scores/<shard_id>.parquet`` atomically."""
    t0 = time.perf_counter()
    n = task.objects.num_rows
    status = np.full(n, "failed", dtype=object)
    reason = np.full(n, "", dtype=object)
    score = np.full(n, np.nan, dtype=np.float32)
    sizes: list[int] = []
    images = np.empty((0,), dtype=np.float32)
    score_s, damaged = 0.0, []  # (start, stop, why) of damaged image chunks
    try:
        if task.damage:
            raise StoreError(task.damage)
        ids, images = read_shard_cutouts(Path(task.store), task.shard_id, damaged)
    except Exception as exc:  # a damaged shard file or catalogue: fail this shard's objects
        reason[:] = f"store unreadable: {task.store}/{task.shard_id}: {type(exc).__name__}: {exc}"
    else:
        expected = task.objects.column("object_id").to_numpy()
        if not np.array_equal(ids, expected):
            raise StoreError(f"{task.store}/{task.shard_id}: object_id changed since planning")
    read_s = time.perf_counter() - t0
    if images.ndim == 4:
        t1 = time.perf_counter()
        sizes = score_batches(task, images, np.arange(n), status, reason, score)
        score_s = time.perf_counter() - t1
    for a, b, why in damaged:  # a damaged image chunk fails only its cutouts
        status[a:b], reason[a:b], score[a:b] = "failed", f"store unreadable: {why}", np.nan
    t2 = time.perf_counter()
    result = write_scores(task, status, reason, score)
    result.seconds.update(read=read_s, score=score_s, write=time.perf_counter() - t2)
    result.batch_sizes = sizes
    result.bytes_read = int(images.nbytes)
    release_memory()
    return result


def plan_store(store: Path, survey: str) -> Plan:
    """One shard per store shard, from the shards' metadata alone.

    The plan holds each shard's id, tile and object count (its rows are a
    ``range``), never the objects themselves: those are read from the store
    when the shard's task is made, so the driver's memory does not grow with
    the number of cutouts.
    """
    shard_ids = list_shards(store)
    if not shard_ids:
        raise StoreError(f"{store}: no shards to score")
    shards = []
    for shard_id in shard_ids:
        n_shard, tile = read_shard_info(store, shard_id)
        shards.append(Shard(shard_id, tile, range(n_shard)))
    n = sum(len(s.rows) for s in shards)
    return Plan(survey=survey, bands=(), cutout_px=0, data_dir=str(store), n_objects=n,
                fingerprint=store_fingerprint(store, shard_ids), shards=tuple(shards))  # fmt: skip


def run_score(config: ScoreConfig) -> ScanResult:
    """Score every cutout of ``config.cutouts`` with ``config.model`` into a run directory."""
    start = time.perf_counter()
    assert config.cutouts is not None and config.model is not None  # ScoreConfig checks
    store = config.cutouts
    check_provider(config)
    config, prior_source = with_prior(config)
    card = resolve_model(config.model, survey="")
    threshold = card.threshold if config.threshold is None else config.threshold
    plan = plan_store(store, card.survey)
    bands = _store_bands(store, card)
    check_model_session(config, card, bands)  # exit 2
    run_dir = config.out or default_run_dir(f"score-{card.name}")

    def make_task(shard: Shard) -> RescoreTask:
        columns, damage = read_columns(store / shard.shard_id, len(shard.rows), COLUMNS)
        return RescoreTask(
            shard_id=shard.shard_id, tile=shard.tile, objects=pa.table(columns), store=str(store),
            run_dir=str(run_dir), model_dir=str(card.directory), model_sha256=card.sha256,
            batch_size=config.batch_size, provider=config.provider, bands=bands, damage=damage,
        )  # fmt: skip

    return execute(
        config, plan, run_dir, card, threshold, process_rescore, make_task, lens_ids=set(),
        extra_summary={"cutouts": str(store), "provider": config.provider,
                       "prior_lens_rate_source": prior_source}, start=start,
    )  # fmt: skip


def _store_bands(store: Path, card: ModelCard) -> tuple[str, ...]:
    """The store's bands, checked to hold the model's (any order) at its cutout size."""
    import zarr

    first = store / list_shards(store)[0]  # plan_store has refused an empty store
    stored = tuple(str(b) for b in zarr.open_group(str(first), mode="r").attrs.get("bands", []))
    try:
        card.check_cutout_shape(stored, zarr.open_array(str(first / "images"), mode="r").shape[1:])
    except ModelError as exc:
        raise ConfigError(f"{store}: {exc}") from None
    return stored
