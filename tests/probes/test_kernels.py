"""Perturbation kernels against numpy/scipy references (Jacobs et al. 2022, sect. 4).

Tolerances: kernels that only multiply or copy are exact; sums in float32
(blur, rotation) match scipy's float64 sums to ``rtol=1e-5`` and
``atol=1e-5 * max|x|``.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage
from scipy import stats as sps

from lensfind.errors import ConfigError
from lensfind.probes.kernel_geometry import rotation_matrix
from lensfind.probes.kernels import (
    colour_jitter,
    flux_scale,
    gaussian_blur,
    gaussian_noise,
    occlude_annulus,
    occlude_disk,
    rotate,
)
from lensfind.probes.perturbations import PERTURBATIONS, Perturbation, get_perturbation
from lensfind.probes.random_fields import colour_factors, standard_normal

HYP = settings(max_examples=30, deadline=None, database=None)


def batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Sky-like stamps: noise around 0 plus a bright central blob, counts."""
    rng = np.random.default_rng(seed)
    h, w = shape[2:]
    yy, xx = np.mgrid[:h, :w]
    blob = 200.0 * np.exp(-((yy - h // 2) ** 2 + (xx - w // 2) ** 2) / 18.0)
    return (rng.normal(0.0, 3.0, shape) + blob).astype(np.float32)


def close(actual: np.ndarray, desired: np.ndarray) -> None:
    scale = float(np.abs(desired).max()) if desired.size else 1.0
    assert_allclose(actual, desired, rtol=1e-5, atol=1e-5 * scale)


def distance(h: int, w: int) -> np.ndarray:
    """Distance of each pixel centre from the object pixel (H // 2, W // 2), pixels."""
    yy, xx = np.mgrid[:h, :w]
    return np.sqrt((yy - h // 2) ** 2.0 + (xx - w // 2) ** 2.0)


def scipy_rotate(x: np.ndarray, angle: float) -> np.ndarray:
    """Bilinear rotation about (H // 2, W // 2) with scipy.ndimage.affine_transform."""
    h, w = x.shape[2:]
    m = rotation_matrix(angle)
    c = np.array([h // 2, w // 2], dtype=np.float64)
    out = np.empty_like(x)
    for n, b in np.ndindex(*x.shape[:2]):
        out[n, b] = ndimage.affine_transform(x[n, b], m, c - m @ c, order=1, mode="constant")
    return out


# Every registry kernel at a mid strength, sky fill for the occlusions.
def apply_all(x: np.ndarray, seed: int = 3) -> dict[str, np.ndarray]:
    sky = np.linspace(1.0, 2.0, x.shape[1])
    return {
        name: p.apply(x, p.strengths[len(p.strengths) // 2], seed, sky)
        for name, p in PERTURBATIONS.items()
    }


# ------------------------------------------------------------------ common contract
@pytest.mark.parametrize("shape", [(0, 2, 9, 9), (1, 1, 9, 9), (3, 4, 12, 17), (2, 3, 17, 12)])
def test_every_kernel_returns_a_new_float32_batch_of_the_same_shape(shape):
    x = batch(shape)
    for name, out in apply_all(x).items():
        assert out.shape == shape and out.dtype == np.float32, name
        assert not np.shares_memory(out, x), name


def test_inputs_are_never_modified_even_read_only_ones():
    x = batch((3, 2, 15, 13))
    kept = x.copy()
    apply_all(x)
    assert_array_equal(x, kept)
    x.flags.writeable = False
    outs = apply_all(x)
    assert_array_equal(x, kept)
    assert all(out.flags.writeable for out in outs.values())


def test_stochastic_kernels_are_deterministic_in_the_seed_and_thread_count():
    x = batch((3, 2, 61, 57))  # the mid-grid annulus (radius 25 pixels) must fit
    first = apply_all(x, seed=5)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = apply_all(x, seed=5)
    finally:
        numba.set_num_threads(threads)
    other = apply_all(x, seed=6)
    for name, p in PERTURBATIONS.items():
        assert_array_equal(first[name], single[name])
        assert_array_equal(first[name], apply_all(x, seed=5)[name])
        assert p.stochastic == (not np.array_equal(first[name], other[name])), name


@pytest.mark.parametrize(
    "name, strength",
    [("colour", 0.0), ("blur", 0.0), ("noise", 0.0), ("disk", 0.0), ("rotation", 0.0),
     ("rotation", 360.0), ("flux", 1.0)],
)  # fmt: skip
def test_identity_strengths_return_an_exact_copy(name, strength):
    x = batch((2, 3, 10, 11))
    out = get_perturbation(name).apply(x, strength, 0, None)
    assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_an_annulus_of_zero_width_is_a_copy():
    x = batch((2, 3, 10, 11))
    assert_array_equal(occlude_annulus(x, 3.0, width_px=0.0), x)


def test_bad_arguments_are_clear_errors():
    x = batch((1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"images: expected \(N, bands, H, W\)"):
        gaussian_blur(x[0], 1.0)
    with pytest.raises(ValueError, match="sigma_px"):
        gaussian_blur(x, -1.0)
    with pytest.raises(ValueError, match="seed"):
        gaussian_noise(x, 1.0, -1)
    with pytest.raises(ValueError, match="'zero', 'sky'"):
        occlude_disk(x, 3.0, fill="mean")
    with pytest.raises(ValueError, match="needs sky_sigma"):
        occlude_annulus(x, 3.0, fill="sky")
    with pytest.raises(ValueError, match="sky_sigma: expected 2"):
        occlude_disk(x, 3.0, fill="sky", sky_sigma=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="angle_deg"):
        rotate(x, float("nan"))


# ---------------------------------------------------------------------- the registry
def test_registry_holds_the_paper_grids():
    assert list(PERTURBATIONS) == ["colour", "blur", "noise", "annulus", "disk", "rotation", "flux"]
    grids = {name: p.strengths for name, p in PERTURBATIONS.items()}
    assert_allclose(grids["colour"], np.arange(21) * 0.05)
    assert_allclose(grids["blur"], np.arange(13) * 0.25)
    assert_allclose(grids["noise"], np.arange(13) * 2.5)
    assert_allclose(grids["annulus"], np.arange(21) * 2.5)
    assert_allclose(grids["disk"], np.arange(15) * 2.5)
    assert_allclose(grids["rotation"], np.arange(13) * 30.0)
    assert_allclose(grids["flux"], np.arange(1, 9) * 0.25)
    assert all(isinstance(s, float) for g in grids.values() for s in g)
    stochastic = {name for name, p in PERTURBATIONS.items() if p.stochastic}
    assert stochastic == {"colour", "noise", "annulus", "disk"}
    with pytest.raises(AttributeError):
        PERTURBATIONS["blur"].name = "other"  # type: ignore[misc]
    assert isinstance(get_perturbation("blur"), Perturbation)


def test_unknown_perturbation_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown perturbation 'jpeg'; known: colour, blur"):
        get_perturbation("jpeg")


def test_occlusion_fill_follows_sky_sigma_or_the_fill_argument():
    x = batch((2, 2, 15, 15))
    sky = np.array([1.0, 3.0])
    p = get_perturbation("disk")
    assert_array_equal(p.apply(x, 4.0, 1, None), occlude_disk(x, 4.0))
    assert_array_equal(p.apply(x, 4.0, 1, sky), occlude_disk(x, 4.0, "sky", sky, 1))
    assert_array_equal(p.apply(x, 4.0, 1, sky, fill="zero"), occlude_disk(x, 4.0))
    a = get_perturbation("annulus").apply(x, 4.0, 1, sky)
    assert_array_equal(a, occlude_annulus(x, 4.0, 5.0, "sky", sky, 1))


# -------------------------------------------------------------------- colour and flux
def test_colour_jitter_multiplies_each_band_by_an_independent_normal_factor():
    x = batch((5, 3, 8, 9))
    f = np.random.default_rng(7).normal(1.0, 0.3, size=(5, 3)).astype(np.float32)
    assert_array_equal(colour_factors(5, 3, 0.3, 7), f)
    assert_array_equal(colour_jitter(x, 0.3, 7), x * f[:, :, None, None])
    many = colour_factors(4000, 3, 0.2, 1)
    assert_allclose([many.mean(), many.std()], [1.0, 0.2], atol=0.01)


@HYP
@given(a=st.floats(-4, 4), b=st.floats(-4, 4))
def test_flux_scale_is_linear(a, b):
    x = batch((2, 2, 6, 7))
    assert_array_equal(flux_scale(x, a), x * np.float32(a))
    assert_allclose(flux_scale(flux_scale(x, a), b), flux_scale(x, a * b), rtol=1e-6, atol=1e-30)
    assert_allclose(flux_scale(x, a) + flux_scale(x, b), flux_scale(x, a + b), rtol=1e-5,
                    atol=1e-5 * float(np.abs(x).max()))  # fmt: skip


# ----------------------------------------------------------------------------- blur
@pytest.mark.parametrize("shape", [(2, 3, 100, 100), (3, 2, 17, 26), (1, 1, 1, 5), (1, 2, 2, 3)])
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5, 5.0, 30.0])
def test_blur_matches_scipy_gaussian_filter_in_reflect_mode(shape, sigma):
    # sigma 30 on 100 pixels: a kernel radius of 120 pixels reflects more than once
    x = batch(shape)
    ref = ndimage.gaussian_filter(x, (0, 0, sigma, sigma), mode="reflect", truncate=4.0)
    close(gaussian_blur(x, sigma), ref)


@HYP
@given(sigma=st.floats(0.05, 40), level=st.floats(-1e4, 1e4), h=st.integers(1, 30))
def test_blur_keeps_a_constant_stamp_constant(sigma, level, h):
    x = np.full((1, 2, h, 31 - h), level, dtype=np.float32)
    assert_allclose(gaussian_blur(x, sigma), x, rtol=1e-5, atol=1e-30)


# ---------------------------------------------------------------------------- noise
def test_noise_is_sigma_band_standard_deviations_of_the_seeded_normal_field():
    x = batch((4, 3, 23, 21))  # odd plane size: planes start at odd counters
    s = np.std(x, axis=(2, 3), dtype=np.float64)
    z = standard_normal(x.shape, 9)
    ref = x + (7.5 * s).astype(np.float32)[:, :, None, None] * z
    assert_allclose(gaussian_noise(x, 7.5, 9), ref, rtol=1e-6, atol=1e-6)
    # the paper's recipe: standardise, add N(0, sigma^2), transform back
    mu = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
    sd = s[:, :, None, None]
    paper = ((x - mu) / sd + 7.5 * z) * sd + mu
    close(gaussian_noise(x, 7.5, 9), paper.astype(np.float32))


def test_noise_leaves_constant_bands_alone():
    x = batch((2, 3, 9, 9))
    x[1, 2] = 42.0
    out = gaussian_noise(x, 20.0, 0)
    assert_array_equal(out[1, 2], x[1, 2])
    assert not np.array_equal(out[1, 1], x[1, 1])


def test_standard_normal_is_normal_and_depends_only_on_seed_and_index():
    z = standard_normal((200_000,), 11)
    assert sps.kstest(z.astype(np.float64), "norm").pvalue > 1e-3
    tail = np.abs(z[np.abs(z) > 3.0]).astype(np.float64)  # tail and wedges of the ziggurat
    assert_allclose(tail.size / z.size, 2 * sps.norm.sf(3.0), rtol=0.15)
    assert sps.kstest(tail, lambda t: 1 - sps.norm.sf(t) / sps.norm.sf(3.0)).pvalue > 1e-3
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01
    assert_array_equal(standard_normal((50, 4000), 11).ravel(), z[:200_000])
    assert_array_equal(standard_normal((3,), 11), z[:3])
    assert not np.array_equal(standard_normal((3,), 12), z[:3])


# ------------------------------------------------------------------------ occlusion
@HYP
@given(h=st.integers(1, 40), w=st.integers(1, 40), r=st.floats(0, 30), n=st.integers(0, 2))
def test_disk_zeros_exactly_the_pixels_closer_than_the_radius(h, w, r, n):
    x = batch((n, 2, h, w)) + 1000.0  # no zero pixels to start with
    out = occlude_disk(x, r)
    inside = distance(h, w) < r
    assert_array_equal(out == 0, np.broadcast_to(inside, out.shape))
    assert_array_equal(out[..., ~inside], x[..., ~inside])


@HYP
@given(h=st.integers(1, 40), w=st.integers(1, 40), r=st.floats(0, 30), width=st.floats(0, 8))
def test_annulus_zeros_exactly_the_ring_between_radius_and_radius_plus_width(h, w, r, width):
    x = batch((2, 3, h, w)) + 1000.0
    out = occlude_annulus(x, r, width)
    d = distance(h, w)
    ring = (d >= r) & (d < r + width)
    assert_array_equal(out == 0, np.broadcast_to(ring, out.shape))
    assert_array_equal(out[..., ~ring], x[..., ~ring])


def test_sky_fill_is_the_band_sky_sigma_times_the_seeded_normal_field():
    x = batch((3, 2, 31, 30))
    sky = np.array([2.0, 0.5])
    ring = (distance(31, 30) >= 6.0) & (distance(31, 30) < 11.0)
    out = occlude_annulus(x, 6.0, 5.0, fill="sky", sky_sigma=sky, seed=4)
    z = standard_normal((6, int(ring.sum())), 4).reshape(3, 2, -1)
    assert_array_equal(out[..., ring], sky.astype(np.float32)[None, :, None] * z)
    assert_array_equal(out[..., ~ring], x[..., ~ring])


# -------------------------------------------------------------------------- rotation
@pytest.mark.parametrize("shape", [(2, 3, 21, 21), (2, 2, 100, 100), (1, 2, 16, 23), (1, 2, 1, 7)])
@pytest.mark.parametrize("angle", [13.0, 30.0, 90.0, 135.0, 180.0, 250.0, -45.0])
def test_rotation_matches_scipy_affine_transform_about_the_object_pixel(shape, angle):
    x = batch(shape)
    close(rotate(x, angle), scipy_rotate(x, angle))


@HYP
@given(half=st.integers(0, 20), k=st.integers(1, 3))
def test_quarter_turns_of_odd_square_stamps_are_exact(half, k):
    x = batch((2, 2, 2 * half + 1, 2 * half + 1))
    assert_array_equal(rotate(x, 90.0 * k), np.rot90(x, -k, axes=(2, 3)))


def test_rotation_is_counter_clockwise_with_the_origin_at_the_lower_left():
    x = np.zeros((1, 1, 11, 11), np.float32)
    x[0, 0, 5, 8] = 1.0  # 3 pixels east (+column) of the centre
    out = rotate(x, 90.0)
    assert out[0, 0, 8, 5] == 1.0  # now 3 pixels north (+row, up when origin='lower')
    odd = batch((1, 2, 15, 15))
    ref = ndimage.rotate(odd, -30.0, axes=(3, 2), reshape=False, order=1, mode="constant")
    close(rotate(odd, 30.0), ref)
