"""The run's cutout store: zarr v3, one array group per shard, one writer per shard.

Layout of ``cutouts.zarr``::

    <shard_id>/images     (N, bands, H, W) float32 counts, or float16 in units of
                          ``scale`` counts per band (attrs ``encoding``)
    <shard_id>/object_id  (N,) int64
    <shard_id>/ra, dec    (N,) float64, degrees
    <shard_id> attrs      tile, bands, encoding, and their ``sha256``

The images use the zarr v3 sharding codec: one shard file holds all of a work
shard's chunks (16 cutouts each, zstd-compressed or not), so a store of 10^9
cutouts has ~10^7 files, not ~10^9; the catalogue arrays are one uncompressed
chunk each, with a crc32c (checked by :mod:`lensfind.zarr_checks`; what damage
costs: ``docs/reliability.md``). The shard file's bytes are written and read directly
(:mod:`lensfind.engine.shard_file`) and the metadata documents come from zarr
once per shape, so a shard costs its bytes, not zarr's per-chunk machinery.
Each work shard's group is written under a temporary name by the one task that
owns the shard and renamed into place: one writer per zarr shard by
construction, and a killed task leaves no half-written group under a real name.

``float16`` storage halves the store: pixels are divided by a per-band scale
(three sky sigmas) and rounded to float16 (relative error <= 2^-11, about 5e-4);
values beyond float16's range are clipped and counted.
"""

import hashlib
import json
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from lensfind import zarr_checks
from lensfind.engine.config import STORE_DTYPES
from lensfind.engine.half import decode_float16, encode_float16
from lensfind.engine.shard_file import (
    ZSTD_LEVEL,
    ShardFile,
    StoreError,
    read_shard_file,
    shard_file_bytes,
    shard_layout,
    shard_path,
    write_file,
)
from lensfind.zarr_checks import attributes_sha256, checked_attributes, one_chunk_bytes, read_array
from lensfind.zarr_checks import node_metadata as _metadata

__all__ = ["CHUNK_CUTOUTS", "STORE_DTYPES", "STORE_NAME", "ZSTD_LEVEL", "ShardWrite",
           "StoreError", "image_file", "list_shards", "read_shard_catalog", "read_shard_cutouts",
           "read_shard_info", "start_shard_cutouts", "store_fingerprint",
           "write_shard_cutouts"]  # fmt: skip

STORE_NAME = "cutouts.zarr"
#: cutouts per inner chunk of the sharding codec
CHUNK_CUTOUTS = 16
#: catalogue arrays of a shard: name -> dtype (one uncompressed chunk each)
COLUMNS = {"object_id": "int64", "ra": "float64", "dec": "float64"}


