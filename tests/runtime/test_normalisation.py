"""The input normalisations shared by training and scoring: asinh, minmax and the factory."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from lensfind.runtime.normalisation import (
    NORMALISATION_KINDS,
    AsinhNormalisation,
    MinMaxNormalisation,
    Normalisation,
    normalisation_from_dict,
    normalisation_of_kind,
)

HYP = settings(max_examples=40, deadline=None, database=None)


def _reference(images: np.ndarray, scale, softening: float) -> np.ndarray:
    out = np.empty(images.shape, dtype=np.float64)
    for b, s in enumerate(scale):
        out[:, b] = np.arcsinh(images[:, b].astype(np.float64) / (softening * s))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("softening", [1.0, 3.0, 7.5])
def test_matches_arcsinh_per_band(dtype, softening):
    scale = (2.8, 3.4, 6.1, 11.0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 4, 9, 7)) * 50 + rng.uniform(-5, 500, (3, 4, 1, 1))
    images = images.astype(dtype)
    norm = AsinhNormalisation(scale=scale, softening=softening)
    out = norm(images)
    assert out.dtype == np.float32
    assert out.shape == images.shape
    # float32 output (and the float32 per-band denominator): rtol 1e-6
    assert_allclose(out, _reference(images, scale, softening), rtol=1e-6, atol=1e-6)


def test_default_softening_and_linear_regime():
    norm = AsinhNormalisation(scale=(2.0,))
    assert norm.softening == 3.0
    x = np.array([0.0, 1e-3, -1e-3, 60.0]).reshape(1, 1, 1, 4)
    out = norm(x)
    # arcsinh(u) ~ u for small u: x / (3 * 2)
    assert_allclose(out[0, 0, 0, :3], [0.0, 1e-3 / 6, -1e-3 / 6], rtol=1e-5)
    assert_allclose(out[0, 0, 0, 3], np.arcsinh(10.0), rtol=1e-6)


@HYP
@given(
    scale=st.lists(st.floats(0.1, 100.0), min_size=1, max_size=5),
    softening=st.floats(0.5, 10.0),
    seed=st.integers(0, 2**16),
)
def test_property_per_band_and_odd(scale, softening, seed):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((2, len(scale), 5, 5)) * 100
    norm = AsinhNormalisation(scale=tuple(scale), softening=softening)
    out = norm(images)
    assert_allclose(out, _reference(images, scale, softening), rtol=1e-6, atol=1e-6)
    # the stretch is odd and monotone
    assert_allclose(norm(-images), -out, rtol=0, atol=0)
    order = np.argsort(images[0, 0].ravel())
    assert np.all(np.diff(out[0, 0].ravel()[order]) >= 0)


def test_does_not_modify_input():
    norm = AsinhNormalisation(scale=(1.0, 2.0))
    for dtype in (np.float32, np.float64):
        images = np.random.default_rng(1).uniform(-10, 100, (2, 2, 4, 4)).astype(dtype)
        before = images.copy()
        out = norm(images)
        assert np.array_equal(images, before)
        assert not np.shares_memory(out, images)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 5, 8, 8), (4, 8, 8), (2, 4, 8, 8, 1)])
def test_wrong_shape_raises_with_shapes(shape):
    norm = AsinhNormalisation(scale=(1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValueError) as info:
        norm(np.zeros(shape))
    msg = str(info.value)
    assert "(N, 4, H, W)" in msg
    assert str(shape) in msg


def test_dict_round_trip_through_json():
    norm = AsinhNormalisation(scale=(2.8208, 3.1, 5.25, 9.0), softening=2.5)
    data = norm.to_dict()
    assert data == {"kind": "asinh", "scale": [2.8208, 3.1, 5.25, 9.0], "softening": 2.5}
    back = AsinhNormalisation.from_dict(json.loads(json.dumps(data)))
    assert back == norm
    assert isinstance(back.scale, tuple)
    x = np.random.default_rng(2).normal(0, 20, (1, 4, 3, 3))
    assert np.array_equal(back(x), norm(x))


def test_from_dict_rejects_unknown_kind():
    with pytest.raises(ValueError, match="'linear'"):
        AsinhNormalisation.from_dict({"kind": "linear", "scale": [1.0], "softening": 3.0})
    with pytest.raises(ValueError, match="None"):
        AsinhNormalisation.from_dict({"scale": [1.0], "softening": 3.0})


def test_is_frozen():
    norm = AsinhNormalisation(scale=(1.0,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        norm.softening = 1.0  # type: ignore[misc]


# --- minmax (Wilde et al. 2022) and the one factory ------------------------------


def _minmax_reference(images: np.ndarray) -> np.ndarray:
    """Wilde et al.'s loader, stamp by stamp: (x - amin(x)) / (amax(x) - amin(x))."""
    out = np.empty(images.shape, dtype=np.float64)
    for i in range(images.shape[0]):
        for b in range(images.shape[1]):
            x = images[i, b].astype(np.float64)
            out[i, b] = (x - np.amin(x)) / (np.amax(x) - np.amin(x))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minmax_matches_the_authors_per_stamp_scaling(dtype):
    rng = np.random.default_rng(4)
    images = rng.standard_normal((5, 4, 11, 9)) * rng.uniform(1, 300, (5, 4, 1, 1))
    images = (images + rng.uniform(-50, 500, (5, 4, 1, 1))).astype(dtype)
    out = MinMaxNormalisation()(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    assert_allclose(out, _minmax_reference(images), rtol=1e-6, atol=1e-6)
    # every band of every cutout spans exactly [0, 1]
    assert np.array_equal(out.min(axis=(2, 3)), np.zeros((5, 4), np.float32))
    assert_allclose(out.max(axis=(2, 3)), 1.0, rtol=0, atol=1e-6)


@HYP
@given(
    n_bands=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    gain=st.floats(1e-3, 1e3),
    offset=st.floats(-1e3, 1e3),
)
def test_minmax_property_per_band_and_affine_invariant(n_bands, seed, gain, offset):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((3, n_bands, 6, 5)) * 20
    norm = MinMaxNormalisation()
    out = norm(images)
    assert_allclose(out, _minmax_reference(images), rtol=1e-6, atol=1e-6)
    # a positive gain and an offset of the counts change nothing (up to float32)
    assert_allclose(norm(images * gain + offset), out, rtol=0, atol=2e-5)


def test_minmax_flat_band_is_zero_and_in_place_works():
    images = np.random.default_rng(5).normal(0, 3, (2, 3, 4, 4)).astype(np.float32)
    images[1, 2] = 7.5  # one flat band: 0/0 in the formula
    want = MinMaxNormalisation()(images)
    assert np.isfinite(want).all() and np.array_equal(want[1, 2], np.zeros((4, 4)))
    before = images.copy()
    out = MinMaxNormalisation()(images)
    assert np.array_equal(images, before) and not np.shares_memory(out, images)
    same = MinMaxNormalisation()(images, out=images)
    assert same is images and np.array_equal(images, want)
    with pytest.raises(ValueError, match=r"\(N, bands, H, W\)"):
        MinMaxNormalisation()(np.zeros((3, 4, 4)))


@pytest.mark.parametrize(
    "norm", [AsinhNormalisation(scale=(2.5, 4.0), softening=2.0), MinMaxNormalisation()]
)
def test_factory_round_trips_both_kinds_through_json(norm):
    data = json.loads(json.dumps(norm.to_dict()))
    back = normalisation_from_dict(data)
    assert back == norm and type(back) is type(norm) and back.kind == data["kind"]
    assert isinstance(back, Normalisation)
    x = np.random.default_rng(6).normal(0, 20, (2, 2, 5, 5))
    assert np.array_equal(back(x), norm(x))


def test_factory_names_an_unknown_kind_and_the_known_ones():
    with pytest.raises(ValueError) as info:
        normalisation_from_dict({"kind": "zscale"})
    assert "'zscale'" in str(info.value) and "asinh, minmax" in str(info.value)
    with pytest.raises(ValueError, match="None"):
        normalisation_from_dict({"scale": [1.0]})
    with pytest.raises(ValueError, match="no parameters"):
        normalisation_from_dict({"kind": "minmax", "scale": [1.0]})
    assert NORMALISATION_KINDS == ("asinh", "minmax")
    assert normalisation_of_kind("minmax", [1.0, 2.0]) == MinMaxNormalisation()
    assert normalisation_of_kind("asinh", [1.0, 2.0]) == AsinhNormalisation(scale=(1.0, 2.0))
    with pytest.raises(ValueError, match="'log'"):
        normalisation_of_kind("log", [1.0])
