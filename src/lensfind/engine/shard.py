"""Processing one shard: read tile -> cut -> store -> score -> write scores.

Runs inside a Dask worker (or in-process). Every object of the shard ends in
exactly one state: ``scored``, ``skipped`` (with a reason) or ``failed`` (with a
reason); a bad tile fails its objects and never raises out of the task.
"""

import ctypes
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.engine.buffers import scratch
from lensfind.engine.cutouts import EDGE, INVALID, cut_stamps
from lensfind.engine.injections import InjectionPlan, inject_and_score
from lensfind.engine.plan import NO_TILE
from lensfind.engine.store import STORE_NAME, image_file, start_shard_cutouts
from lensfind.engine.tiles import read_tile
from lensfind.errors import LensfindError
from lensfind.hashing import sha256_of
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE
from lensfind.sky import invalid_position
from lensfind.surveys.spec import SurveySpec

SCORES_DIR = "scores"
STATUSES = ("scored", "skipped", "failed")
OFF_TILE = "off-tile: not on any tile of the data directory"


class ShardWork(Protocol):
    """What writing a shard's scores needs (a scan task or a re-score task)."""

    @property
    def shard_id(self) -> str: ...
    @property
    def tile(self) -> str: ...
    @property
    def objects(self) -> pa.Table: ...
    @property
    def run_dir(self) -> str: ...


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs for one shard (picklable)."""

    shard_id: str
    tile: str
    objects: pa.Table
    data_dir: str
    run_dir: str
    bands: tuple[str, ...]
    cutout_px: int
    model_dir: str
    model_sha256: str
    batch_size: int = DEFAULT_BATCH_SIZE
    #: the survey on the model's pixel grid (a registry spec, or one ``on_grid``)
    survey: SurveySpec | None = None
    #: what to inject into which good cutouts (selection function); None: nothing
    injection: InjectionPlan | None = None
    #: cutout store dtype: float16 in units of 3 sky sigma, or float32 counts
    store_dtype: str = "float16"
    store_compression: str = "zstd"
    #: ONNX Runtime execution provider (auto, cpu, cuda, tensorrt)
    provider: str = "auto"


@dataclass
class ShardResult:
    """What the driver needs to commit a shard."""

    shard_id: str
    scores_file: str
    sha256: str
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    #: (status, reason class, number of objects) for metrics
    reasons: list[tuple[str, str, int]] = field(default_factory=list)
    #: cutouts per model call
    batch_sizes: list[int] = field(default_factory=list)
    #: image bytes read from the tile for the cutouts
    bytes_read: int = 0
    #: pixels clipped to the float16 range in the cutout store
    store_clipped_pixels: int = 0


def _load_malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _load_malloc_trim() if sys.platform.startswith("linux") else None


def release_memory() -> None:
    """Give freed heap pages back to the OS after a shard.

    Shards allocate and free tens of MB from several threads (zarr's codec
    pipeline, ONNX Runtime); glibc keeps such pages in per-thread arenas, so a
    worker's RSS would creep up with the number of shards. ``malloc_trim``
    keeps it flat (measured by ``engine bench score``).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def reason_class(reason: str) -> str:
    """The low-cardinality class of a reason: the text before the first colon."""
    return reason.split(":", 1)[0]