@lru_cache(maxsize=64)
def _array_documents(
    n: int, image_shape: tuple[int, ...], dtype: str, compression: str
) -> dict[str, bytes]:
    """The ``zarr.json`` of a shard's arrays (``images`` and :data:`COLUMNS`), by zarr itself.

    Made once per shape in an in-memory store, then written as files for every
    shard of that shape: zarr's metadata, without zarr's I/O per shard.
    """
    import asyncio

    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    mem = MemoryStore()
    group = zarr.open_group(mem, mode="w", zarr_format=3)
    rows = max(n, 1)
    chunk = min(rows, CHUNK_CUTOUTS)
    group.create_array(
        "images", shape=(n, *image_shape), dtype=dtype, chunks=(chunk, *image_shape),
        shards=(-(-rows // chunk) * chunk, *image_shape),
        compressors=[ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()] if compression == "zstd"
        else [Crc32cCodec()],
    )  # fmt: skip
    for name, kind in COLUMNS.items():
        group.create_array(name, shape=(n,), dtype=kind, chunks=(rows,),
                           compressors=[Crc32cCodec()])  # fmt: skip

    async def documents() -> dict[str, bytes]:
        proto = default_buffer_prototype()
        out = {}
        async for key in mem.list():
            if key.endswith("/zarr.json"):
                buf = await mem.get(key, prototype=proto)
                assert buf is not None
                out[key] = buf.to_bytes()
        return out

    docs = asyncio.run(documents())
    if n and shard_layout(json.loads(docs["images/zarr.json"])) is None:  # writer == reader
        raise StoreError(f"zarr {zarr.__version__} describes the images in another layout")
    return docs


@dataclass
class ShardWrite:
    """One shard's cutouts on their way into the store: :meth:`finish` puts them in place."""

    #: pixels clipped to the float16 range
    clipped: int
    tmp: Path
    final: Path
    pending: Future[None] | None = None

    def finish(self) -> int:
        """Wait for the image file, then rename the shard's group into place; the clipped count."""
        if self.pending is not None:
            self.pending.result()  # raises the write's error
            self.pending = None
        if self.final.exists():
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)
        return self.clipped


def image_file(capacity: int, item_shape: tuple[int, ...], compression: str) -> ShardFile:
    """An empty float16 image file of this store's layout, for up to ``capacity`` cutouts.

    Encode cutouts into its ``chunks`` and pass it to :func:`start_shard_cutouts`
    as the images: uncompressed, they are then written where they lie.
    """
    return ShardFile(capacity, item_shape, np.float16, CHUNK_CUTOUTS, compression == "zstd")


def write_shard_cutouts(*args: Any, **kwargs: Any) -> int:
    """:func:`start_shard_cutouts` and :meth:`ShardWrite.finish`: the clipped pixel count."""
    return start_shard_cutouts(*args, **kwargs).finish()


def _writer() -> ThreadPoolExecutor:
    """This process's background writer of image files (one file at a time)."""
    global _WRITER
    if _WRITER is None:
        _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lensfind-store")
    return _WRITER


_WRITER: ThreadPoolExecutor | None = None


def start_shard_cutouts(
    store: Path,
    shard_id: str,
    object_id: np.ndarray,
    images: np.ndarray | ShardFile,
    ra: np.ndarray | None = None,
    dec: np.ndarray | None = None,
    tile: str = "",
    bands: tuple[str, ...] = (),
    dtype: str = "float32",
    scale: np.ndarray | None = None,
    compression: str = "zstd",
    background: bool = False,
) -> ShardWrite:
    """Write one shard's cutouts (only valid stamps) into the store, atomically on finish.

    ``ra``/``dec`` (degrees), ``tile`` and ``bands`` let ``engine score``
    re-score the store into a full run directory without the survey files.
    ``dtype="float16"`` stores ``images / scale`` (``scale`` per band, counts);
    float16 ``images``, or an :func:`image_file` into which they were so
    encoded (as :func:`~lensfind.engine.cutouts.cut_stamps` does while
    cutting), are taken as they are.
    ``compression`` is ``"zstd"`` (level 1) or ``"none"``. ``background=True`` writes the image
    file (its bytes already copied: ``images`` may change right away) in a
    background thread while the caller goes on; :meth:`ShardWrite.finish`
    waits for it. Until then the shard sits under a temporary name that no
    reader lists and the next attempt at the shard removes.
    """
    if dtype not in STORE_DTYPES:
        raise ValueError(f"store dtype {dtype!r} not in {STORE_DTYPES}")
    store.mkdir(parents=True, exist_ok=True)
    if not (store / "zarr.json").exists():
        try:
            zarr.open_group(str(store), mode="w-", zarr_format=3)
        except (FileExistsError, zarr.errors.ContainsGroupError):
            pass  # another worker created it first
    final = store / shard_id
    tmp = store / f".{shard_id}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    n = len(object_id)
    clipped = 0
    encoding: dict[str, Any] = {"dtype": dtype}
    if dtype == "float16":
        if scale is None:
            raise ValueError("float16 storage needs a per-band scale")
        scale = np.asarray(scale, dtype=np.float32).ravel()
        if isinstance(images, ShardFile):
            if (images.dtype, images.zstd) != (np.float16, compression == "zstd"):
                raise ValueError("the image file is not this store's float16 layout")
        elif images.dtype != np.float16:
            images, clipped = encode_float16(images, scale)
        encoding["scale"] = scale.tolist()
    elif images.dtype != np.float32:
        raise ValueError(f"a float32 store takes float32 images, not {images.dtype}")
    item_shape = images.item_shape if isinstance(images, ShardFile) else images.shape[1:]
    docs = _array_documents(n, tuple(item_shape), dtype, compression)
    values = {"object_id": object_id, "ra": ra, "dec": dec}
    for key, doc in docs.items():
        name = key.split("/")[0]
        if name in values and values[name] is None:
            continue
        (tmp / name).mkdir()
        (tmp / key).write_bytes(doc)
        if n and name in COLUMNS:
            data = np.asarray(values[name], dtype=COLUMNS[name])
            shard_path(tmp / name, 1).parent.mkdir()
            shard_path(tmp / name, 1).write_bytes(one_chunk_bytes(data))
    attrs = {"tile": tile, "bands": list(bands), "encoding": encoding}
    attrs["sha256"] = attributes_sha256(attrs)
    group_doc = {"attributes": attrs, "zarr_format": 3, "node_type": "group"}
    (tmp / "zarr.json").write_text(json.dumps(group_doc, indent=2))
    pending = None
    if n:
        path = shard_path(tmp / "images", 1 + len(item_shape))
        if isinstance(images, ShardFile):
            data = images.seal(n)
        else:
            data = shard_file_bytes(images, min(n, CHUNK_CUTOUTS), compression == "zstd")
        if background:
            pending = _writer().submit(write_file, path, data)
        else:
            write_file(path, data)
    return ShardWrite(clipped, tmp, final, pending)


def list_shards(store: Path) -> list[str]:
    """Shard ids of a store (complete groups only), sorted."""
    if not (store / "zarr.json").is_file():
        raise StoreError(f"{store}: not a lensfind cutout store (no zarr.json)")
    return sorted(
        p.name
        for p in store.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "images" / "zarr.json").is_file()
    )


