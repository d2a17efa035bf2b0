"""lensfind.engine.plan: objects -> tiles -> shards, and the input fingerprint."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensfind.engine.catalog import read_catalog
from lensfind.engine.plan import (
    NO_TILE,
    Plan,
    assign_tiles,
    available_tiles,
    healpix29,
    make_plan,
)
from lensfind.errors import CatalogError
from lensfind.surveys import get_survey

DES = get_survey("des_y3")


def _check_partition(plan: Plan, catalog: pa.Table, shard_size: int) -> None:
    rows = [r for s in plan.shards for r in s.rows]
    assert sorted(rows) == list(range(catalog.num_rows)), "every row in exactly one shard"
    assert plan.n_objects == catalog.num_rows
    assert all(1 <= len(s.rows) <= shard_size for s in plan.shards)
    ids = catalog.column("object_id").to_numpy()
    hpx = healpix29(catalog)
    keys_by_tile: dict[str, list[tuple[int, int]]] = {}
    for s in plan.shards:
        keys_by_tile.setdefault(s.tile, []).extend((int(hpx[r]), int(ids[r])) for r in s.rows)
    for keys in keys_by_tile.values():
        assert keys == sorted(keys), "shards in HEALPix order, then object_id, within a tile"
    shard_ids = [s.shard_id for s in plan.shards]
    assert len(set(shard_ids)) == len(shard_ids)


@pytest.mark.parametrize("shard_size", [1, 3, 8, 16, 1000])
def test_plan_partitions_the_region_catalogue(region, catalog, shard_size):
    plan = make_plan(catalog, region / "catalog.parquet", region, DES, shard_size)
    _check_partition(plan, catalog, shard_size)
    tiles = catalog.column("tile").to_pylist()
    for s in plan.shards:
        assert {tiles[r] for r in s.rows} == {s.tile}
    assert {s.tile for s in plan.shards} == set(available_tiles(region, DES))
    assert plan.bands == DES.band_names
    assert plan.cutout_px == DES.cutout_px


@settings(max_examples=60, deadline=None, database=None)
@given(
    ids=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=60, unique=True),
    tile_choice=st.lists(st.sampled_from(["A", "B", "C", None]), min_size=60, max_size=60),
    shard_size=st.integers(1, 10),
)
def test_plan_partition_property(region, ids, tile_choice, shard_size):
    tiles = tile_choice[: len(ids)]
    catalog = pa.table(
        {
            "object_id": pa.array(ids, type=pa.int64()),
            "ra": pa.array(np.linspace(0, 1, len(ids))),
            "dec": pa.array(np.zeros(len(ids))),
            "tile": pa.array(tiles, type=pa.string()),
        }
    )
    # the catalogue file is only hashed; the tiles need not exist for planning
    plan = make_plan(catalog, region / "catalog.parquet", region, DES, shard_size)
    _check_partition(plan, catalog, shard_size)
    for s in plan.shards:
        assert {tiles[r] or NO_TILE for r in s.rows} == {s.tile}
    by_tile = Counter(t or NO_TILE for t in tiles)
    for tile, n in by_tile.items():
        shards = [s for s in plan.shards if s.tile == tile]
        assert len(shards) == -(-n // shard_size)  # ceil: only the last shard is short


def test_tiles_from_wcs_footprints_without_tile_column(region, catalog, tmp_path):
    no_tile = catalog.drop_columns(["tile"])
    assigned = assign_tiles(no_tile, region, DES)
    np.testing.assert_array_equal(assigned, np.array(catalog.column("tile").to_pylist()))
    path = tmp_path / "catalog.parquet"
    pq.write_table(no_tile, path)
    plan = make_plan(no_tile, path, region, DES, 8)
    with_col = make_plan(catalog, region / "catalog.parquet", region, DES, 8)
    assert [(s.tile, s.rows) for s in plan.shards] == [(s.tile, s.rows) for s in with_col.shards]


def test_objects_on_no_tile_get_the_empty_tile(region, catalog, tmp_path):
    no_tile = catalog.drop_columns(["tile"])
    ra = no_tile.column("ra").to_numpy()
    far = pa.table(
        {
            "object_id": pa.array([1, 2, 3], type=pa.int64()),
            "ra": pa.array([ra[0] + 10.0, ra[0] - 20.0, np.nan]),
            "dec": pa.array([-30.0, 10.0, -30.0]),
        }
    )
    cat = pa.concat_tables([no_tile.select(["object_id", "ra", "dec"]), far])
    path = tmp_path / "catalog.parquet"
    pq.write_table(cat, path)
    plan = make_plan(read_catalog(path), path, region, DES, 8)
    off = [s for s in plan.shards if s.tile == NO_TILE]
    assert len(off) == 1
    assert off[0].shard_id == "no-tile-0000"
    assert sorted(off[0].rows) == [cat.num_rows - 3, cat.num_rows - 2, cat.num_rows - 1]
    _check_partition(plan, cat, 8)


def test_missing_tile_value_means_no_tile(region, catalog):
    tiles = catalog.column("tile").to_pylist()
    tiles[0] = None
    cat = catalog.set_column(
        catalog.schema.get_field_index("tile"), "tile", pa.array(tiles, type=pa.string())
    )
    plan = make_plan(cat, region / "catalog.parquet", region, DES, 8)
    off = [s for s in plan.shards if s.tile == NO_TILE]
    assert [s.rows for s in off] == [(0,)]


def test_shard_size_must_be_positive(region, catalog):
    with pytest.raises(CatalogError, match="shard size"):
        make_plan(catalog, region / "catalog.parquet", region, DES, 0)


def _plan(data_dir: Path, shard_size: int = 8) -> Plan:
    path = data_dir / "catalog.parquet"
    return make_plan(read_catalog(path), path, data_dir, DES, shard_size)


def test_fingerprint_is_stable(region, copy_region):
    a, b = _plan(region), _plan(region)
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64
    copy = copy_region()
    for p in copy.iterdir():  # newer mtimes, same bytes: same inputs
        os.utime(p, (1e9, 1e9))
    assert _plan(copy).fingerprint == a.fingerprint


def test_fingerprint_changes_with_the_catalogue_bytes(region, copy_region):
    copy = copy_region()
    base = _plan(copy).fingerprint
    table = pq.read_table(copy / "catalog.parquet")
    extra = table.slice(0, 1).set_column(0, "object_id", pa.array([42], type=pa.int64()))
    pq.write_table(pa.concat_tables([table, extra]), copy / "catalog.parquet")
    assert _plan(copy).fingerprint != base


def test_fingerprint_changes_with_a_tile_file_size(region, copy_region):
    copy = copy_region()
    base = _plan(copy).fingerprint
    band_file = copy / f"{available_tiles(copy, DES)[1]}_i.fits"
    with open(band_file, "ab") as f:
        f.write(b"\0" * 2880)
    assert _plan(copy).fingerprint != base


def test_fingerprint_changes_with_the_shard_size(region):
    assert _plan(region, 8).fingerprint != _plan(region, 9).fingerprint


def test_plan_write_read_round_trip(region, tmp_path):
    plan = _plan(region, 5)
    path = tmp_path / "plan.json"
    plan.write(path)
    assert Plan.read(path) == plan


def test_shards_are_healpix_ordered_patches(region, catalog):
    from lensfind.engine.plan import healpix29, make_plan
    from lensfind.surveys import get_survey

    plan = make_plan(catalog, region / "catalog.parquet", region, get_survey("des_y3"), 5)
    hpx = healpix29(catalog)
    for tile in {s.tile for s in plan.shards}:
        rows = [r for s in plan.shards if s.tile == tile for r in s.rows]
        assert (np.diff(hpx[rows]) >= 0).all()  # one sweep along the HEALPix curve
    assert sorted(r for s in plan.shards for r in s.rows) == list(range(catalog.num_rows))


def test_healpix_index_matches_a_reference_and_flags_bad_positions():
    import astropy.units as u
    import pyarrow as pa
    from astropy_healpix import HEALPix

    from lensfind.engine.plan import healpix29

    ra = np.array([0.0, 45.0, 359.9, 120.0, np.nan])
    dec = np.array([0.0, -30.0, 89.0, 95.0, 0.0])
    got = healpix29(pa.table({"ra": ra, "dec": dec}))
    ref = HEALPix(nside=2**29, order="nested").lonlat_to_healpix(ra[:3] * u.deg, dec[:3] * u.deg)
    assert got[:3].tolist() == ref.tolist() and got[3:].tolist() == [-1, -1]


def test_plan_json_holds_row_ranges_not_every_row(tmp_path):
    import json

    from lensfind.engine.plan import Shard, row_ranges

    assert row_ranges((5, 6, 7, 2, 3, 9)) == [[5, 8], [2, 4], [9, 10]]
    assert row_ranges(()) == []
    shards = (Shard("T-0000", "T", tuple(range(1000, 1256))), Shard("T-0001", "T", (7, 3, 4)))
    plan = Plan("des_y3", ("g",), 100, "d", 259, "f" * 64, shards)
    path = tmp_path / "plan.json"
    plan.write(path)
    data = json.loads(path.read_text())
    assert [s["ranges"] for s in data["shards"]] == [[[1000, 1256]], [[7, 8], [3, 5]]]
    assert "rows" not in data["shards"][0]
    assert Plan.read(path) == plan
    for s in data["shards"]:  # plans written before the ranges still read
        s["rows"] = [r for a, b in s.pop("ranges") for r in range(a, b)]
    path.write_text(json.dumps(data))
    assert Plan.read(path) == plan
