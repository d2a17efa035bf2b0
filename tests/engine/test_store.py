"""lensfind.engine.store: the zarr v3 cutout store."""

import numpy as np
import zarr

from lensfind.engine.store import STORE_NAME, read_shard_cutouts, write_shard_cutouts


def _cutouts(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    return ids, rng.normal(size=(n, 4, 12, 12)).astype(np.float32)


def test_round_trip(tmp_path):
    store = tmp_path / STORE_NAME
    ids, images = _cutouts(7)
    write_shard_cutouts(store, "T-0000", ids, images)
    got_ids, got_images = read_shard_cutouts(store, "T-0000")
    np.testing.assert_array_equal(got_ids, ids)
    assert got_ids.dtype == np.int64
    np.testing.assert_array_equal(got_images, images)
    assert got_images.dtype == np.float32


def test_several_shards_and_overwrite(tmp_path):
    store = tmp_path / STORE_NAME
    a_ids, a_images = _cutouts(3, seed=1)
    b_ids, b_images = _cutouts(5, seed=2)
    write_shard_cutouts(store, "T-0000", a_ids, a_images)
    write_shard_cutouts(store, "T-0001", b_ids, b_images)
    c_ids, c_images = _cutouts(2, seed=3)
    write_shard_cutouts(store, "T-0000", c_ids, c_images)  # a rerun of the shard replaces it
    np.testing.assert_array_equal(read_shard_cutouts(store, "T-0000")[1], c_images)
    np.testing.assert_array_equal(read_shard_cutouts(store, "T-0001")[0], b_ids)


def test_empty_shard(tmp_path):
    store = tmp_path / STORE_NAME
    write_shard_cutouts(
        store, "T-0000", np.zeros(0, dtype=np.int64), np.zeros((0, 4, 12, 12), dtype=np.float32)
    )
    ids, images = read_shard_cutouts(store, "T-0000")
    assert ids.shape == (0,)
    assert images.shape == (0, 4, 12, 12)


def test_no_temporary_directories_left_behind(tmp_path):
    store = tmp_path / STORE_NAME
    for k in range(3):
        write_shard_cutouts(store, f"T-{k:04d}", *_cutouts(k + 1, seed=k))
    names = sorted(p.name for p in store.iterdir())
    assert names == ["T-0000", "T-0001", "T-0002", "zarr.json"]
    assert not [p for p in store.rglob("*") if p.name.startswith(".")]


def test_a_stale_temporary_group_is_replaced(tmp_path):
    store = tmp_path / STORE_NAME
    stale = store / ".T-0000.tmp"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("from a killed task")
    ids, images = _cutouts(2)
    write_shard_cutouts(store, "T-0000", ids, images)
    assert not stale.exists()
    np.testing.assert_array_equal(read_shard_cutouts(store, "T-0000")[0], ids)


def test_store_is_a_zarr_v3_group(tmp_path):
    store = tmp_path / STORE_NAME
    ids, images = _cutouts(4)
    write_shard_cutouts(store, "T-0000", ids, images)
    write_shard_cutouts(store, "T-0001", *_cutouts(2, seed=9))
    root = zarr.open_group(str(store), mode="r")
    assert root.metadata.zarr_format == 3
    assert sorted(root.group_keys()) == ["T-0000", "T-0001"]
    shard = root["T-0000"]
    assert shard["images"].shape == (4, 4, 12, 12)
    assert shard["images"].dtype == np.float32
    assert shard["object_id"].dtype == np.int64
    np.testing.assert_array_equal(shard["object_id"][:], ids)
    np.testing.assert_array_equal(shard["images"][:], images)
