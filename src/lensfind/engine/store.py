"""The run's cutout store: zarr v3, one array group per shard, one writer per shard.

Layout of ``cutouts.zarr``::

    <shard_id>/images     (N, bands, H, W) float32, counts (unnormalised)
    <shard_id>/object_id  (N,) int64
    <shard_id>/ra, dec    (N,) float64, degrees
    <shard_id> attrs      tile, bands

Each shard's group is written under a temporary name by the one task that owns
the shard and renamed into place, so concurrent writers never share a chunk and
a killed task leaves no half-written group under a real name.
"""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import zarr

from lensfind.errors import LensfindError

STORE_NAME = "cutouts.zarr"


class StoreError(LensfindError):
    """A cutout store that cannot be read."""


def write_shard_cutouts(
    store: Path,
    shard_id: str,
    object_id: np.ndarray,
    images: np.ndarray,
    ra: np.ndarray | None = None,
    dec: np.ndarray | None = None,
    tile: str = "",
    bands: tuple[str, ...] = (),
) -> None:
    """Write one shard's cutouts (only valid stamps) atomically into the store.

    ``ra``/``dec`` (degrees), ``tile`` and ``bands`` let ``engine score``
    re-score the store into a full run directory without the survey files.
    """
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
    group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    n = max(len(object_id), 1)
    arr = group.create_array(
        "images",
        shape=images.shape,
        dtype="float32",
        chunks=(min(n, 256), *images.shape[1:]),
        compressors=None,
    )
    if len(object_id):
        arr[:] = images
    columns = {"object_id": (object_id, "int64"), "ra": (ra, "float64"), "dec": (dec, "float64")}
    for name, (values, dtype) in columns.items():
        if values is None:
            continue
        col = group.create_array(name, shape=(len(object_id),), dtype=dtype, chunks=(n,))
        if len(object_id):
            col[:] = values
    group.attrs.update({"tile": tile, "bands": list(bands)})
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def list_shards(store: Path) -> list[str]:
    """Shard ids of a store (complete groups only), sorted."""
    if not (store / "zarr.json").is_file():
        raise StoreError(f"{store}: not a lensfind cutout store (no zarr.json)")
    return sorted(
        p.name
        for p in store.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "images" / "zarr.json").is_file()
    )


def read_shard_catalog(
    store: Path, shard_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(object_id, ra, dec, tile)`` of one shard, without the images."""
    group = store / shard_id
    try:
        ids, ra, dec = (
            np.asarray(zarr.open_array(str(group / c), mode="r")[:])
            for c in ("object_id", "ra", "dec")
        )
        tile = str(zarr.open_group(str(group), mode="r").attrs.get("tile", ""))
    except FileNotFoundError as exc:
        raise StoreError(
            f"{group}: missing array ({exc}); was the store written by engine scan >= 0.1?"
        ) from None
    return ids, ra, dec, tile


def read_shard_cutouts(store: Path, shard_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(object_id, images)`` of one shard."""
    ids = zarr.open_array(str(store / shard_id / "object_id"), mode="r")
    images = zarr.open_array(str(store / shard_id / "images"), mode="r")
    return np.asarray(ids[:]), np.asarray(images[:])


def store_fingerprint(store: Path, shard_ids: list[str]) -> str:
    """sha256 of every shard's metadata and catalogue arrays (not the image bytes)."""
    h = hashlib.sha256()
    for shard_id in shard_ids:
        group = store / shard_id
        for path in sorted(group.rglob("*")):
            rel = path.relative_to(group).as_posix()
            if path.is_file() and not rel.startswith("images/c"):
                h.update(f"{shard_id}/{rel};".encode())
                h.update(path.read_bytes())
    return h.hexdigest()
