"""lensfind.training.mock: vL eq. 4.2 against a hand computation; alpha; stretch; stamps."""

import numpy as np
import pytest

from lensfind.surveys import get_survey
from lensfind.training.mock import ALPHA_RANGE, draw_alpha, mock_lenses, source_stamps, sqrt_stretch


def test_formula_by_hand():
    # l peaks at 10, s peaks at 4, alpha 0.2: s is scaled by 10 * 0.2 / 4 = 0.5
    lens = np.array([[[[1.0, 10.0], [2.0, -1.0]]]])
    src = np.array([[[[0.0, 2.0], [4.0, 1.0]]]])
    m = mock_lenses(lens, src, np.array([0.2]))
    expected = np.array([[[[1.0, 11.0], [4.0, -0.5]]]])
    np.testing.assert_allclose(m, expected, rtol=1e-7)
    assert m.dtype == np.float32
    # the added source peaks at alpha * max(l)
    np.testing.assert_allclose((m - lens).max(), 0.2 * 10.0, rtol=1e-6)


def test_per_object_and_over_all_bands():
    rng = np.random.default_rng(0)
    lens = rng.normal(5, 1, (3, 2, 6, 6))
    src = rng.uniform(0, 3, (3, 2, 6, 6))
    alpha = np.array([0.02, 0.1, 0.3])
    m = mock_lenses(lens, src, alpha)
    for i in range(3):
        scale = lens[i].max() * alpha[i] / src[i].max()  # one scale per object, all bands
        np.testing.assert_allclose(m[i], lens[i] + scale * src[i], rtol=1e-6)


def test_shape_mismatch_and_empty_source_raise():
    with pytest.raises(ValueError, match="need equal"):
        mock_lenses(np.zeros((2, 1, 4, 4)), np.zeros((2, 1, 4, 5)), 0.1)
    with pytest.raises(ValueError, match="without positive flux"):
        mock_lenses(np.ones((1, 1, 4, 4)), np.zeros((1, 1, 4, 4)), 0.1)


def test_alpha_is_uniform_in_vl_range():
    a = draw_alpha(np.random.default_rng(1), 20000)
    assert ALPHA_RANGE == (0.02, 0.3)
    assert a.min() >= 0.02 and a.max() < 0.3
    assert abs(a.mean() - 0.16) < 0.005


def test_sqrt_stretch():
    x = np.array([[[[-1.0, 0.0], [1.0, 3.0]]]])
    np.testing.assert_allclose(sqrt_stretch(x), np.sqrt([[[[0, 0.25], [0.5, 1.0]]]]), rtol=1e-6)
    m = mock_lenses(x + 2, np.ones_like(x), 0.1, sqrt=True)
    assert m.min() == 0.0 and m.max() == 1.0
    np.testing.assert_array_equal(sqrt_stretch(np.ones((1, 1, 2, 2))), 0.0)  # flat: no NaN


def test_source_stamps_are_noiseless_lensed_sources():
    spec = get_survey("kids_dr3")
    a = source_stamps(spec, 6, seed=3)
    assert a.shape == (6, 1, 101, 101)
    peak = a.max(axis=(1, 2, 3))
    assert (peak > 1).all()  # some flux in counts
    # noiseless: only the Fourier-space PSF's ringing (< 1e-6 of the peak) goes negative
    assert (a.min(axis=(1, 2, 3)) > -1e-6 * peak).all()
    np.testing.assert_array_equal(a, source_stamps(spec, 6, seed=3))
    assert not np.array_equal(a, source_stamps(spec, 6, seed=4))
