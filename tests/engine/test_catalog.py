"""lensfind.engine.catalog: reading and validating object catalogues."""

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from lensfind.engine.catalog import read_catalog
from lensfind.errors import CatalogError
from lensfind.simulation.datadir import catalog_path


def _write(table: pa.Table, path):
    pq.write_table(table, path)
    return path


def test_region_catalogue_reads(region, catalog):
    table = read_catalog(region / "catalog.parquet")
    assert table.equals(catalog)
    assert {"object_id", "ra", "dec", "tile", "mag_r"} <= set(table.column_names)


def test_missing_ra_names_the_file_and_the_column(catalog, tmp_path):
    path = _write(catalog.drop_columns(["ra"]), tmp_path / "catalog.parquet")
    with pytest.raises(CatalogError) as info:
        read_catalog(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "missing column(s) ra" in msg


def test_missing_several_columns(catalog, tmp_path):
    path = _write(catalog.drop_columns(["ra", "dec"]), tmp_path / "catalog.parquet")
    with pytest.raises(CatalogError, match=r"missing column\(s\) ra, dec"):
        read_catalog(path)


def test_duplicate_object_id(catalog, tmp_path):
    ids = catalog.column("object_id").to_numpy().copy()
    ids[5] = ids[2]
    path = _write(catalog.set_column(0, "object_id", pa.array(ids)), tmp_path / "c.parquet")
    with pytest.raises(CatalogError) as info:
        read_catalog(path)
    assert str(path) in str(info.value)
    assert f"object_id {ids[2]} appears more than once" in str(info.value)


@pytest.mark.parametrize("ids", [pa.array(np.arange(3, dtype=float)), pa.array(["a", "b", "c"])])
def test_non_integer_object_id(ids, tmp_path):
    table = pa.table({"object_id": ids, "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0]})
    path = _write(table, tmp_path / "c.parquet")
    with pytest.raises(CatalogError, match="object_id must be integer") as info:
        read_catalog(path)
    assert str(path) in str(info.value)


def test_non_float_coordinates(tmp_path):
    table = pa.table({"object_id": [1, 2], "ra": ["1", "2"], "dec": [0.0, 0.0]})
    path = _write(table, tmp_path / "c.parquet")
    with pytest.raises(CatalogError, match="column ra must be float degrees"):
        read_catalog(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        read_catalog(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(CatalogError, match="cannot read catalogue") as info:
        read_catalog(bad)
    assert str(bad) in str(info.value)


def test_catalog_path_prefers_parquet_then_fits(region, tmp_path):
    assert catalog_path(region) == region / "catalog.parquet"
    with pytest.raises(CatalogError, match=re.escape("no catalog.parquet, catalog.fits or")):
        catalog_path(tmp_path)
    (tmp_path / "catalog.fits").write_bytes(b"")
    assert catalog_path(tmp_path) == tmp_path / "catalog.fits"


def test_fits_catalogue_reads_the_same_as_parquet(catalog, tmp_path):
    path = tmp_path / "catalog.fits"
    columns = {}
    for name in catalog.column_names:
        values = catalog[name].to_numpy(zero_copy_only=False)
        columns[name] = values.astype(str) if values.dtype == object else values
    Table(columns).write(path, format="fits")
    fits_table = read_catalog(path)
    assert fits_table.column_names == catalog.column_names
    for name in catalog.column_names:
        assert fits_table[name].to_pylist() == catalog[name].to_pylist(), name


def test_empty_catalogue_is_named(tmp_path):
    path = tmp_path / "catalog.parquet"
    empty = {"object_id": pa.array([], pa.int64()), "ra": pa.array([], pa.float64()),
             "dec": pa.array([], pa.float64())}  # fmt: skip
    pq.write_table(pa.table(empty), path)
    with pytest.raises(CatalogError, match=re.escape(f"{path}: the catalogue is empty")):
        read_catalog(path)


def test_a_file_that_is_not_a_table_is_named(tmp_path):
    path = tmp_path / "catalog.parquet"
    path.write_text("hello")
    with pytest.raises(CatalogError, match=re.escape(f"{path}: cannot read catalogue")):
        read_catalog(path)


def test_hats_catalogue_reads_like_parquet_and_names_its_problems(catalog, tmp_path):
    from lensfind.engine.catalog import catalog_sha256, is_hats
    from lensfind.testing import write_hats

    hats = write_hats(catalog, tmp_path / "catalog.hats", order=2)
    assert is_hats(hats) and len(list((hats / "dataset").rglob("*.parquet"))) >= 1
    table = read_catalog(hats)
    assert "_healpix_29" in table.column_names
    order = np.argsort(table["object_id"].to_numpy())
    for name in catalog.column_names:
        np.testing.assert_array_equal(table[name].to_numpy(zero_copy_only=False)[order],
                                      catalog[name].to_numpy(zero_copy_only=False))  # fmt: skip
    assert len(catalog_sha256(hats)) == 64
    empty = tmp_path / "empty.hats"
    (empty / "dataset").mkdir(parents=True)
    (empty / "hats.properties").write_text("hats_col_ra=RA\n")
    with pytest.raises(CatalogError, match="without partition files"):
        read_catalog(empty)
