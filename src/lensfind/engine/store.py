"""The run's cutout store: zarr v3, one array group per shard, one writer per shard.

Layout of ``cutouts.zarr``::

    <shard_id>/images     (N, bands, H, W) float32, counts (unnormalised)
    <shard_id>/object_id  (N,) int64

Each shard's group is written under a temporary name by the one task that owns
the shard and renamed into place, so concurrent writers never share a chunk and
a killed task leaves no half-written group under a real name.
"""

import shutil
from pathlib import Path

import numpy as np
import zarr

STORE_NAME = "cutouts.zarr"


def write_shard_cutouts(
    store: Path, shard_id: str, object_id: np.ndarray, images: np.ndarray
) -> None:
    """Write one shard's cutouts (only valid stamps) atomically into the store."""
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
    ids = group.create_array("object_id", shape=(len(object_id),), dtype="int64", chunks=(n,))
    if len(object_id):
        ids[:] = object_id
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def read_shard_cutouts(store: Path, shard_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(object_id, images)`` of one shard."""
    ids = zarr.open_array(str(store / shard_id / "object_id"), mode="r")
    images = zarr.open_array(str(store / shard_id / "images"), mode="r")
    return np.asarray(ids[:]), np.asarray(images[:])
