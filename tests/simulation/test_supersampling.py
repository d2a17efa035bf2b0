"""Adaptive supersampling (``render(..., supersample="auto")``) against converged renders.

Compact, cuspy sources near caustics are where a fixed 2 x 2 sub-pixel grid fails
(by 5-50% in relative L2): much of their light falls into a few sub-pixels around the
images of the source's cusp. The references here integrate each pixel on a uniform
sub-pixel grid, 16 x 16, and 64 x 64 / 256 x 256 in the pixels holding more than
1% / 10% of the peak pixel (uniform 16x or 32x grids alone are not converged for
these sources: up to 2% off), with lensfind's or lenstronomy's lensing and light.
"""

import contextlib
import dataclasses

import numpy as np
import pytest
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LensModel.Profiles.sersic_utils import SersicUtil
from lenstronomy.LightModel.light_model import LightModel
from numpy.testing import assert_allclose
from scipy.ndimage import gaussian_filter
from scipy.special import gammaincinv

import lensfind.simulation.render as render_module
from lensfind.simulation.lensing import ray_trace
from lensfind.simulation.population import PopulationConfig, sample_scene
from lensfind.simulation.profiles import gaussian_otf, sersic, spiral_modulation
from lensfind.simulation.render import render
from lensfind.simulation.scene import Scene, SersicComponents
from lensfind.simulation.simulate import simulate
from lensfind.surveys import get_survey

DES = get_survey("des_y3")
VIS = get_survey("euclid_wide").select(("VIS",))
#: the accuracy asked of "auto": relative L2 of each band's stamp and its total flux
TOL = 5e-3
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _off(n: int, bands: int) -> SersicComponents:
    z = np.zeros(n)
    return SersicComponents(np.zeros((n, bands)), z + 0.5, z + 1.0, z + 1.0, z, z, z)


def _scene(source: SersicComponents, lens: dict, fwhm: np.ndarray, main=None, centre=None):
    """A Scene of lensed sources (no deflector light unless ``main``)."""
    n, bands = source.flux.shape
    z = np.zeros(n)
    cx, cy = (z, z) if centre is None else centre
    return Scene(cx, cy, main or _off(n, bands), _off(n, bands), source, z.copy(), z + 0.3,
                 z.copy(), lens["theta_e"], lens["q"], lens["phi"], lens["g1"], lens["g2"],
                 np.zeros((n, bands)), fwhm)  # fmt: skip


