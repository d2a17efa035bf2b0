"""lensfind.engine.store: the zarr v3 cutout store."""

import numpy as np
import pytest
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


def test_one_sharded_compressed_file_per_array(tmp_path):
    import json

    rng = np.random.default_rng(0)
    images = rng.normal(0, 3, (40, 4, 20, 20)).astype(np.float32)
    store = tmp_path / "s.zarr"
    write_shard_cutouts(store, "T-0000", np.arange(40), images, tile="T", bands=tuple("griz"))
    meta = json.loads((store / "T-0000" / "images" / "zarr.json").read_text())
    (codec,) = meta["codecs"]
    assert codec["name"] == "sharding_indexed"
    assert codec["configuration"]["chunk_shape"] == [16, 4, 20, 20]
    assert "zstd" in [c["name"] for c in codec["configuration"]["codecs"]]
    files = [p for p in (store / "T-0000" / "images").rglob("*") if p.is_file()]
    assert len(files) == 2  # zarr.json + one shard file holding every chunk
    np.testing.assert_array_equal(read_shard_cutouts(store, "T-0000")[1], images)


def test_float16_storage_rounds_within_its_bound_and_counts_clipping(tmp_path):
    rng = np.random.default_rng(1)
    scale = np.array([3.0, 4.0, 5.0, 6.0], np.float32)
    images = rng.normal(0, 3, (10, 4, 20, 20)).astype(np.float32)
    images[0, 0, 10, 10] = 1e5  # bright but representable: 1e5 / 3 < 65504
    images[1, 2, 3, 3] = 1e6  # beyond float16 * scale: clipped and counted
    store = tmp_path / "s.zarr"
    clipped = write_shard_cutouts(store, "T-0000", np.arange(10), images, dtype="float16",
                                  scale=scale)  # fmt: skip
    assert clipped == 1
    _, back = read_shard_cutouts(store, "T-0000")
    assert back.dtype == np.float32
    ok = np.ones(images.shape, bool)
    ok[1, 2, 3, 3] = False
    unit = scale.reshape(1, -1, 1, 1) * np.ones_like(images)
    # float16: relative error <= 2^-11 of the value (in units of scale), subnormals aside
    err = np.abs(back - images)[ok]
    assert (err <= np.maximum(np.abs(images)[ok] * 2.0**-11, unit[ok] * 2.0**-24)).all()
    assert back[1, 2, 3, 3] == pytest.approx(65504 * 5.0)

    def data_bytes(path):
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix != ".json"]
        return sum(p.stat().st_size for p in files)

    bytes16 = data_bytes(store / "T-0000" / "images")
    write_shard_cutouts(tmp_path / "f32.zarr", "T-0000", np.arange(10), images)
    bytes32 = data_bytes(tmp_path / "f32.zarr" / "T-0000" / "images")
    assert bytes16 < 0.6 * bytes32


def test_uncompressed_store_option(tmp_path):
    import json

    images = np.random.default_rng(2).normal(0, 3, (20, 4, 20, 20)).astype(np.float32)
    store = tmp_path / "s.zarr"
    write_shard_cutouts(store, "T-0000", np.arange(20), images, compression="none")
    meta = json.loads((store / "T-0000" / "images" / "zarr.json").read_text())
    inner = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
    assert "zstd" not in inner
    np.testing.assert_array_equal(read_shard_cutouts(store, "T-0000")[1], images)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_shard_file_is_byte_identical_to_zarrs_own_writer(tmp_path, compression):
    from zarr.codecs import Crc32cCodec, ZstdCodec

    from lensfind.engine.store import CHUNK_CUTOUTS, ZSTD_LEVEL

    images = np.random.default_rng(3).normal(0, 3, (37, 4, 10, 10)).astype(np.float32)
    store = tmp_path / "s.zarr"
    write_shard_cutouts(store, "T-0000", np.arange(37), images, compression=compression)
    ref = zarr.create_array(
        str(tmp_path / "ref.zarr"), shape=images.shape, dtype="float32",
        chunks=(CHUNK_CUTOUTS, 4, 10, 10), shards=(48, 4, 10, 10),
        compressors=[ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()] if compression == "zstd"
        else [Crc32cCodec()],
    )  # fmt: skip
    ref[:] = images
    key = "c/0/0/0/0"
    ours = (store / "T-0000" / "images" / key).read_bytes()
    assert ours == (tmp_path / "ref.zarr" / key).read_bytes()
    arr = zarr.open_array(str(store / "T-0000" / "images"), mode="r")
    np.testing.assert_array_equal(arr[20:35], images[20:35])  # partial reads use the index
