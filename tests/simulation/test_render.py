"""Rendering: lensed sources against a lenstronomy-based reference, PSF, noise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LensModel.Profiles.sersic_utils import SersicUtil
from lenstronomy.LightModel.light_model import LightModel
from numpy.testing import assert_allclose
from scipy.ndimage import gaussian_filter
from scipy.special import gammaincinv

from lensfind.simulation.noise import add_noise
from lensfind.simulation.render import render, source_snr
from lensfind.simulation.scene import Scene, SersicComponents
from lensfind.surveys import get_survey

HYP = settings(max_examples=25, deadline=None, database=None)
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

DES = get_survey("des_y3")


def _off(n: int, bands: int) -> SersicComponents:
    """A switched-off component (flux 0) with harmless shape parameters."""
    z = np.zeros(n)
    return SersicComponents(np.zeros((n, bands)), z + 0.5, z + 1.0, z + 1.0, z, z, z)


def _col(values, n):
    return np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()


def make_scene(
    n: int,
    bands: int,
    *,
    source_flux=None,
    src_r_eff=0.3,
    src_n=1.0,
    src_q=1.0,
    src_phi=0.0,
    src_dx=0.0,
    src_dy=0.0,
    theta_e=0.0,
    mass_q=1.0,
    mass_phi=0.0,
    gamma1=0.0,
    gamma2=0.0,
    center_x=0.0,
    center_y=0.0,
    point_flux=None,
    main: SersicComponents | None = None,
    psf_fwhm=1.0,
) -> Scene:
    """A Scene of ``n`` objects: by default only a (possibly lensed) Sersic source.

    Scalars broadcast to all objects; no lens light, no companion, no arms.
    """
    zeros = np.zeros(n)
    src_flux = np.zeros((n, bands)) if source_flux is None else np.asarray(source_flux, float)
    src_flux = np.broadcast_to(src_flux, (n, bands)).copy()
    source = SersicComponents(
        src_flux,
        _col(src_r_eff, n),
        _col(src_n, n),
        _col(src_q, n),
        _col(src_phi, n),
        _col(src_dx, n),
        _col(src_dy, n),
    )
    pf = np.zeros((n, bands)) if point_flux is None else np.asarray(point_flux, float)
    return Scene(
        center_x_arcsec=_col(center_x, n),
        center_y_arcsec=_col(center_y, n),
        main=main if main is not None else _off(n, bands),
        companion=_off(n, bands),
        source=source,
        arm_amplitude=zeros.copy(),
        arm_pitch_rad=zeros + 0.3,
        arm_phase_rad=zeros.copy(),
        theta_e_arcsec=_col(theta_e, n),
        mass_q=_col(mass_q, n),
        mass_phi=_col(mass_phi, n),
        gamma1=_col(gamma1, n),
        gamma2=_col(gamma2, n),
        point_flux=np.broadcast_to(pf, (n, bands)).copy(),
        psf_fwhm_arcsec=np.broadcast_to(np.asarray(psf_fwhm, float), (n, bands)).copy(),
    )


def _e1e2(q, phi):
    f = (1.0 - q) / (1.0 + q)
    return f * np.cos(2 * phi), f * np.sin(2 * phi)


def _reference_lensed_source(scene: Scene, i: int, size: int, pix: float, ss: int = 2):
    """Unit-flux lensed source of object ``i``, PSF-free and PSF-convolved per band.

    Built independently of lensfind: sub-pixel centres from the pixel-centre
    convention (pixel ``size // 2`` at the stamp centre, x along columns, y along
    rows), rays shot with lenstronomy's SIE + SHEAR about the object centre, the
    source evaluated with lenstronomy's SERSIC_ELLIPSE normalised to unit flux,
    binned, and convolved with scipy's Gaussian filter (periodic boundaries).
    """
    cx, cy = scene.center_x_arcsec[i], scene.center_y_arcsec[i]
    # sub-pixel k of pixel j sits at j + (k + 1/2) / ss - 1/2 pixels
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    pos = ((np.arange(size)[:, None] - size // 2) + sub[None, :]).ravel() * pix
    x, y = np.meshgrid(pos, pos)  # x varies along columns, y along rows
    lens = LensModel(["SIE", "SHEAR"])
    e1, e2 = _e1e2(scene.mass_q[i], scene.mass_phi[i])
    kw_lens = [
        {"theta_E": scene.theta_e_arcsec[i], "e1": e1, "e2": e2, "center_x": cx, "center_y": cy},
        {"gamma1": scene.gamma1[i], "gamma2": scene.gamma2[i], "ra_0": cx, "dec_0": cy},
    ]
    bx, by = lens.ray_shooting(x.ravel(), y.ravel(), kw_lens)
    src = scene.source
    se1, se2 = _e1e2(src.q[i], src.phi[i])
    kw_light = [
        {
            "amp": 1.0,
            "R_sersic": src.r_eff_arcsec[i],
            "n_sersic": src.n[i],
            "e1": se1,
            "e2": se2,
            # the source offset is relative to the lens centre, in the source plane
            "center_x": cx + src.dx_arcsec[i],
            "center_y": cy + src.dy_arcsec[i],
        }
    ]
    light = LightModel(["SERSIC_ELLIPSE"])
    sb = light.surface_brightness(bx, by, kw_light) / light.total_flux(kw_light)[0]
    sub_img = sb.reshape(size * ss, size * ss) * (pix / ss) ** 2
    img = sub_img.reshape(size, ss, size, ss).sum(axis=(1, 3))
    conv = [
        gaussian_filter(img, sigma=f / pix * FWHM_TO_SIGMA, mode="wrap", truncate=8.0)
        for f in scene.psf_fwhm_arcsec[i]
    ]
    return img, np.stack(conv)


@pytest.fixture
def exact_lenstronomy_bn(monkeypatch):
    """lenstronomy approximates b_n linearly; use the exact value (see test_profiles)."""
    monkeypatch.setattr(SersicUtil, "b_n", staticmethod(lambda n: gammaincinv(2.0 * n, 0.5)))


@pytest.mark.usefixtures("exact_lenstronomy_bn")
def test_lensed_source_matches_lenstronomy_reference():
    spec = DES.select(("g", "r"))
    size, pix = 64, spec.pixel_scale_arcsec
    flux = np.array([[800.0, 1200.0], [300.0, 300.0], [1500.0, 500.0], [900.0, 900.0]])
    scene = make_scene(
        4,
        2,
        source_flux=flux,
        src_r_eff=[0.25, 0.5, 0.15, 0.35],
        src_n=[1.0, 2.5, 0.8, 4.0],
        src_q=[0.6, 1.0, 0.45, 0.8],
        src_phi=[0.3, 0.0, 2.1, -0.5],
        src_dx=[0.1, -0.4, 0.05, 0.0],
        src_dy=[-0.2, 0.3, 0.0, 0.15],
        theta_e=[1.4, 2.2, 0.9, 1.7],
        mass_q=[0.7, 0.45, 1.0, 0.9],
        mass_phi=[0.5, -1.2, 0.0, 2.8],
        gamma1=[0.03, -0.05, 0.0, 0.08],
        gamma2=[-0.02, 0.04, 0.0, 0.01],
        center_x=[0.1, -0.2, 0.0, 0.37],
        center_y=[-0.13, 0.05, 0.0, -0.29],
        psf_fwhm=[[1.12, 0.96], [0.9, 1.3], [1.0, 0.8], [1.25, 1.25]],
    )
    # the same sampling as the reference (2 x 2 sub-pixels), not the adaptive default
    out = render(scene, spec, size_px=size, supersample=2, psf="gaussian")
    assert out.source_light.shape == (4, 2, size, size)
    assert_allclose(out.lens_light, 0.0, atol=1e-9)
    for i in range(4):
        img, conv = _reference_lensed_source(scene, i, size, pix)
        ref_unconv = flux[i][:, None, None] * img
        ref = flux[i][:, None, None] * conv
        # PSF-free flux in the stamp: same sub-pixel sampling; lenstronomy's SIE is a
        # NIE with a tiny core (1e-8" differences in the rays) -> rtol 1e-6
        assert_allclose(out.source_flux_unconvolved[i], ref_unconv.sum(axis=(1, 2)), rtol=1e-6)
        # convolved images: the analytic Gaussian OTF against the sampled, truncated
        # Gaussian filter; tolerance 0.1% of the peak (measured < 4e-5)
        peak = ref.max(axis=(1, 2), keepdims=True)
        assert np.all(np.abs(out.source_light[i] - ref) <= 1e-3 * peak), f"object {i}"
        # total flux within 0.5% (circular convolution conserves it exactly)
        assert_allclose(out.source_light[i].sum(axis=(1, 2)), ref.sum(axis=(1, 2)), rtol=5e-3)


def test_unlensed_source_is_the_plain_sersic():
    """theta_e = 0: no deflection; the source is a Sersic at centre + offset."""
    spec = DES.select(("r",))
    scene = make_scene(
        1,
        1,
        source_flux=[[1.0]],
        src_r_eff=0.6,
        src_n=1.0,
        src_q=0.5,
        src_phi=0.4,
        src_dx=0.5,
        src_dy=-0.3,
        center_x=0.2,
        center_y=0.1,
        psf_fwhm=0.9,
    )
    out = render(scene, spec, size_px=48)
    img = out.source_light[0, 0]
    rows, cols = np.indices(img.shape)
    pix = spec.pixel_scale_arcsec
    # an elliptical Sersic is point-symmetric: its centroid is its centre
    assert_allclose((img * cols).sum() / img.sum(), 24 + 0.7 / pix, atol=0.02)
    assert_allclose((img * rows).sum() / img.sum(), 24 - 0.2 / pix, atol=0.02)


@pytest.mark.parametrize("psf", ["gaussian", "moffat"])
def test_psf_conserves_flux(psf):
    spec = DES
    scene = make_scene(
        2,
        4,
        source_flux=[[100.0, 200.0, 300.0, 400.0], [50.0, 60.0, 70.0, 80.0]],
        theta_e=[1.5, 0.8],
        mass_q=[0.6, 0.9],
        src_r_eff=0.2,
        src_dx=[0.05, 0.3],
        point_flux=[[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 0.0, 0.0]],
        psf_fwhm=[[1.12, 0.96, 0.88, 0.85], [1.5, 1.4, 1.3, 1.2]],
    )
    out = render(scene, spec, size_px=48, psf=psf)
    assert_allclose(out.source_light.sum(axis=(-2, -1)), out.source_flux_unconvolved, rtol=1e-10)
    # the point source of flux F sums to F
    assert_allclose(out.lens_light.sum(axis=(-2, -1)), scene.point_flux, rtol=1e-10, atol=1e-9)
    assert_allclose(out.total, out.lens_light + out.source_light, rtol=0, atol=0)


def test_moffat_and_gaussian_have_equal_total_flux():
    main = SersicComponents(
        np.array([[500.0, 900.0]]),
        np.array([0.8]),
        np.array([4.0]),
        np.array([0.7]),
        np.array([0.3]),
        np.zeros(1),
        np.zeros(1),
    )
    scene = make_scene(
        1,
        2,
        source_flux=[[40.0, 50.0]],
        theta_e=1.2,
        src_r_eff=0.2,
        point_flux=[[5.0, 7.0]],
        main=main,
        psf_fwhm=[[1.1, 0.9]],
    )
    spec = DES.select(("g", "r"))
    g = render(scene, spec, size_px=56, psf="gaussian")
    m = render(scene, spec, size_px=56, psf="moffat")
    assert_allclose(m.total.sum(axis=(-2, -1)), g.total.sum(axis=(-2, -1)), rtol=1e-10)
    # same light, different PSF wings: the Moffat image is not the Gaussian one
    assert np.abs(m.total - g.total).max() > 1e-3 * g.total.max()


def test_unknown_psf_raises():
    scene = make_scene(1, 1, source_flux=[[1.0]])
    with pytest.raises(ValueError, match="'airy'"):
        render(scene, DES.select(("r",)), size_px=16, psf="airy")


@HYP
@given(
    ox=st.floats(-3.0, 3.0),
    oy=st.floats(-3.0, 3.0),
    size=st.sampled_from([40, 41]),
    psf=st.sampled_from(["gaussian", "moffat"]),
)
def test_point_source_centroid_at_requested_position(ox, oy, size, psf):
    spec = DES.select(("r",))
    pix = spec.pixel_scale_arcsec
    scene = make_scene(
        1, 1, point_flux=[[1000.0]], center_x=ox * pix, center_y=oy * pix, psf_fwhm=0.96
    )
    img = render(scene, spec, size_px=size, psf=psf).lens_light[0, 0]
    assert_allclose(img.sum(), 1000.0, rtol=1e-10)
    rows, cols = np.indices(img.shape)
    # x grows with the column index, y with the row index; pixel size // 2 is the centre
    assert_allclose((img * cols).sum() / img.sum(), size // 2 + ox, atol=0.02)
    assert_allclose((img * rows).sum() / img.sum(), size // 2 + oy, atol=0.02)
    # the peak is the pixel nearest the requested position
    r, c = np.unravel_index(np.argmax(img), img.shape)
    assert abs(c - (size // 2 + ox)) <= 0.5 + 1e-9 and abs(r - (size // 2 + oy)) <= 0.5 + 1e-9


def test_add_noise_blank_image_std_is_sky_sigma():
    spec = DES
    blank = np.zeros((3, 4, 64, 64))
    noisy = add_noise(blank, spec, np.random.default_rng(11))
    assert noisy.dtype == np.float32
    assert noisy.shape == blank.shape
    std = noisy.astype(np.float64).std(axis=(0, 2, 3))
    sky = np.array([b.sky_sigma_counts for b in spec.bands])
    # 12288 pixels per band: 0.6% standard error; tolerance 3%
    assert_allclose(std, sky, rtol=0.03)
    mean = noisy.astype(np.float64).mean(axis=(0, 2, 3))
    assert np.all(np.abs(mean) < 0.05 * sky)


def test_add_noise_band_axis_and_object_poisson_noise():
    spec = DES.select(("g", "z"))
    bright = np.full((64, 64, 2), 400.0)  # bands last
    noisy = add_noise(bright, spec, np.random.default_rng(12), band_axis=2)
    assert noisy.dtype == np.float32
    for j, b in enumerate(spec.bands):
        expected = np.sqrt(b.sky_sigma_counts**2 + 400.0 / b.gain_e_per_count)
        assert_allclose(noisy[..., j].astype(np.float64).std(), expected, rtol=0.03)
        assert_allclose(noisy[..., j].astype(np.float64).mean(), 400.0, atol=0.1 * expected)


def test_add_noise_does_not_modify_input():
    images = np.random.default_rng(1).uniform(0, 50, (2, 4, 16, 16))
    before = images.copy()
    out = add_noise(images, DES, np.random.default_rng(2))
    assert_allclose(images, before, rtol=0, atol=0)
    assert out is not images
    assert not np.shares_memory(out, images)
    # float32 input too
    images32 = images.astype(np.float32)
    before32 = images32.copy()
    out32 = add_noise(images32, DES, np.random.default_rng(2))
    assert np.array_equal(images32, before32)
    assert not np.shares_memory(out32, images32)


def test_source_snr_matches_direct_sum():
    spec = DES.select(("g", "r"))
    scene = make_scene(2, 2, source_flux=[[300.0, 400.0], [30.0, 10.0]], theta_e=1.3, src_r_eff=0.3)
    out = render(scene, spec, size_px=48)
    sky = np.array([b.sky_sigma_counts for b in spec.bands])
    expected = [
        np.sqrt(sum(((out.source_light[i, j] / sky[j]) ** 2).sum() for j in range(2)))
        for i in range(2)
    ]
    assert_allclose(source_snr(out, spec), expected, rtol=1e-12)


def test_scene_take_selects_the_same_objects():
    scene = make_scene(
        3,
        2,
        source_flux=[[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]],
        theta_e=[0.9, 1.5, 2.1],
        src_dx=[0.0, 0.2, -0.3],
        center_x=[0.0, 0.1, -0.2],
        point_flux=[[0.0, 0.0], [5.0, 6.0], [0.0, 1.0]],
        psf_fwhm=[[0.9, 1.0], [1.1, 1.2], [1.3, 1.4]],
    )
    spec = DES.select(("g", "r"))
    full = render(scene, spec, size_px=24)
    idx = np.array([2, 0])
    sub = scene.take(idx)
    assert len(sub) == 2
    part = render(sub, spec, size_px=24)
    assert_allclose(part.total, full.total[idx], rtol=1e-12, atol=1e-12)
    assert_allclose(part.source_flux_unconvolved, full.source_flux_unconvolved[idx], rtol=1e-12)


def test_rendering_in_groups_and_in_float32():
    """Objects rendered a few at a time equal one call per object; float32 stays close
    (fixed sampling: the adaptive one is tested in test_supersampling)."""
    rng = np.random.default_rng(4)
    n = 7
    scene = make_scene(
        n,
        2,
        source_flux=rng.uniform(10, 60, (n, 2)),
        theta_e=rng.uniform(0.8, 2.0, n),
        src_dx=rng.uniform(-0.3, 0.3, n),
        center_x=rng.uniform(-0.2, 0.2, n),
        point_flux=rng.uniform(0, 5, (n, 2)),
        psf_fwhm=rng.uniform(0.8, 1.4, (n, 2)),
    )
    spec = DES.select(("g", "r"))
    for size in (24, 100):  # all objects in one group; one object per group
        full = render(scene, spec, size_px=size, supersample=2)
        for i in (0, n - 1):
            one = render(scene.take(slice(i, i + 1)), spec, size_px=size, supersample=2)
            assert_allclose(one.total[0], full.total[i], rtol=1e-12, atol=1e-12)
    low = render(scene, spec, size_px=size, supersample=2, dtype=np.float32)
    assert (
        low.total.dtype == np.float32
        and scene.astype(np.float32).theta_e_arcsec.dtype == np.float32
    )
    assert_allclose(low.total, full.total, rtol=0, atol=1e-5 * np.abs(full.total).max())
    assert_allclose(low.source_flux_unconvolved, full.source_flux_unconvolved, rtol=1e-5)
