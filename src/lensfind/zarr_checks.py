"""Checked reading of small zarr v3 arrays and of checksummed attributes, without zarr.

zarr fills a missing chunk with the array's fill value, which for an array of
object ids is a plausible id (0). The cutout store's catalogue arrays (ids,
coordinates: one little-endian chunk each, with a crc32c) are read here
instead: a chunk that is missing, short or fails its crc32c is an error naming
the file, never a value. Attributes carry the sha256 of their canonical JSON
(:func:`attributes_sha256`), checked by :func:`checked_attributes`.
"""

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np

from lensfind.errors import StoreError

#: the codec chains of a one-chunk array this module reads (older stores had no crc32c)
ONE_CHUNK_CODECS = (["bytes"], ["bytes", "crc32c"])


def attributes_sha256(attrs: dict[str, Any]) -> str:
    """sha256 of ``attrs`` as canonical JSON (sorted keys), hex."""
    return hashlib.sha256(json.dumps(attrs, sort_keys=True).encode()).hexdigest()


def checked_attributes(node: Path, attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` of the zarr node ``node``, checked against their ``sha256`` entry where present."""
    if "sha256" in attrs:
        rest = {k: v for k, v in attrs.items() if k != "sha256"}
        if attributes_sha256(rest) != attrs["sha256"]:
            raise StoreError(f"{node}/zarr.json: attributes fail their sha256")
    return attrs


def one_chunk_bytes(data: np.ndarray) -> bytes:
    """The chunk file of ``data`` (little-endian) with its crc32c, as zarr's crc32c codec has it."""
    raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()
    return raw + google_crc32c.value(raw).to_bytes(4, "little")


def read_one_chunk(array_dir: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The values of a one-dimensional one-chunk array (``meta``: its zarr.json), checked.

    None if the array is not in that layout (the caller reads it with zarr).

    Raises
    ------
    StoreError
        The chunk file (``c/0``) is missing, has another length, or fails its crc32c.
    """
    codecs = [c.get("name") for c in meta.get("codecs", [])]
    shape = meta.get("shape", [])
    if codecs not in ONE_CHUNK_CODECS or len(shape) != 1:
        return None
    if meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape") != [max(shape[0], 1)]:
        return None
    n, dtype = int(shape[0]), np.dtype(meta["data_type"]).newbyteorder("<")
    path = array_dir / "c" / "0"
    if n == 0:  # nothing stored
        return np.empty(0, dtype.newbyteorder("="))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path}: missing ({array_dir.name} of {n} objects)") from None
    size, crc = n * dtype.itemsize, len(codecs) == 2
    if len(raw) != size + 4 * crc:
        raise StoreError(f"{path}: {len(raw)} bytes, expected {size + 4 * crc}")
    if crc and google_crc32c.value(raw[:size]) != int.from_bytes(raw[size:], "little"):
        raise StoreError(f"{path}: fails its crc32c ({array_dir.name} of {n} objects)")
    return np.frombuffer(raw[:size], dtype).astype(dtype.newbyteorder("="))


def shard_checksums(path: Path, meta: dict[str, Any]) -> bytes:
    """A zarr v3 shard file's index and every chunk's crc32c: its content, 4 bytes per chunk.

    For a shard file (``meta``: its array's zarr.json) whose index is at the end
    and whose inner chunks end in a crc32c, as the cutout store's images are; a
    fingerprint of the content that reads neither the chunks nor the page
    cache's worth of them. Any other file: its bytes.
    """
    codecs = meta.get("codecs", [])
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return path.read_bytes()
    conf = codecs[0].get("configuration", {})
    inner = [c.get("name") for c in conf.get("codecs", [])]
    if conf.get("index_location", "end") != "end" or inner[-1:] != ["crc32c"]:
        return path.read_bytes()
    shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
    n = math.prod(-(-s // c) for s, c in zip(shard, conf["chunk_shape"], strict=True))
    try:
        with open(path, "rb") as f:
            f.seek(-(16 * n + 4), 2)
            out = [f.read()]
            for offset, length in np.frombuffer(out[0][:-4], "<u8").reshape(n, 2).tolist():
                if offset != 2**64 - 1:  # a stored chunk: its last 4 bytes
                    f.seek(offset + length - 4)
                    out.append(f.read(4))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read its index ({exc.strerror or exc})") from None
    return b"".join(out)


def node_metadata(node: Path) -> dict[str, Any]:
    """A zarr v3 group's or array's ``zarr.json``; StoreError naming it if missing or not JSON."""
    try:
        return dict(json.loads((node / "zarr.json").read_bytes()))
    except FileNotFoundError:
        raise StoreError(f"{node}: no zarr.json; was the store written by engine scan?") from None
    except ValueError as exc:
        raise StoreError(f"{node}/zarr.json: damaged ({exc})") from None


def read_array(array_dir: Path) -> np.ndarray:
    """A small zarr array, checked in the one-chunk layout (:func:`read_one_chunk`), else zarr's."""
    values = read_one_chunk(array_dir, node_metadata(array_dir))
    if values is None:
        import zarr

        return np.asarray(zarr.open_array(str(array_dir), mode="r")[:])
    return values


def read_columns(group: Path, n: int, dtypes: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Arrays ``dtypes`` (name -> dtype) of ``n`` values under ``group`` (Arrow) and what is wrong.

    An array that is missing, damaged or of another length than ``n`` is all
    null, never a fill value, and the second item names it ("" if none is).
    """
    import pyarrow as pa

    columns, problems = {}, []
    for name, kind in dtypes.items():
        arrow_type = pa.from_numpy_dtype(np.dtype(kind))
        try:
            values = read_array(group / name)
            if len(values) != n:
                raise StoreError(f"{group / name}: {len(values)} values, {n} expected")
            columns[name] = pa.array(values, arrow_type)
        except StoreError as exc:
            columns[name] = pa.nulls(n, arrow_type)
            problems.append(f"{exc}; the {name} values are unknown")
    return columns, "; ".join(problems)