def shard_attributes(store: Path, shard_id: str) -> dict[str, Any]:
    """A shard group's attributes, checked against their ``sha256`` where recorded."""
    return checked_attributes(store / shard_id, _metadata(store / shard_id).get("attributes", {}))


def read_shard_catalog(
    store: Path, shard_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(object_id, ra, dec, tile)`` of one shard, without the images."""
    _, tile = read_shard_info(store, shard_id)
    ids, ra, dec = (read_array(store / shard_id / name) for name in COLUMNS)
    return ids, ra, dec, tile


def read_shard_info(store: Path, shard_id: str) -> tuple[int, str]:
    """``(number of objects, tile)`` of one shard, from its metadata only."""
    n = int(_metadata(store / shard_id / "object_id")["shape"][0])
    return n, str(shard_attributes(store, shard_id).get("tile", ""))


def read_shard_cutouts(
    store: Path, shard_id: str, damaged: list[tuple[int, int, str]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(object_id, images)`` of one shard, images as float32 counts.

    Image arrays in this store's own layout (:mod:`lensfind.engine.shard_file`)
    are read straight from their shard file; any other zarr v3 layout through
    zarr. With ``damaged`` given, a damaged image chunk does not raise: its
    cutouts are zero and ``(start, stop, message)`` of their rows is appended.
    """
    group = store / shard_id
    ids = read_array(group / "object_id")
    meta = _metadata(group / "images")
    layout = shard_layout(meta)
    if layout is None:
        images = np.asarray(zarr.open_array(str(group / "images"), mode="r")[:])
    else:
        shape, bad = tuple(meta["shape"]), None if damaged is None else {}
        images = read_shard_file(shard_path(group / "images", len(shape)), shape,
                                 meta["data_type"], *layout, bad)  # fmt: skip
        if damaged is not None:
            m = layout[0][0]
            damaged += [(k * m, min(k * m + m, len(ids)), why) for k, why in sorted(bad.items())]
    if images.dtype == np.float16:
        attrs = shard_attributes(store, shard_id)
        images = decode_float16(images, np.asarray(attrs["encoding"]["scale"], dtype=np.float32))
    return ids, images.astype(np.float32, copy=False)


def store_fingerprint(store: Path, shard_ids: list[str]) -> str:
    """sha256 of every shard's files, image files by their chunks' crc32c (not their bytes)."""
    h = hashlib.sha256()
    for shard_id in shard_ids:
        group = store / shard_id
        for path in sorted(p for p in group.rglob("*") if p.is_file()):
            rel = path.relative_to(group).as_posix()
            h.update(f"{shard_id}/{rel};".encode())
            image = rel.startswith("images/c")  # its index and chunks' crc32c
            meta = _metadata(group / "images") if image else {}
            h.update(zarr_checks.shard_checksums(path, meta) if image else path.read_bytes())
    return h.hexdigest()
