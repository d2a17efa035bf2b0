"""The bytes of a cutout store's image shard file, written and read without zarr's pipeline.

Each work shard's ``images`` array is one zarr v3 shard (the ``sharding_indexed``
codec): inner chunks of ``chunk`` cutouts, little-endian, optionally zstd, each
followed by its crc32c (so a damaged chunk is detected even uncompressed), then
an index of ``(offset, nbytes)`` uint64 pairs with its crc32c at the end. These
are exactly the bytes zarr's own writer produces for such an array (the
one-dimensional chunk grid makes zarr's Morton order the C order), so zarr (and
any zarr v3 reader) reads the store; writing and reading them here skips zarr's
asynchronous per-chunk machinery, which costs more than the bytes themselves.
Arrays whose metadata is not this layout are left to zarr.
"""

import os
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
from numcodecs import Zstd

from lensfind.engine.buffers import scratch
from lensfind.errors import StoreError

__all__ = ["ShardFile", "StoreError", "read_shard_file", "shard_file_bytes", "write_file"]

#: zstd level of compressed stores
ZSTD_LEVEL = 1
#: index entry of a chunk that is not stored (all fill value)
_MISSING = np.uint64(2**64 - 1)
_BYTES = {"name": "bytes", "configuration": {"endian": "little"}}
_CRC = {"name": "crc32c"}


