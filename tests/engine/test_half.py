"""lensfind.engine.half: float16 cutout encoding is numpy's, bit for bit, only faster."""

import numpy as np
import pytest

from lensfind.engine.half import F16_MAX, decode_float16, encode_float16

ALL_HALVES = np.arange(2**16, dtype=np.uint16).view(np.float16)


def _numpy_encode(images: np.ndarray, scale: np.ndarray) -> np.ndarray:
    scaled = images / scale.astype(np.float32).reshape(1, -1, 1, 1)
    return np.clip(scaled, -F16_MAX, F16_MAX).astype(np.float16)


def test_decode_matches_numpy_for_every_half_value():
    halves = ALL_HALVES.reshape(1, 1, 256, 256)
    got = decode_float16(halves, np.array([2.5], dtype=np.float32))
    with np.errstate(invalid="ignore"):
        want = halves.astype(np.float32) * np.float32(2.5)
    np.testing.assert_array_equal(got, want)  # NaNs compare equal here


def test_every_finite_half_encodes_to_itself():
    finite = ALL_HALVES[np.isfinite(ALL_HALVES)]
    back, clipped = encode_float16(finite.astype(np.float32).reshape(1, 1, 1, -1), np.ones(1))
    assert clipped == 0
    np.testing.assert_array_equal(back.view(np.uint16).ravel(), finite.view(np.uint16))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encode_matches_numpy_with_rounding_subnormals_and_clipping(seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 30, (5, 3, 16, 16)).astype(np.float32)
    # every magnitude from far below the subnormals to far beyond the range, both signs
    mags = np.geomspace(1e-12, 1e12, 256).astype(np.float32).reshape(16, 16)
    images[0, 0], images[0, 1] = mags, -mags
    images[1, 2, 0, :4] = [0.0, -0.0, np.inf, -np.inf]
    # ties: halfway between neighbouring halves (round to even)
    lo = ALL_HALVES[15360:15377].astype(np.float64)  # 1.0 and up
    images[2, 0, 0] = ((lo[:-1] + lo[1:]) / 2 * 3.0).astype(np.float32)
    scale = np.array([3.0, 0.7, 11.0])
    got, clipped = encode_float16(images, scale)
    want = _numpy_encode(images, scale)
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    assert clipped == int((np.abs(images / scale.reshape(1, -1, 1, 1)) > F16_MAX).sum())
    assert got.shape == images.shape and got.dtype == np.float16


def test_empty_batches():
    half, clipped = encode_float16(np.zeros((0, 4, 5, 5), np.float32), np.ones(4))
    assert half.shape == (0, 4, 5, 5) and clipped == 0
    assert decode_float16(half, np.ones(4)).shape == (0, 4, 5, 5)


def test_non_contiguous_input_is_encoded_as_its_values():
    images = np.random.default_rng(3).normal(0, 5, (4, 2, 8, 8)).astype(np.float32)
    view = images[::2]
    got, _ = encode_float16(view, np.ones(2))
    np.testing.assert_array_equal(got, _numpy_encode(view, np.ones(2)))
