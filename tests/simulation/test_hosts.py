"""lensfind.simulation.hosts: host classes from catalogue columns, shapes from cutouts."""

import numpy as np
import pytest

from lensfind.simulation.hosts import (
    HOST_CLASSES,
    HostSelection,
    classify_hosts,
    default_hosts,
    light_shape,
)
from lensfind.simulation.profiles import gaussian_otf, sersic

SEL = HostSelection(mag_band="r", mag_range=(17.0, 20.5), colour_cuts=(("g", "r", 1.0),))


def _columns(**cols):
    return {k: np.asarray(v, dtype=float) for k, v in cols.items()}


def test_each_class_from_its_columns():
    cols = _columns(
        mag_g=[19.5, 19.5, 19.0, 19.5, 22.5, np.nan],
        mag_r=[18.0, 18.0, 18.5, 18.0, 21.0, 18.0],
        extended_class=[3, 3, 3, 0, 3, 3],
        flags=[0, 2, 0, 0, 0, 0],
    )
    out = classify_hosts(cols, SEL, 6)
    assert out.host_class.tolist() == ["red_isolated", "red_blended", "blue", "star",
                                       "out_of_range", "unclassified"]  # fmt: skip
    assert out.eligible.tolist() == [True, False, False, False, False, True]
    assert sum(out.counts().values()) == 6 and set(out.counts()) == set(HOST_CLASSES)
    assert out.missing == ()


def test_a_catalogue_without_a_column_is_not_cut_on_it_and_says_so():
    out = classify_hosts(_columns(mag_g=[19.5], mag_r=[18.0]), SEL, 1)
    assert out.host_class.tolist() == ["red_isolated"]
    assert set(out.missing) == {"flags", "extended_class"}
    bare = classify_hosts({}, SEL, 3)
    assert bare.host_class.tolist() == ["unclassified"] * 3
    assert {"mag_g", "mag_r"} <= set(bare.missing)


def test_stars_never_host_whatever_the_classes_allowed():
    anything = HostSelection(classes=tuple(c for c in HOST_CLASSES if c != "star"))
    out = classify_hosts(_columns(mag_r=[18.0, 18.0], extended_class=[1, 2]), anything, 2)
    assert out.eligible.tolist() == [False, True]
    with pytest.raises(ValueError, match="unknown host classes"):
        HostSelection(classes=("red", "lrg"))


def test_every_survey_has_a_default():
    assert default_hosts("des_y3").colour_cuts == (("g", "r", 1.0),)
    assert default_hosts("euclid_wide").mag_band == "VIS"
    assert default_hosts("nosuch").colour_cuts == ()


def _render(q, phi, fwhm_px, n=4.0, size=100, r_eff_px=4.0):
    y, x = np.mgrid[0:size, 0:size].astype(float) - size // 2
    img = sersic(x, y, np.full(1, r_eff_px)[:, None, None], np.full(1, n)[:, None, None],
                 np.asarray(q)[..., None, None], np.asarray(phi)[..., None, None])  # fmt: skip
    otf = gaussian_otf(fwhm_px, np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    return np.fft.irfft2(np.fft.rfft2(img) * otf, s=(size, size))


@pytest.mark.parametrize("sersic_n", [1.0, 4.0])
@pytest.mark.parametrize(("q", "phi"), [(0.5, 0.3), (0.7, 2.0), (0.4, 1.2), (0.8, 2.8)])
def test_light_shape_recovers_axis_ratio_and_angle_of_a_sersic(q, phi, sersic_n):
    """A PSF-convolved exponential or de Vaucouleurs profile (r_eff 4 px, FWHM 3.5 px)
    measured at a sky isophote of 0.1 I_e: q +- 0.06, angle +- 8 deg, in the renderer's
    angle convention."""
    img = _render([q], [phi], fwhm_px=3.5, n=sersic_n)
    i_e = sersic(np.array(4.0), np.array(0.0), 4.0, sersic_n, 1.0, 0.0)
    mq, mphi = light_shape(img, sky_sigma=0.1 * i_e / 3.0)
    assert mq[0] == pytest.approx(q, abs=0.06)
    d = (mphi[0] - phi + np.pi / 2) % np.pi - np.pi / 2
    assert abs(d) < np.deg2rad(8)


def test_noise_alone_or_an_empty_stamp_is_round():
    q, phi = light_shape(np.zeros((2, 32, 32)), sky_sigma=1.0)
    assert q.tolist() == [1.0, 1.0] and phi.tolist() == [0.0, 0.0]
