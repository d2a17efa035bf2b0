"""The scan's injections: lensed copies of chosen host stamps, scored beside the originals.

The copies measure the scan's selection function: they are scored by the same
session in the same shard, written to ``injections/<shard_id>.parquet`` and
never enter the candidates.
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.engine.scoring import score_batches
from lensfind.simulation.inject import InjectedBatch, batch_seed, choose_hosts, inject_lenses
from lensfind.simulation.simulate import reference_band
from lensfind.surveys.spec import SurveySpec

if TYPE_CHECKING:
    from lensfind.engine.shard import ShardTask

INJECTIONS_DIR = "injections"


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

    The copies are made first (scoring normalises ``stamps`` in place), scored
    by the same session right after, and written to ``injections/``. Returns
    the size of each model call; adds ``inject`` and ``score`` to ``seconds``.
    """
    hosts = choose_hosts(ids, task.inject_rate, task.inject_seed)
    if hosts.any():
        t0 = time.perf_counter()
        psf = tile_psf[reference_band(spec)]
        injected = _inject(task, spec, stamps[hosts], ids[hosts], psf)
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
        _write_injections(task, injected.truth, inj_status, inj_reason, inj_score)
    return sizes


def _inject(
    task: "ShardTask",
    spec: SurveySpec,
    stamps: np.ndarray,
    ids: np.ndarray,
    psf_fwhm_arcsec: float | None,
) -> InjectedBatch:
    """Injected-lens copies of the chosen hosts, with their truth and host ids."""
    mag_col = f"mag_{spec.band_names[reference_band(spec)]}"
    mags = None
    if mag_col in task.objects.column_names:
        by_id = dict(
            zip(task.objects.column("object_id").to_pylist(),
                task.objects.column(mag_col).to_pylist(), strict=True)
        )  # fmt: skip
        mags = np.array([by_id[int(i)] for i in ids], dtype=float)
    batch = inject_lenses(spec, stamps, batch_seed(task.inject_seed, task.shard_id),
                          psf_fwhm_arcsec, mags)  # fmt: skip
    batch.truth["object_id"] = ids
    batch.truth["psf_fwhm_tile_arcsec"] = np.full(len(ids), psf_fwhm_arcsec or np.nan)
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
        **{k: pa.array(np.asarray(v, dtype=float)) for k, v in truth.items() if k != "object_id"},
    })  # fmt: skip
    out_dir = Path(task.run_dir) / INJECTIONS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{task.shard_id}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out_dir / f"{task.shard_id}.parquet")
