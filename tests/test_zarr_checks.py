"""lensfind.zarr_checks: the store's small arrays are zarr's bytes, and damage is an error."""

import json

import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec

from lensfind.errors import StoreError
from lensfind.zarr_checks import (
    attributes_sha256,
    checked_attributes,
    one_chunk_bytes,
    read_array,
    read_columns,
)


def _zarr_array(path, values, crc=True):
    codecs = [Crc32cCodec()] if crc else None
    arr = zarr.create_array(str(path), shape=values.shape, dtype=values.dtype,
                            chunks=values.shape, compressors=codecs)  # fmt: skip
    arr[:] = values
    return path


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_one_chunk_bytes_are_what_zarr_writes_and_reads(tmp_path, dtype):
    values = (np.arange(37) * 1_000_003 - 5).astype(dtype)
    path = _zarr_array(tmp_path / "a", values)
    assert (path / "c" / "0").read_bytes() == one_chunk_bytes(values)
    np.testing.assert_array_equal(read_array(path), values)


def test_a_missing_short_or_damaged_chunk_is_an_error_never_a_fill_value(tmp_path):
    values = np.arange(1, 9, dtype=np.int64)
    path = _zarr_array(tmp_path / "object_id", values)
    chunk = path / "c" / "0"
    raw = chunk.read_bytes()
    chunk.write_bytes(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:])
    with pytest.raises(StoreError, match=r"object_id/c/0: fails its crc32c"):
        read_array(path)
    chunk.write_bytes(raw[:-5])
    with pytest.raises(StoreError, match=r"63 bytes, expected 68"):
        read_array(path)
    chunk.unlink()
    assert np.asarray(zarr.open_array(str(path))[:]).tolist() == [0] * 8  # what zarr would say
    with pytest.raises(StoreError, match=r"object_id/c/0: missing \(object_id of 8 objects\)"):
        read_array(path)


def test_an_array_without_a_crc_is_read_with_its_size_checked(tmp_path):
    values = np.linspace(-30, -29, 5)
    path = _zarr_array(tmp_path / "dec", values, crc=False)
    np.testing.assert_array_equal(read_array(path), values)
    (path / "c" / "0").write_bytes(b"\0" * 7)
    with pytest.raises(StoreError, match="7 bytes, expected 40"):
        read_array(path)


def test_read_columns_makes_an_unreadable_array_null(tmp_path):
    _zarr_array(tmp_path / "g" / "object_id", np.arange(4, dtype=np.int64))
    _zarr_array(tmp_path / "g" / "ra", np.arange(3, dtype=np.float64))  # another length
    columns, problem = read_columns(tmp_path / "g", 4, {"object_id": "int64", "ra": "float64",
                                                        "dec": "float64"})  # fmt: skip
    assert columns["object_id"].to_pylist() == [0, 1, 2, 3]
    assert columns["ra"].null_count == columns["dec"].null_count == 4
    assert "ra: 3 values, 4 expected; the ra values are unknown" in problem
    assert "dec: no zarr.json" in problem


def test_attributes_are_checked_against_their_sha256(tmp_path):
    attrs = {"tile": "T", "bands": ["g", "r"], "encoding": {"scale": [1.5, 2.0]}}
    signed = {**attrs, "sha256": attributes_sha256(attrs)}
    assert checked_attributes(tmp_path, signed) == signed
    assert checked_attributes(tmp_path, attrs) == attrs  # older stores: nothing to check
    tampered = json.loads(json.dumps(signed))
    tampered["encoding"]["scale"][1] = 4.0
    with pytest.raises(StoreError, match="attributes fail their sha256"):
        checked_attributes(tmp_path, tampered)
