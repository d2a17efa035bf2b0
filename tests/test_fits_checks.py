"""lensfind.fits_checks: band registration in pixels, FITS checksums where a header has them."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from lensfind.errors import TileReadError
from lensfind.fits_checks import WCS_TOLERANCE_PX, band_wcs, checksum_problem, wcs_offset_px

SHAPE = (400, 600)


def _wcs(crpix=(300.0, 200.0), rotation_deg=0.0) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [55.0, -30.0]
    w.wcs.crpix = list(crpix)
    scale = 0.263 / 3600
    t = np.deg2rad(rotation_deg)
    w.wcs.cd = scale * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return w


def test_a_shift_of_the_reference_pixel_is_measured_in_pixels():
    assert wcs_offset_px(_wcs(), _wcs(), SHAPE) == pytest.approx(0.0, abs=1e-8)
    assert wcs_offset_px(_wcs(), _wcs(crpix=(303.0, 196.0)), SHAPE) == pytest.approx(5.0, rel=1e-6)


def test_a_rotation_is_largest_at_the_corner_farthest_from_the_centre():
    theta = np.deg2rad(0.01)
    far = np.hypot(599 - 299, 399 - 199)  # corner (599, 399) from CRPIX (300, 200), 1-based
    got = wcs_offset_px(_wcs(), _wcs(rotation_deg=0.01), SHAPE)
    assert got == pytest.approx(far * theta, rel=1e-3)


def test_band_wcs_refuses_a_band_beyond_the_tolerance():
    ref = band_wcs("T_g.fits", _wcs().to_header(), SHAPE)
    near = _wcs(crpix=(300.0 + WCS_TOLERANCE_PX / 2, 200.0)).to_header()
    assert band_wcs("T_r.fits", near, SHAPE, ("T_g.fits", ref)) is None
    far = _wcs(crpix=(376.0, 200.0)).to_header()
    with pytest.raises(TileReadError, match=r"T_i.fits: WCS differs from T_g.fits by 76 px"):
        band_wcs("T_i.fits", far, SHAPE, ("T_g.fits", ref))
    with pytest.raises(TileReadError, match=r"T_z\.fits: no celestial WCS"):
        band_wcs("T_z.fits", fits.Header(), SHAPE, ("T_g.fits", ref))


def test_checksums_are_verified_only_where_the_header_has_them(tmp_path):
    data = np.arange(100 * 120, dtype=np.float32).reshape(100, 120)
    plain, signed = tmp_path / "plain.fits", tmp_path / "signed.fits"
    fits.PrimaryHDU(data).writeto(plain)
    fits.PrimaryHDU(data).writeto(signed, checksum=True)
    for path in (plain, signed):
        with fits.open(path) as hdul:
            assert checksum_problem(path, hdul[0]) is None
    with fits.open(signed) as hdul:
        at = hdul.fileinfo(0)["datLoc"] + 4 * 500
    raw = bytearray(signed.read_bytes())
    raw[at] ^= 0x01
    damaged = tmp_path / "damaged.fits"  # a new file: its own identity
    damaged.write_bytes(bytes(raw))
    with fits.open(damaged) as hdul:
        assert "fails its DATASUM" in checksum_problem(damaged, hdul[0])