def process_shard(task: ShardTask) -> ShardResult:
    """Run one shard and write ``scores/<shard_id>.parquet`` atomically."""
    n = task.objects.num_rows
    status = np.full(n, "failed", dtype=object)
    reason = np.full(n, "", dtype=object)
    score = np.full(n, np.nan, dtype=np.float32)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    batch_sizes: list[int] = []
    bytes_read = 0
    clipped = 0
    ra = task.objects.column("ra").to_numpy(zero_copy_only=False)
    dec = task.objects.column("dec").to_numpy(zero_copy_only=False)
    if task.tile == NO_TILE:
        status[:] = "skipped"
        reason[:] = [invalid_position(r, d) or OFF_TILE for r, d in zip(ra, dec, strict=True)]
    else:
        spec = task.survey
        assert spec is not None, "a scan's shard task carries its survey"
        try:
            tile = read_tile(Path(task.data_dir), task.tile, task.bands)
        except LensfindError as exc:
            reason[:] = f"tile unreadable: {exc}"
        else:
            with tile:
                tile_psf = tile.psf_fwhm_arcsec
                seconds["read"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                ids = task.objects.column("object_id").to_numpy()
                x, y = tile.wcs.wcs_world2pix(ra, dec, 0)
                x[~(np.abs(dec) <= 90)] = np.nan  # a projection maps some of them anyway
                shape = (n, len(task.bands), task.cutout_px, task.cutout_px)
                scale = store_scale(spec)
                # a float16 store's stamps are encoded while cut, straight into the
                # image file (the model then scores what the store holds)
                encode = image = None
                if task.store_dtype == "float16":
                    image = image_file(n, shape[1:], task.store_compression)
                    encode = (scale, image.chunks)
                try:
                    buf = scratch("stamps", shape, np.float32)
                    stamps, why, clipped = cut_stamps(
                        tile.images, x, y, task.cutout_px, task.bands, buf, encode
                    )
                except Exception as exc:  # e.g. pages of a truncated file
                    reason[:] = f"tile unreadable: {tile.paths[0].name}: {exc}"
                    stamps = None
            if stamps is not None:
                good = np.array([w == "" for w in why], dtype=bool)
                rows = np.flatnonzero(good)  # stamps[i] is object rows[i]
                n_read = sum(w not in (EDGE, INVALID) for w in why)
                bytes_read = n_read * len(task.bands) * task.cutout_px**2 * 4
                status[~good] = "skipped"
                reason[~good] = np.array(why, dtype=object)[~good]
                for i in np.flatnonzero(reason == INVALID):  # say what is wrong with it
                    reason[i] = invalid_position(ra[i], dec[i]) or INVALID
                seconds["cutout"] = time.perf_counter() - t1
                t2 = time.perf_counter()
                every = len(rows) == n  # the usual case: no index copies
                good_ids = ids if every else ids[rows]
                # the image file is written in the background while the shard is scored
                writing = start_shard_cutouts(
                    Path(task.run_dir) / STORE_NAME,
                    task.shard_id,
                    good_ids,
                    stamps if image is None else image,
                    ra=ra if every else ra[rows],
                    dec=dec if every else dec[rows],
                    tile=task.tile,
                    bands=task.bands,
                    dtype=task.store_dtype,
                    compression=task.store_compression,
                    scale=scale,
                    background=True,
                )
                seconds["store"] = time.perf_counter() - t2
                try:
                    batch_sizes = inject_and_score(
                        task, spec, stamps, rows, good_ids, tile_psf, status, reason, score, seconds
                    )
                finally:
                    t5 = time.perf_counter()
                    writing.finish()
                    seconds["store"] += time.perf_counter() - t5
    t4 = time.perf_counter()
    result = write_scores(task, status, reason, score)
    result.seconds.update(seconds, write=time.perf_counter() - t4)
    result.batch_sizes = batch_sizes
    result.bytes_read = bytes_read
    result.store_clipped_pixels = clipped
    release_memory()
    return result


def store_scale(spec: SurveySpec) -> np.ndarray:
    """Per-band unit (counts) of float16 cutout storage: three sky sigmas."""
    return 3.0 * np.array([b.sky_sigma_counts for b in spec.bands], dtype=np.float32)


def write_scores(
    task: ShardWork,
    status: np.ndarray | None = None,
    reason: np.ndarray | str = "",
    score: np.ndarray | None = None,
) -> ShardResult:
    """Write the shard's rows (catalogue columns + status/reason/score) atomically.

    With only ``reason`` given, every object of the shard is written as failed
    with that reason (used by the driver when a task crashed).
    """
    objects = task.objects
    n = objects.num_rows
    if status is None:
        status = np.full(n, "failed", dtype=object)
    if isinstance(reason, str):
        reason = np.full(n, reason, dtype=object)
    if score is None:
        score = np.full(n, np.nan, dtype=np.float32)
    core = {
        "object_id": objects.column("object_id"),
        "ra": objects.column("ra"),
        "dec": objects.column("dec"),
        "tile": pa.array([task.tile] * objects.num_rows, type=pa.string()),
        "status": pa.array(status.tolist(), type=pa.string()),
        "reason": pa.array(reason.tolist(), type=pa.string()),
        "score": pa.array(score, type=pa.float32()),
    }
    extra = {c: objects.column(c) for c in objects.column_names if c not in core}
    table = pa.table({**core, **extra})
    out_dir = Path(task.run_dir) / SCORES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{task.shard_id}.parquet"
    tmp = out_dir / f".{task.shard_id}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(final)
    counts = {s: int((status == s).sum()) for s in STATUSES}
    tally = Counter(
        (st, reason_class(r)) for st, r in zip(status.tolist(), reason.tolist(), strict=True)
    )
    reasons = [(st, r, n) for (st, r), n in sorted(tally.items())]
    return ShardResult(task.shard_id, final.name, sha256_of(final), counts, reasons=reasons)