def _caustic_point(lens: dict, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane point of the tangential caustic: the critical curve along ``angle``
    (where the lens Jacobian changes sign, by bisection) mapped back."""
    args = (lens["theta_e"], lens["q"], lens["phi"], lens["g1"], lens["g2"])
    c, s, h = np.cos(angle), np.sin(angle), 1e-5

    def det(r):
        xp, yp = ray_trace(r * c + h, r * s, *args)
        xm, ym = ray_trace(r * c - h, r * s, *args)
        xu, yu = ray_trace(r * c, r * s + h, *args)
        xd, yd = ray_trace(r * c, r * s - h, *args)
        return ((xp - xm) * (yu - yd) - (xu - xd) * (yp - ym)) / (2 * h) ** 2

    lo, hi = 0.2 * lens["theta_e"], 3.0 * lens["theta_e"]
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        inside = det(mid) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    r = 0.5 * (lo + hi)
    return ray_trace(r * c, r * s, *args)


def _near_caustic(n, bands, seed, pix, fwhm=(0.8, 1.3), theta_e=(0.6, 1.6), r_eff=(0.05, 0.2)):
    """Compact (r_eff 0.05-0.2"), cuspy (Sersic n 1-4) sources within 0.1" of the
    tangential caustic of an SIE + shear; the lens centre anywhere in its pixel."""
    rng = np.random.default_rng(seed)
    u = rng.uniform
    g, g_ang = np.abs(0.05 * rng.standard_normal(n)), u(0, np.pi, n)
    lens = {"theta_e": u(*theta_e, n), "q": u(0.5, 1.0, n), "phi": u(0, np.pi, n),
            "g1": g * np.cos(2 * g_ang), "g2": g * np.sin(2 * g_ang)}  # fmt: skip
    kx, ky = _caustic_point(lens, u(0, 2 * np.pi, n))
    off, ang = u(0, 0.1, n), u(0, 2 * np.pi, n)
    source = SersicComponents(u(100, 1000, (n, bands)), u(*r_eff, n), u(1.0, 4.0, n),
                              u(0.4, 1.0, n), u(0, np.pi, n), kx + off * np.cos(ang),
                              ky + off * np.sin(ang))  # fmt: skip
    centre = u(-0.5, 0.5, (2, n)) * pix
    return _scene(source, lens, u(*fwhm, (n, bands)), centre=centre)


def _integrate(sb, size, pix, rows, cols, k):
    """``sb`` (unit-flux surface brightness at stamp positions, arcsec) integrated over
    pixels ``(rows, cols)`` with ``k x k`` uniform sub-pixels."""
    sub = ((np.arange(k) + 0.5) / k - 0.5) * pix
    out = np.empty(rows.size)
    step = max(1, 2**20 // k**2)
    for s in range(0, rows.size, step):
        x = (cols[s : s + step] - size // 2)[:, None, None] * pix + sub[None, None, :]
        y = (rows[s : s + step] - size // 2)[:, None, None] * pix + sub[None, :, None]
        out[s : s + step] = sb(*np.broadcast_arrays(x, y)).sum(axis=(1, 2)) * (pix / k) ** 2
    return out


def _converged(sb, size, pix, levels=((16, 0.0), (64, 0.01), (256, 0.1))):
    """Pixel-integrated ``sb`` (size, size): ``k x k`` sub-pixels in the pixels above
    ``frac`` of the peak pixel, for each ``(k, frac)`` of ``levels``."""
    rows, cols = np.indices((size, size)).reshape(2, -1)
    image = _integrate(sb, size, pix, rows, cols, levels[0][0])
    peak = image.max()
    for k, frac in levels[1:]:
        bright = image > frac * peak
        image[bright] = _integrate(sb, size, pix, rows[bright], cols[bright], k)
    return image.reshape(size, size)


def _observe(image, flux, fwhm_arcsec, pix):
    """``image`` (unit flux) through each band's Gaussian PSF, as render does."""
    size = image.shape[-1]
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    spectrum = np.fft.rfft2(image)
    return np.stack([
        f * np.fft.irfft2(spectrum * gaussian_otf(w / pix, fy, fx), s=(size, size))
        for f, w in zip(flux, fwhm_arcsec, strict=True)
    ])  # fmt: skip


def _errors(image, reference):
    """Largest relative L2 and relative flux error over the bands of one stamp."""
    l2 = np.sqrt(((image - reference) ** 2).sum(axis=(-2, -1)) / (reference**2).sum(axis=(-2, -1)))
    flux = np.abs(image.sum(axis=(-2, -1)) / reference.sum(axis=(-2, -1)) - 1.0)
    return float(l2.max()), float(flux.max())


def _lensfind_source(scene: Scene, i: int):
    """Surface brightness of object ``i``'s lensed source with lensfind's lensing and light."""
    cx, cy, src = scene.center_x_arcsec[i], scene.center_y_arcsec[i], scene.source
    lens = (scene.theta_e_arcsec[i], scene.mass_q[i], scene.mass_phi[i], scene.gamma1[i],
            scene.gamma2[i])  # fmt: skip

    def sb(x, y):
        bx, by = ray_trace(x - cx, y - cy, *lens)
        return sersic(bx - src.dx_arcsec[i], by - src.dy_arcsec[i], src.r_eff_arcsec[i],
                      src.n[i], src.q[i], src.phi[i])  # fmt: skip

    return sb


def _check_sources(scene, spec, size, reference_sb):
    """Errors (L2, flux) of the auto and the 2x renders against converged references."""
    pix = spec.pixel_scale_arcsec
    auto = render(scene, spec, size_px=size, source_only=True)
    fixed = render(scene, spec, size_px=size, supersample=2, source_only=True)
    errors = {"auto": [], "2x": [], "auto_unconvolved_flux": []}
    for i in range(len(scene)):
        image = _converged(reference_sb(scene, i), size, pix)
        ref = _observe(image, scene.source.flux[i], scene.psf_fwhm_arcsec[i], pix)
        errors["auto"].append(_errors(auto.source_light[i], ref))
        errors["2x"].append(_errors(fixed.source_light[i], ref))
        flux = scene.source.flux[i] * image.sum()
        errors["auto_unconvolved_flux"].append(
            np.abs(auto.source_flux_unconvolved[i] / flux - 1.0).max()
        )
    return {k: np.array(v) for k, v in errors.items()}


@pytest.mark.parametrize(
    ("spec", "size", "seed", "fwhm"),
    [(DES.select(("g", "r")), 40, 11, (0.8, 1.3)), (VIS, 48, 12, (0.15, 0.2))],
    ids=["des", "euclid_vis"],
)
def test_auto_is_converged_for_compact_cuspy_sources_near_caustics(spec, size, seed, fwhm):
    n = 14 if spec.name == "des_y3" else 6  # 20 configurations in all
    pix = spec.pixel_scale_arcsec
    theta_e = (0.6, 1.6) if spec.name == "des_y3" else (0.5, 1.2)
    scene = _near_caustic(n, len(spec.bands), seed, pix, fwhm=fwhm, theta_e=theta_e)
    err = _check_sources(scene, spec, size, _lensfind_source)
    # the scenes are hard: a fixed 2 x 2 grid misses by percents
    assert err["2x"].max() > 0.02
    assert err["auto"][:, 0].max() < TOL, err["auto"][:, 0]  # relative L2, every band
    assert err["auto"][:, 1].max() < TOL, err["auto"][:, 1]  # total flux, every band
    assert err["auto_unconvolved_flux"].max() < TOL
    # and with a margin (measured: at most 0.2%)
    assert err["auto"].max() < 0.5 * TOL


def _e1e2(q, phi):
    f = (1.0 - q) / (1.0 + q)
    return f * np.cos(2 * phi), f * np.sin(2 * phi)


def _lenstronomy_source(scene: Scene, i: int):
    """Surface brightness of object ``i``'s lensed source with lenstronomy: SIE + SHEAR
    about the object centre (same theta_E convention), SERSIC_ELLIPSE at unit flux
    centred at centre + offset (the conventions of test_render's reference)."""
    cx, cy, src = scene.center_x_arcsec[i], scene.center_y_arcsec[i], scene.source
    e1, e2 = _e1e2(scene.mass_q[i], scene.mass_phi[i])
    kw_lens = [
        {"theta_E": scene.theta_e_arcsec[i], "e1": e1, "e2": e2, "center_x": cx, "center_y": cy},
        {"gamma1": scene.gamma1[i], "gamma2": scene.gamma2[i], "ra_0": cx, "dec_0": cy},
    ]
    se1, se2 = _e1e2(src.q[i], src.phi[i])
    kw_light = [
        {"amp": 1.0, "R_sersic": src.r_eff_arcsec[i], "n_sersic": src.n[i], "e1": se1, "e2": se2,
         "center_x": cx + src.dx_arcsec[i], "center_y": cy + src.dy_arcsec[i]}
    ]  # fmt: skip
    lens, light = LensModel(["SIE", "SHEAR"]), LightModel(["SERSIC_ELLIPSE"])
    total = light.total_flux(kw_light)[0]

    def sb(x, y):
        bx, by = lens.ray_shooting(x.ravel(), y.ravel(), kw_lens)
        return (light.surface_brightness(bx, by, kw_light) / total).reshape(x.shape)

    return sb


@pytest.fixture
def exact_lenstronomy_bn(monkeypatch):
    """lenstronomy approximates b_n linearly; use the exact value (see test_profiles)."""
    monkeypatch.setattr(SersicUtil, "b_n", staticmethod(lambda n: gammaincinv(2.0 * n, 0.5)))


@pytest.mark.usefixtures("exact_lenstronomy_bn")
def test_auto_matches_lenstronomy_at_high_supersampling():
    """lenstronomy rays and light on >= 16 x 16 sub-pixels (256 x 256 in the bright
    pixels), its PSF a sampled Gaussian (scipy): auto agrees within 0.5%."""
    spec, size = DES.select(("g", "r")), 40
    pix = spec.pixel_scale_arcsec
    scene = _near_caustic(4, 2, seed=21, pix=pix, r_eff=(0.05, 0.3))
    auto = render(scene, spec, size_px=size, source_only=True)
    for i in range(len(scene)):
        image = _converged(_lenstronomy_source(scene, i), size, pix)
        flux = scene.source.flux[i]
        ref = np.stack([
            f * gaussian_filter(image, sigma=w / pix * FWHM_TO_SIGMA, mode="wrap", truncate=8.0)
            for f, w in zip(flux, scene.psf_fwhm_arcsec[i], strict=True)
        ])  # fmt: skip
        l2, total = _errors(auto.source_light[i], ref)
        assert l2 < TOL and total < TOL, (i, l2, total)
        assert_allclose(auto.source_flux_unconvolved[i], flux * image.sum(), rtol=TOL)


def test_auto_is_converged_for_cuspy_lens_galaxies():
    """Unlensed light (deflectors of n = 3-5 with their central cusps, discs with
    spiral arms): the same adaptive refinement; 2x is off by percents."""
    rng = np.random.default_rng(5)
    n, spec, size = 6, DES.select(("r",)), 48
    pix, u = spec.pixel_scale_arcsec, rng.uniform
    main = SersicComponents(u(1e3, 1e4, (n, 1)), u(0.3, 1.5, n), np.r_[u(3, 5, 4), 1.0, 1.0],
                            u(0.3, 1.0, n), u(0, np.pi, n), np.zeros(n), np.zeros(n))  # fmt: skip
    lens = {k: np.zeros(n) for k in ("theta_e", "phi", "g1", "g2")} | {"q": np.ones(n)}
    scene = _scene(
        _off(n, 1), lens, u(0.8, 1.2, (n, 1)), main=main, centre=u(-0.5, 0.5, (2, n)) * pix
    )
    scene = dataclasses.replace(scene, arm_amplitude=np.r_[np.zeros(4), 0.6, 0.9])
    auto = render(scene, spec, size_px=size)
    fixed = render(scene, spec, size_px=size, supersample=2)
    worst_fixed = 0.0
    for i in range(n):
        m, cx, cy = scene.main, scene.center_x_arcsec[i], scene.center_y_arcsec[i]

        def sb(x, y, i=i, m=m, cx=cx, cy=cy):
            x, y = x - cx, y - cy
            shape = sersic(x, y, m.r_eff_arcsec[i], m.n[i], m.q[i], m.phi[i])
            arms = (scene.arm_amplitude[i], scene.arm_pitch_rad[i], scene.arm_phase_rad[i])
            return shape * spiral_modulation(x, y, *arms)

        levels = ((16, 0.0), (64, 0.01), (256, 0.3), (1024, 0.6))  # n = 5 cusps are sharp
        ref = _observe(_converged(sb, size, pix, levels), m.flux[i], scene.psf_fwhm_arcsec[i], pix)
        l2, total = _errors(auto.lens_light[i], ref)
        assert l2 < TOL and total < TOL, (i, l2, total)
        worst_fixed = max(worst_fixed, *_errors(fixed.lens_light[i], ref))
    assert worst_fixed > 0.01


def test_explicit_int_is_the_uniform_sub_pixel_grid():
    """An int keeps its meaning: ``k x k`` sub-pixels in every pixel, nothing adaptive."""
    spec, size = DES.select(("g",)), 24
    pix = spec.pixel_scale_arcsec
    scene = _near_caustic(3, 1, seed=31, pix=pix, theta_e=(0.6, 1.0))
    for k in (1, 2, 3):
        out = render(scene, spec, size_px=size, supersample=k, source_only=True)
        again = render(scene, spec, size_px=size, supersample=np.int64(k), source_only=True)
        assert out.source_light.tobytes() == again.source_light.tobytes()
        rows, cols = np.indices((size, size)).reshape(2, -1)
        for i in range(len(scene)):
            image = _integrate(_lensfind_source(scene, i), size, pix, rows, cols, k)
            image = image.reshape(size, size)
            ref = _observe(image, scene.source.flux[i], scene.psf_fwhm_arcsec[i], pix)
            assert_allclose(out.source_light[i], ref, rtol=1e-9, atol=1e-9 * ref.max())
            assert_allclose(out.source_flux_unconvolved[i], scene.source.flux[i] * image.sum(),
                            rtol=1e-9)  # fmt: skip
    for bad in (0, -2, 2.5, True, "fast", None):
        with pytest.raises(ValueError, match="supersample"):
            render(scene, spec, size_px=size, supersample=bad)


def test_auto_does_not_depend_on_the_batch_and_float32_is_close(monkeypatch):
    """Each object's refinement depends on it alone: any batch (and any grouping of
    the batch for cache) gives the same stamps; float32 follows float64."""
    spec, size = DES.select(("g", "r")), 32
    scene = _near_caustic(5, 2, seed=41, pix=spec.pixel_scale_arcsec, theta_e=(0.6, 1.0))
    full = render(scene, spec, size_px=size)
    monkeypatch.setattr(render_module, "_GROUP_SUBPIXELS", 2 * size**2)  # groups of 2
    grouped = render(scene, spec, size_px=size)
    assert_allclose(grouped.source_light, full.source_light, rtol=1e-12, atol=1e-12)
    for i in (0, 3):
        one = render(scene.take(slice(i, i + 1)), spec, size_px=size)
        assert_allclose(one.source_light[0], full.source_light[i], rtol=1e-12, atol=1e-12)
        assert_allclose(one.source_flux_unconvolved[0], full.source_flux_unconvolved[i],
                        rtol=1e-12)  # fmt: skip
    low = render(scene, spec, size_px=size, dtype=np.float32)
    assert low.source_light.dtype == np.float32
    for i in range(len(scene)):
        assert max(_errors(low.source_light[i], full.source_light[i])) < 1e-3


def test_simulate_renders_with_auto_by_default():
    spec = DES.select(("g", "r"))
    default = simulate(spec, 6, seed=3, size_px=32, noise=False)
    auto = simulate(spec, 6, seed=3, size_px=32, noise=False, supersample="auto")
    fixed = simulate(spec, 6, seed=3, size_px=32, noise=False, supersample=2)
    assert default.images.tobytes() == auto.images.tobytes()
    assert not np.array_equal(default.images, fixed.images)
    # the same draws: only the pixel integration differs (a few percent at most)
    assert_allclose(default.images.sum(axis=(2, 3)), fixed.images.sum(axis=(2, 3)), rtol=0.1)


@contextlib.contextmanager
def _tightened(factor: float, levels: int = 16):
    """supersample="auto" with a ``factor`` x tighter tolerance, every pixel refined
    until converged (no cap on the cells per pixel): a converged reference."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render_module, "_AUTO_REL", render_module._AUTO_REL / factor)
        mp.setattr(render_module, "_AUTO_TRIGGER", 8.0)
        mp.setattr(render_module, "_AUTO_LEVELS", levels)
        mp.setattr(render_module, "_AUTO_MAX_CELLS", 2**40)
        yield


@pytest.mark.parametrize(
    ("survey", "bands", "source_only", "dtype"),
    [
        ("des_y3", ("g", "r", "i", "z"), False, np.float64),
        ("kids_dr3", ("r",), False, np.float64),
        ("euclid_wide", ("VIS",), False, np.float64),
        ("des_y3", ("g", "r", "i", "z"), True, np.float32),  # as injected
    ],
    ids=["des", "kids", "euclid_vis", "des_injected"],
)
def test_auto_is_converged_on_the_default_population(survey, bands, source_only, dtype):
    """simulate()'s default population (lenses and non-lenses, every component): auto
    against the same renderer with a 50x tighter tolerance, in float64 (converged: it
    agrees with the piecewise-uniform references above to 3e-4)."""
    spec = get_survey(survey).select(bands)
    config = PopulationConfig()
    rng = np.random.default_rng(51)
    kinds = config.draw_kinds(24, rng)
    scene, _ = sample_scene(spec, kinds, rng, config, None)
    auto = render(scene, spec, source_only=source_only, dtype=dtype)
    with _tightened(50):
        ref = render(scene, spec, source_only=source_only)
    for i in np.flatnonzero(ref.total.max(axis=(1, 2, 3)) > 0):
        l2, flux = _errors(auto.total[i], ref.total[i])
        assert l2 < TOL and flux < TOL, (i, kinds[i], l2, flux)


@pytest.mark.slow
def test_auto_is_converged_for_compound_lenses():
    """Double source planes; the first source is a lens galaxy with Sersic n up to 20
    (Wilde+22), whose cusp needs the deepest refinement; the reference takes ~15 s."""
    spec = DES.select(("g", "i"))
    config = PopulationConfig(lens_fraction=1.0, lens_mix={"compound_arc": 1, "double_ring": 1})
    rng = np.random.default_rng(61)
    kinds = config.draw_kinds(12, rng)
    scene, _ = sample_scene(spec, kinds, rng, config, None)
    auto = render(scene, spec, size_px=80)
    with _tightened(1000, levels=26):
        ref = render(scene, spec, size_px=80)
    for i in range(len(scene)):
        l2, flux = _errors(auto.total[i], ref.total[i])
        assert l2 < TOL and flux < TOL, (i, kinds[i], l2, flux)
