"""lensfind.engine.shard_file: the image shard file, against zarr's reader and writer."""

import json

import numpy as np
import pytest
import zarr

from lensfind.engine.shard_file import (
    ShardFile,
    StoreError,
    read_shard_file,
    shard_file_bytes,
    shard_layout,
    shard_path,
)
from lensfind.engine.store import read_shard_cutouts, write_shard_cutouts


@pytest.mark.parametrize("compression", ["zstd", "none"])
@pytest.mark.parametrize("n", [1, 16, 37])
def test_direct_read_equals_zarrs_read(tmp_path, compression, n):
    images = np.random.default_rng(n).normal(0, 3, (n, 4, 12, 12)).astype(np.float32)
    store = tmp_path / "s.zarr"
    write_shard_cutouts(store, "T-0000", np.arange(n) + 5, images, compression=compression)
    meta = json.loads((store / "T-0000" / "images" / "zarr.json").read_text())
    assert shard_layout(meta) == ((min(n, 16), 4, 12, 12), compression == "zstd")
    ids, got = read_shard_cutouts(store, "T-0000")
    via_zarr = zarr.open_array(str(store / "T-0000" / "images"), mode="r")[:]
    np.testing.assert_array_equal(got, via_zarr)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(ids, np.arange(n) + 5)
    group = zarr.open_group(str(store / "T-0000"), mode="r")
    np.testing.assert_array_equal(group["object_id"][:], np.arange(n) + 5)


def test_other_layouts_are_read_by_zarr(tmp_path):
    """A store written by zarr with another chunking still reads (through zarr)."""
    images = np.random.default_rng(1).normal(size=(10, 4, 8, 8)).astype(np.float32)
    group = zarr.open_group(str(tmp_path / "s.zarr" / "X-0"), mode="w", zarr_format=3)
    group.create_array("images", shape=images.shape, dtype="float32", chunks=(5, 4, 8, 8))[:] = (
        images
    )
    group.create_array("object_id", shape=(10,), dtype="int64", chunks=(10,))[:] = np.arange(10)
    meta = json.loads((tmp_path / "s.zarr" / "X-0" / "images" / "zarr.json").read_text())
    assert shard_layout(meta) is None
    np.testing.assert_array_equal(read_shard_cutouts(tmp_path / "s.zarr", "X-0")[1], images)


def _written(tmp_path, compression="zstd"):
    images = np.random.default_rng(2).normal(size=(20, 4, 8, 8)).astype(np.float32)
    write_shard_cutouts(tmp_path / "s.zarr", "T-0", np.arange(20), images,
                        compression=compression)  # fmt: skip
    return shard_path(tmp_path / "s.zarr" / "T-0" / "images", 4)


def _read(path, zstd=True):
    return read_shard_file(path, (20, 4, 8, 8), "float32", (16, 4, 8, 8), zstd)


def test_truncated_file_names_the_file(tmp_path):
    path = _written(tmp_path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(StoreError, match=r"c/0/0/0/0: truncated"):
        _read(path)


def test_corrupt_index_fails_its_checksum(tmp_path):
    path = _written(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="crc32c"):
        _read(path)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_corrupt_chunk_fails_its_checksum_compressed_or_not(tmp_path, compression):
    path = _written(tmp_path, compression)
    raw = bytearray(path.read_bytes())
    raw[10:60] = b"\x00" * 50  # inside the first chunk
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="chunk 0 fails its crc32c"):
        _read(path, zstd=compression == "zstd")


def test_missing_file_is_an_error(tmp_path):
    path = _written(tmp_path, "none")
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        _read(path, zstd=False)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17])
def test_write_file_gives_the_same_bytes_with_or_without_direct_io(tmp_path, size, monkeypatch):
    from lensfind.engine import shard_file

    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    data = shard_file.scratch("test_write", (size + 4096,), np.uint8)
    start = -data.ctypes.data % 4096
    data = data[start : start + size]
    data[:] = payload
    shard_file.write_file(tmp_path / "direct" / "f", data)  # O_DIRECT where the disk allows
    monkeypatch.delattr(shard_file.os, "O_DIRECT", raising=False)
    shard_file.write_file(tmp_path / "buffered" / "f", data)
    for name in ("direct", "buffered"):
        assert (tmp_path / name / "f").read_bytes() == payload.tobytes()


def test_a_background_store_write_is_invisible_until_finished(tmp_path):
    from lensfind.engine.store import list_shards, start_shard_cutouts

    images = np.random.default_rng(2).normal(0, 3, (20, 4, 12, 12)).astype(np.float32)
    store = tmp_path / "s.zarr"
    write_shard_cutouts(store, "T-0000", np.arange(3), images[:3])
    writing = start_shard_cutouts(store, "T-0001", np.arange(20), images, background=True)
    images[:] = 0  # the bytes were copied: the caller may reuse its stamps at once
    assert list_shards(store) == ["T-0000"]
    assert writing.finish() == 0
    assert list_shards(store) == ["T-0000", "T-0001"]
    _, got = read_shard_cutouts(store, "T-0001")
    np.testing.assert_array_equal(got, np.random.default_rng(2).normal(0, 3, (20, 4, 12, 12))
                                  .astype(np.float32))  # fmt: skip


def test_a_failed_background_write_is_raised_by_finish(tmp_path, monkeypatch):
    from lensfind.engine import store as store_mod

    def broken(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod, "write_file", broken)
    images = np.zeros((4, 4, 12, 12), np.float32)
    writing = store_mod.start_shard_cutouts(tmp_path / "s.zarr", "T-0", np.arange(4), images,
                                            background=True)  # fmt: skip
    with pytest.raises(OSError, match="No space"):
        writing.finish()
    assert store_mod.list_shards(tmp_path / "s.zarr") == []


@pytest.mark.parametrize("zstd", [False, True])
@pytest.mark.parametrize("n", [0, 3, 16, 37])
def test_a_file_assembled_in_place_equals_one_made_from_the_array(n, zstd):
    """Writing cutouts into ShardFile.chunks, then sealing, gives shard_file_bytes' file."""
    rng = np.random.default_rng(n)
    data = rng.normal(0, 3, (n, 2, 3, 3)).astype(np.float16)
    want = bytes(shard_file_bytes(data, min(n, 16) or 1, zstd))
    f = ShardFile(40, (2, 3, 3), np.float16, 16, zstd)
    f.chunks[...] = 7  # leftovers of an earlier shard
    for i in range(n):
        f.chunks[i // 16, i % 16] = data[i]
    assert bytes(f.seal(n)) == want
