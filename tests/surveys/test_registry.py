"""Survey registry and BandSpec photometry (sky noise from depth, zero points)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from lensfind.errors import ConfigError, LensfindError, UnknownSurveyError
from lensfind.surveys import BandSpec, SurveySpec, get_survey, list_surveys

HYP = settings(max_examples=50, deadline=None, database=None)


def test_des_y3_spec():
    des = get_survey("des_y3")
    assert des.name == "des_y3"
    assert des.band_names == ("g", "r", "i", "z")
    assert des.pixel_scale_arcsec == 0.263
    assert des.cutout_px == 100
    assert_allclose(des.cutout_arcsec, 26.3, rtol=1e-12)
    fwhm = {"g": 1.12, "r": 0.96, "i": 0.88, "z": 0.85}
    for band in des.bands:
        assert band.zero_point_mag == 30.0
        assert band.pixel_scale_arcsec == 0.263
        assert band.psf_fwhm_arcsec == fwhm[band.name]
    assert des.band("i").psf_fwhm_arcsec == 0.88


def test_kids_dr3_spec():
    kids = get_survey("kids_dr3")
    assert kids.band_names == ("r",)
    assert kids.pixel_scale_arcsec == 0.2
    assert kids.cutout_px == 101


def test_euclid_wide_spec_and_mixed_grids():
    euc = get_survey("euclid_wide")
    assert euc.band_names == ("VIS", "Y", "J", "H")
    scales = {b.name: b.pixel_scale_arcsec for b in euc.bands}
    assert scales == {"VIS": 0.1, "Y": 0.3, "J": 0.3, "H": 0.3}

    with pytest.raises(ConfigError) as info:
        _ = euc.pixel_scale_arcsec
    msg = str(info.value)
    assert "euclid_wide" in msg
    assert 'VIS 0.1"/px' in msg
    for name in ("Y", "J", "H"):
        assert f'{name} 0.3"/px' in msg
    # cutout_arcsec needs a single grid too
    with pytest.raises(ConfigError):
        _ = euc.cutout_arcsec

    vis = euc.select(("VIS",))
    assert vis.band_names == ("VIS",)
    assert vis.pixel_scale_arcsec == 0.1
    assert vis.cutout_px == 200
    assert_allclose(vis.cutout_arcsec, 20.0, rtol=1e-12)

    nisp = euc.select(("H", "Y"), cutout_px=66)
    assert nisp.band_names == ("H", "Y")  # requested order, not survey order
    assert nisp.pixel_scale_arcsec == 0.3
    assert nisp.cutout_px == 66
    assert nisp.name == "euclid_wide"
    # selecting does not touch the registered spec
    assert get_survey("euclid_wide").band_names == ("VIS", "Y", "J", "H")


def test_select_unknown_band_names_it():
    with pytest.raises(ConfigError, match="'u'") as info:
        get_survey("des_y3").select(("g", "u"))
    assert "des_y3" in str(info.value)


def test_unknown_survey_error():
    with pytest.raises(UnknownSurveyError) as info:
        get_survey("lsst_y10")
    msg = str(info.value)
    assert "lsst_y10" in msg
    for known in ("des_y3", "euclid_wide", "kids_dr3"):
        assert known in msg
    # str() is the plain message, not KeyError's repr-quoted form
    assert not msg.startswith('"')
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, LensfindError)


def test_list_surveys_sorted_and_consistent():
    surveys = list_surveys()
    names = [s.name for s in surveys]
    assert names == sorted(names)
    assert set(names) == {"des_y3", "kids_dr3", "euclid_wide"}
    for s in surveys:
        assert get_survey(s.name) is s


def test_specs_are_frozen():
    des = get_survey("des_y3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        des.cutout_px = 64  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        des.bands[0].zero_point_mag = 25.0  # type: ignore[misc]
    assert des.cutout_px == 100
    assert des.bands[0].zero_point_mag == 30.0


def _aperture_pixel_area(radius_px: float, sub: int = 40) -> float:
    """Number of pixels (fractional at the edge) inside a circle of ``radius_px``.

    Each pixel is split into ``sub x sub`` sub-pixels whose centres are tested, so
    the result is the flat-top aperture area summed on a real pixel grid.
    """
    half = math.ceil(radius_px) + 1
    edges = np.arange(-half, half + 1)  # pixel corners
    offs = (np.arange(sub) + 0.5) / sub
    c = (edges[:-1, None] + offs[None, :]).ravel()  # sub-pixel centres
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= radius_px**2
    return inside.sum() / sub**2


@pytest.mark.parametrize(
    ("survey", "band"),
    [
        ("des_y3", "g"),
        ("des_y3", "r"),
        ("des_y3", "z"),
        ("kids_dr3", "r"),
        ("euclid_wide", "VIS"),
        ("euclid_wide", "H"),
    ],
)
def test_sky_sigma_gives_snr_10_at_depth(survey, band):
    bs = get_survey(survey).band(band)
    sigma = bs.sky_sigma_counts
    # total counts of a depth-magnitude source from the AB zero point definition
    flux = 10 ** ((bs.zero_point_mag - bs.depth_10sigma_mag) / 2.5)
    # flat-top aperture of the quoted diameter on the pixel grid
    radius_px = bs.depth_aperture_arcsec / 2 / bs.pixel_scale_arcsec
    n_pix = _aperture_pixel_area(radius_px)
    # signal spread evenly over the aperture: the sum is the flux; the sky
    # noise of independent pixels adds in quadrature over the aperture
    per_pixel = flux / n_pix
    signal = per_pixel * n_pix
    noise = sigma * math.sqrt(n_pix)
    # tolerance: sub-pixel sampling of the circular edge (< 0.2% in area)
    assert_allclose(signal / noise, 10.0, rtol=2e-3)


def test_sky_sigma_scales_with_pixel_and_depth():
    base = BandSpec("x", 0.2, 1.0, 24.0)
    finer = dataclasses.replace(base, pixel_scale_arcsec=0.1)
    deeper = dataclasses.replace(base, depth_10sigma_mag=26.5)
    # half the pixel size: four times as many pixels in the aperture -> sigma / 2
    assert_allclose(finer.sky_sigma_counts, base.sky_sigma_counts / 2, rtol=1e-12)
    # 2.5 mag deeper: ten times less flux at S/N 10 -> sigma / 10
    assert_allclose(deeper.sky_sigma_counts, base.sky_sigma_counts / 10, rtol=1e-12)


@HYP
@given(
    counts=st.floats(1e-3, 1e9),
    zp=st.floats(20.0, 35.0),
)
def test_mag_to_counts_inverts_zero_point(counts, zp):
    bs = BandSpec("x", 0.2, 1.0, 24.0, zero_point_mag=zp)
    mag = zp - 2.5 * math.log10(counts)
    assert_allclose(bs.mag_to_counts(mag), counts, rtol=1e-10)
    assert isinstance(bs.mag_to_counts(mag), float)


def test_mag_to_counts_fixed_points():
    bs = get_survey("des_y3").band("g")
    assert_allclose(bs.mag_to_counts(30.0), 1.0, rtol=1e-14)
    assert_allclose(bs.mag_to_counts(25.0), 100.0, rtol=1e-12)
    assert_allclose(bs.mag_to_counts(20.0) / bs.mag_to_counts(22.5), 10.0, rtol=1e-12)


def test_survey_spec_equality_ignores_notes():
    a = SurveySpec("s", "t", (BandSpec("r", 0.2, 0.7, 24.0),), 64, notes={"a": "1"})
    b = dataclasses.replace(a, notes={"b": "2"})
    assert a == b
    assert hash(a) == hash(b)