def inner_codecs(zstd: bool) -> list[dict[str, Any]]:
    """The inner codec chain (as zarr.json records it) of a store's image shards."""
    chain: list[dict[str, Any]] = [_BYTES]
    if zstd:
        chain.append({"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}})
    return [*chain, _CRC]


def shard_layout(meta: dict[str, Any]) -> tuple[tuple[int, ...], bool] | None:
    """``(inner chunk shape, zstd)`` if ``meta`` (an array's zarr.json) is this module's layout.

    None for any other array (another chunking, codec or index placement).
    """
    codecs = meta.get("codecs", [])
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return None
    conf = codecs[0].get("configuration", {})
    chunk = tuple(conf.get("chunk_shape", ()))
    inner = conf.get("codecs")
    zstd = inner == inner_codecs(True)
    shard_shape = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    if (
        not (zstd or inner == inner_codecs(False))
        or conf.get("index_codecs") != [_BYTES, _CRC]
        or conf.get("index_location", "end") != "end"
        or meta.get("data_type") not in ("float32", "float16")
        or len(chunk) != len(meta["shape"])
        or shard_shape[1:] != chunk[1:]
        or shard_shape[0] < meta["shape"][0]
        or meta.get("chunk_key_encoding", {}).get("name") != "default"
    ):
        return None
    return chunk, zstd


def shard_path(array_dir: Path, ndim: int) -> Path:
    """Path of the array's only shard file (chunk key ``c/0/0/...``)."""
    return array_dir.joinpath("c", *["0"] * ndim)


class ShardFile:
    """An image shard file assembled in this thread's aligned scratch buffer.

    Up to ``capacity`` items (cutouts) of ``item_shape`` are written into
    :attr:`chunks` (``chunks[k, i]`` is item ``k * chunk + i``): uncompressed,
    that view is the items' place in the file itself, so a producer such as
    :func:`~lensfind.engine.cutouts.cut_stamps` writes the file while it works.
    :meth:`seal` then adds the checksums (compressing first with ``zstd``) and
    the index, and returns the file's bytes for :func:`write_file`.
    """

    def __init__(
        self, capacity: int, item_shape: tuple[int, ...], dtype: Any, chunk: int, zstd: bool
    ) -> None:
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.item_shape, self.chunk, self.zstd = tuple(item_shape), chunk, zstd
        self.item_bytes = int(np.prod(item_shape)) * self.dtype.itemsize
        n_chunks = -(-capacity // chunk)
        # uncompressed, a chunk sits in the file followed by its crc32c
        stride = chunk * self.item_bytes + (0 if zstd else 4)
        size = n_chunks * stride
        if zstd:  # chunks in their own buffer, compressed into the file's at seal()
            self._items = scratch("shard_chunks", (size,), np.uint8)
        else:
            self._items = self._file(size + 16 * n_chunks + 4)
        item_strides = np.empty((1, *item_shape), self.dtype).strides[1:]
        self.chunks = np.ndarray(
            (n_chunks, chunk, *item_shape), self.dtype, buffer=self._items,
            strides=(stride, self.item_bytes, *item_strides),
        )  # fmt: skip

    @staticmethod
    def _file(size: int) -> np.ndarray:
        buf = scratch("shard_file", (size + _DIRECT_ALIGN,), np.uint8)
        start = -buf.ctypes.data % _DIRECT_ALIGN
        return buf[start : start + size]

    def seal(self, n: int) -> np.ndarray:
        """The file's bytes holding the first ``n`` items (aligned; valid until the next file).

        The last chunk is padded with the fill value (0), as zarr pads it; a
        shard of fewer than ``chunk`` items is one chunk of ``n`` (zarr's
        chunking of such an array), which holds them at the same offsets.
        """
        chunk = min(n, self.chunk) or 1
        n_chunks = -(-n // chunk)
        if n_chunks:
            self.chunks[n_chunks - 1, n - (n_chunks - 1) * chunk : chunk] = 0
        nbytes = chunk * self.item_bytes
        stride = self.chunks.strides[0]
        index = np.empty((n_chunks, 2), dtype="<u8")
        if self.zstd:
            encode = Zstd(level=ZSTD_LEVEL).encode
            pieces = [
                encode(self._items[k * stride : k * stride + nbytes]) for k in range(n_chunks)
            ]
            out = self._file(sum(len(p) + 4 for p in pieces) + 16 * n_chunks + 4)
        else:
            out = self._items
        pos = 0
        for k in range(n_chunks):
            if self.zstd:
                piece = np.frombuffer(pieces[k], np.uint8)
                out[pos : pos + len(piece)] = piece
            else:
                piece = out[pos : pos + nbytes]
            _put_crc(out, pos + len(piece), piece)
            index[k] = pos, len(piece) + 4
            pos += len(piece) + 4
        index_bytes = index.view(np.uint8).ravel()
        out[pos : pos + len(index_bytes)] = index_bytes
        _put_crc(out, pos + len(index_bytes), index_bytes)
        return out[: pos + len(index_bytes) + 4]


def _put_crc(out: np.ndarray, at: int, data: np.ndarray) -> None:
    """Write the crc32c of ``data`` (little-endian uint32) at ``out[at:at + 4]``."""
    out[at : at + 4] = np.array([google_crc32c.value(data)], dtype="<u4").view(np.uint8)


def shard_file_bytes(data: np.ndarray, chunk: int, zstd: bool) -> np.ndarray:
    """The bytes of ``data`` (N, ...) as one shard file of ``chunk``-cutout inner chunks.

    Returned in this thread's aligned scratch array (valid until its next
    call; see :func:`write_file` and :class:`ShardFile`, which assembles it).
    """
    f = ShardFile(len(data), data.shape[1:], data.dtype, chunk, zstd)
    for k in range(len(f.chunks)):
        block = data[k * chunk : (k + 1) * chunk]
        f.chunks[k, : len(block)] = block
    return f.seal(len(data))


#: alignment (bytes) of direct I/O buffers, file offsets and lengths
_DIRECT_ALIGN = 4096


def write_file(path: Path, data: np.ndarray) -> None:
    """Write the bytes ``data`` (uint8, 4096-aligned) as ``path``, bypassing the page cache.

    A store is written once and read later by another run, so caching its
    pages only costs: the kernel copies them, writes them back later and
    reclaims them, on the same cores as the scan. Where the file system allows
    direct I/O (``O_DIRECT``) the aligned part goes straight to the device;
    the last partial block, and everything on file systems without direct I/O
    (tmpfs), goes through ordinary buffered writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    direct = getattr(os, "O_DIRECT", 0)
    head = len(data) - len(data) % _DIRECT_ALIGN if direct else 0
    if head and data.ctypes.data % _DIRECT_ALIGN == 0:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | direct, 0o644)
        except OSError:
            head = 0  # no direct I/O on this file system
        else:
            try:
                done = 0
                while done < head:
                    done += os.pwrite(fd, memoryview(data[done:head]), done)
            except OSError:
                head = 0
            finally:
                os.close(fd)
        if head:
            with open(path, "ab") as f:
                f.write(memoryview(data[head:]))
            return
    with open(path, "wb") as f:
        f.write(memoryview(data))


def read_shard_file(path: Path, shape: tuple[int, ...], dtype: str, chunk: tuple[int, ...],
                    zstd: bool, bad: dict[int, str] | None = None) -> np.ndarray:  # fmt: skip
    """Read an array of ``shape`` from its one shard file (see :func:`shard_file_bytes`).

    Raises
    ------
    StoreError
        The file is missing, truncated, its index or a chunk fails its crc32c,
        or a chunk does not decode to the chunk's size (the message names the file).
        With ``bad`` given, a damaged chunk ``k`` is left zero and ``bad[k]`` says why.
    """
    n_chunks = -(-shape[0] // chunk[0]) if shape[0] else 0
    out = np.zeros((n_chunks * chunk[0], *shape[1:]), dtype=np.dtype(dtype).newbyteorder("<"))
    if n_chunks == 0:
        return out[: shape[0]]
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path}: shard file missing") from None
    size = n_chunks * 16
    if len(raw) < size + 4:
        raise StoreError(f"{path}: truncated ({len(raw)} bytes, index needs {size + 4})")
    index_bytes = raw[-size - 4 : -4]
    crc = int(np.frombuffer(raw[-4:], dtype="<u4")[0])
    if google_crc32c.value(index_bytes) != crc:
        raise StoreError(f"{path}: shard index fails its crc32c")
    index = np.frombuffer(index_bytes, dtype="<u8").reshape(n_chunks, 2)
    decode = Zstd().decode if zstd else None
    nbytes = int(np.prod(chunk)) * out.itemsize
    flat = out.reshape(n_chunks, -1).view(np.uint8)
    for k, (offset, length) in enumerate(index):
        if offset == _MISSING and length == _MISSING:
            continue  # all fill value
        stored = raw[int(offset) : int(offset) + int(length)]
        try:
            flat[k] = np.frombuffer(_chunk(stored, decode, nbytes, f"{path}: chunk {k}"), np.uint8)
        except StoreError as exc:
            if bad is None:
                raise
            bad[k] = str(exc)
    return out[: shape[0]]


def _chunk(stored: bytes, decode: Any, nbytes: int, name: str) -> bytes:
    """A stored chunk's bytes, checked against its crc32c and decoded to ``nbytes``."""
    piece, crc = stored[:-4], stored[-4:]
    if len(stored) < 4 or google_crc32c.value(piece) != int.from_bytes(crc, "little"):
        raise StoreError(f"{name} fails its crc32c")
    try:
        buf = decode(piece) if decode is not None else piece
    except Exception as exc:  # numcodecs raises RuntimeError on corrupt frames
        raise StoreError(f"{name} does not decode ({exc})") from None
    if len(buf) != nbytes:
        raise StoreError(f"{name} has {len(buf)} bytes, expected {nbytes}")
    return bytes(buf)
