"""``engine scan``: catalogue + tiles -> plan -> shards on Dask -> candidates + summary."""

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from lensfind.engine.candidates import ScoreTally
from lensfind.engine.catalog import read_catalog
from lensfind.engine.config import ScanConfig
from lensfind.engine.injections import INJECTIONS_DIR, plan_injections
from lensfind.engine.plan import Plan, Shard, make_plan
from lensfind.engine.run import (
    EXIT_OK,
    EXIT_WITH_FAILURES,
    EXIT_WITH_QUARANTINE,
    SUMMARY_NAME,
    ScanResult,
    default_run_dir,
    execute,
    with_prior,
)
from lensfind.engine.scoring import check_model_session, check_provider
from lensfind.engine.shard import ShardTask, process_shard
from lensfind.errors import ConfigError
from lensfind.parquet_files import read_parquet
from lensfind.probes.selection import run_truth_check, write_selection
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.datadir import catalog_path, default_region
from lensfind.simulation.region import TRUTH_NAME, region_lens_fraction
from lensfind.surveys.registry import get_survey

__all__ = ["EXIT_OK", "EXIT_WITH_FAILURES", "EXIT_WITH_QUARANTINE", "SUMMARY_NAME", "ScanResult",
           "run_scan"]  # fmt: skip


def run_scan(config: ScanConfig) -> ScanResult:
    """Scan a survey region and write the run directory (see the design's Formats)."""
    start = time.perf_counter()
    check_provider(config)
    spec = get_survey(config.survey)
    card = resolve_model(config.model, spec.name)
    spec = card.on_input_grid(spec)  # e.g. Euclid's NISP grid for OU-66
    # the model's bands in any order: the scorer reorders the survey's to the card's
    if sorted(card.bands) != sorted(spec.band_names) or card.input_shape[1] != spec.cutout_px:
        raise ConfigError(
            f"model {card.name} expects bands {card.bands} at {card.input_shape[1]} px; "
            f"survey {spec.name} gives {spec.band_names} at {spec.cutout_px} px"
        )
    check_model_session(config, card, spec.band_names)  # exit 2
    threshold = card.threshold if config.threshold is None else config.threshold
    data_dir = config.data_dir or default_region(spec, quiet=config.quiet)
    config, prior_source = with_prior(config, region_lens_fraction(data_dir))
    cat_file = catalog_path(data_dir)
    catalog = read_catalog(cat_file)
    injection, injection_summary = plan_injections(config, card, catalog, spec)
    stored = {"store_dtype": config.store_dtype, "store_compression": config.store_compression}
    plan = make_plan(catalog, cat_file, data_dir, spec, config.shard_size,
                     {**stored, "injections": injection_summary})  # fmt: skip
    run_dir = config.out or default_run_dir(spec.name)

    def make_task(shard: Shard) -> ShardTask:
        return ShardTask(
            shard_id=shard.shard_id, tile=shard.tile, objects=catalog.take(list(shard.rows)),
            data_dir=str(data_dir), run_dir=str(run_dir), bands=spec.band_names,
            cutout_px=spec.cutout_px, model_dir=str(card.directory), model_sha256=card.sha256,
            batch_size=config.batch_size, survey=spec, injection=injection,
            store_dtype=config.store_dtype, store_compression=config.store_compression,
            provider=config.provider,
        )  # fmt: skip

    def selection(tally: ScoreTally) -> dict[str, Any]:
        found = scan_selection(run_dir, plan, tally, threshold, injection_summary)
        if found.get("file") and (data_dir / TRUTH_NAME).is_file():
            found["truth_check"] = run_truth_check(run_dir, data_dir / TRUTH_NAME, threshold, found)
        return {"selection_function": found}

    return execute(
        config, plan, run_dir, card, threshold, process_shard, make_task,
        lens_ids=planted_lens_ids(data_dir),
        extra_summary={"embedded_default": config.data_dir is None, "provider": config.provider,
                       "prior_lens_rate_source": prior_source,
                       **stored},
        start=start,
        finalise=selection,
        # the workers cut stamps and write a store: they grow those buffers first
        warm_up_options={"store_dtype": config.store_dtype, "shard_size": config.shard_size,
                         "store_compression": config.store_compression},
    )  # fmt: skip


def scan_selection(
    run_dir: Path, plan: Plan, tally: ScoreTally, threshold: float, summary: dict[str, Any]
) -> dict[str, Any]:
    """Gather the committed shards' injections into the run's selection function.

    ``summary`` holds what the injections were (:func:`plan_injections`).
    """
    files = [run_dir / INJECTIONS_DIR / f"{s.shard_id}.parquet" for s in plan.shards]
    tables = [read_parquet(f) for f in files if f.is_file()]
    if not tables:
        return {**summary, "n_injected": 0}
    injections = pa.concat_tables(tables)
    n_scored = tally.status_counts()["scored"]
    above = sum(t.num_rows for t in tally.above)
    host_rate = above / n_scored if n_scored else None
    return {**summary, **write_selection(run_dir, injections, threshold, host_rate, summary)}


def planted_lens_ids(data_dir: Path) -> set[int]:
    """Object ids of the planted lenses of a synthetic region (empty without truth)."""
    path = data_dir / TRUTH_NAME
    if not path.is_file():
        return set()
    truth = read_parquet(path, columns=["object_id", "is_lens"])
    ids = truth["object_id"].to_numpy()[truth["is_lens"].to_numpy(zero_copy_only=False)]
    return {int(i) for i in ids}
