"""lensfind.engine.tiles: reading FITS tiles and their footprints."""

import os
import re
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from lensfind.engine.plan import available_tiles
from lensfind.engine.tiles import read_tile, tile_footprint_contains
from lensfind.errors import TileReadError
from lensfind.surveys import get_survey

DES = get_survey("des_y3")
BANDS = DES.band_names


@pytest.fixture(scope="module")
def tile(region):
    return available_tiles(region, DES)[0]


def test_read_tile(region, tile):
    with read_tile(region, tile, BANDS) as t:
        assert t.name == tile
        assert t.shape == (400, 400)
        assert len(t.images) == len(BANDS)
        # memory-mapped FITS data: big-endian float32, not copied into memory
        assert all(img.dtype.kind == "f" and img.dtype.itemsize == 4 for img in t.images)
        assert all(isinstance(img.base, np.memmap) or img.base is not None for img in t.images)
        assert [p.name for p in t.paths] == [f"{tile}_{b}.fits" for b in BANDS]
        assert t.wcs.has_celestial
        np.testing.assert_array_equal(t.images[1], fits.getdata(region / f"{tile}_r.fits"))
    assert t.images == []


def test_truncated_fits_names_the_file(copy_region, tile):
    data = copy_region()
    path = data / f"{tile}_i.fits"
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(TileReadError) as info:
        read_tile(data, tile, BANDS)
    assert str(info.value).startswith(f"{tile}_i.fits:")


def test_truncated_fits_without_warnings_as_errors(copy_region, tile):
    # Outside pytest astropy only warns about the truncation; the read must still fail cleanly.
    data = copy_region()
    path = data / f"{tile}_i.fits"
    os.truncate(path, path.stat().st_size // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TileReadError) as info:
            read_tile(data, tile, BANDS)
    assert str(info.value).startswith(f"{tile}_i.fits: cannot read FITS")


def test_truncated_header_names_the_file(copy_region, tile):
    data = copy_region()
    path = data / f"{tile}_g.fits"
    os.truncate(path, 1000)
    with pytest.raises(TileReadError, match=re.escape(f"{tile}_g.fits")):
        read_tile(data, tile, BANDS)


def test_garbage_file_names_the_file(copy_region, tile):
    data = copy_region()
    (data / f"{tile}_r.fits").write_bytes(b"this is not a FITS file" * 200)
    with pytest.raises(TileReadError, match=re.escape(f"{tile}_r.fits")):
        read_tile(data, tile, BANDS)


def test_missing_band_file_names_it(copy_region, tile):
    data = copy_region()
    (data / f"{tile}_z.fits").unlink()
    with pytest.raises(TileReadError) as info:
        read_tile(data, tile, BANDS)
    msg = str(info.value)
    assert f"{tile}_z.fits" in msg
    assert "not found" in msg


def test_shape_mismatch_between_bands(copy_region, tile):
    data = copy_region()
    path = data / f"{tile}_r.fits"
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        small = np.array(hdul[0].data[:300, :350])
    fits.PrimaryHDU(small, header=header).writeto(path, overwrite=True)
    with pytest.raises(TileReadError) as info:
        read_tile(data, tile, BANDS)
    msg = str(info.value)
    assert msg.startswith(f"{tile}_r.fits:")
    assert "(300, 350)" in msg
    assert f"{tile}_g.fits" in msg


def test_tile_without_wcs(copy_region, tile):
    data = copy_region()
    path = data / f"{tile}_g.fits"
    fits.PrimaryHDU(fits.getdata(path)).writeto(path, overwrite=True)
    with pytest.raises(TileReadError, match=re.escape(f"{tile}_g.fits: no celestial WCS")):
        read_tile(data, tile, BANDS)


def test_footprint_contains(region, catalog, tile):
    ra = catalog.column("ra").to_numpy()
    dec = catalog.column("dec").to_numpy()
    on = tile_footprint_contains(region, tile, "g", ra, dec)
    np.testing.assert_array_equal(on, np.array(catalog.column("tile").to_pylist()) == tile)
    far = tile_footprint_contains(region, tile, "g", np.array([ra[0] + 5.0]), np.array([dec[0]]))
    assert not far.any()


def test_footprint_of_a_missing_tile(region):
    with pytest.raises(TileReadError, match=re.escape("NOPE_g.fits")):
        tile_footprint_contains(region, "NOPE", "g", np.array([0.0]), np.array([0.0]))


def test_catalogue_positions_land_on_their_pixels(region, tile):
    truth = pq.read_table(region / "truth.parquet").to_pydict()
    t = read_tile(region, tile, BANDS)
    cat = pq.read_table(region / "catalog.parquet").to_pydict()
    rows = [k for k, name in enumerate(cat["tile"]) if name == tile]
    x, y = t.wcs.wcs_world2pix(np.array(cat["ra"])[rows], np.array(cat["dec"])[rows], 0)
    np.testing.assert_allclose(x, np.array(truth["x_pix"])[rows], atol=1e-6)
    np.testing.assert_allclose(y, np.array(truth["y_pix"])[rows], atol=1e-6)
