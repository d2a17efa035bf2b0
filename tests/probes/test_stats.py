"""Probe statistics against independent computations on fixed inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats as sps

from lensfind.errors import ConfigError
from lensfind.probes.stats import (
    binned_stats,
    correct_class_score,
    fit_trend,
    make_edges,
    wilson_interval,
)


def test_correct_class_score_is_p_for_lenses_and_1_minus_p_otherwise():
    p = np.array([0.9, 0.2, 0.7, 0.1])
    lens = np.array([True, True, False, False])
    assert_allclose(correct_class_score(p, lens), [0.9, 0.2, 0.3, 0.9])


def test_wilson_interval_matches_the_textbook_formula():
    # Agresti & Coull (1998): 8 of 10 -> (0.4902, 0.9433) at 95%
    lo, hi = wilson_interval(np.array([8]), np.array([10]))
    assert_allclose([lo[0], hi[0]], [0.4902, 0.9433], atol=1e-4)
    lo, hi = wilson_interval(np.array([0, 5, 0]), np.array([5, 5, 0]))
    assert lo[0] == 0.0 and hi[1] == 1.0 and np.isnan(lo[2])
    assert 0 < hi[0] < 1 and 0 < lo[1] < 1


def test_binned_stats_against_a_loop_over_bins():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 500)
    x[:5] = np.nan
    x[5:9] = [-1, -2, 11, 12]
    s = rng.uniform(0, 1, 500)
    edges = np.array([0.0, 2.5, 5.0, 7.5, 10.0])
    b = binned_stats(x, s, edges, min_count=130)
    for i in range(4):
        sel = (x >= edges[i]) & ((x < edges[i + 1]) if i < 3 else (x <= edges[i + 1]))
        assert b.n[i] == sel.sum()
        assert_allclose(b.mean[i], s[sel].mean())
        assert_allclose(b.std[i], s[sel].std(ddof=0))
        assert_allclose(b.sem[i], sps.sem(s[sel]))
        assert b.n_correct[i] == (s[sel] >= 0.5).sum()
        assert b.ok[i] == (sel.sum() >= 130)
    assert (b.n_nan, b.n_below, b.n_above) == (5, 2, 2)
    assert b.n.sum() + b.n_nan + b.n_below + b.n_above == 500  # nothing dropped silently
    assert_allclose(b.centre, [1.25, 3.75, 6.25, 8.75])


def test_binned_stats_empty_bins_are_nan_not_errors():
    b = binned_stats(np.array([0.1, 0.2]), np.array([1.0, 0.0]), np.array([0.0, 1.0, 2.0]))
    assert b.n.tolist() == [2, 0] and np.isnan(b.mean[1]) and not b.ok[1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=60), st.integers(1, 12))
def test_every_finite_value_lands_in_exactly_one_bin(values, n_bins):
    x = np.array(values)
    edges = make_edges(x, n_bins)
    b = binned_stats(x, np.full(len(x), 0.5), edges)
    assert b.n.sum() == len(x) and b.n_below == b.n_above == 0


def test_make_edges_modes():
    x = np.arange(100.0)
    assert_allclose(make_edges(x, width=25.0), [0, 25, 50, 75, 100])
    assert_allclose(make_edges(x, 4), [0, 24.75, 49.5, 74.25, 99])
    q = make_edges(x, 4, mode="quantile")
    counts = binned_stats(x, np.zeros(100), q).n
    assert counts.min() >= 24 and counts.max() <= 26
    assert_allclose(make_edges(x, [0, 1, 5]), [0, 1, 5])
    with pytest.raises(ConfigError, match="increasing"):
        make_edges(x, [0, 5, 1])
    with pytest.raises(ConfigError, match="unknown bin mode"):
        make_edges(x, 3, mode="log")


def test_theta_e_bins_have_the_papers_width():
    edges = make_edges(np.array([0.8, 3.0]), width=0.052)
    assert_allclose(np.diff(edges), 0.052)
    assert edges[-1] >= 3.0 and len(edges) - 1 == 43


def test_trend_against_scipy_linregress_and_its_interval():
    rng = np.random.default_rng(3)
    p = np.linspace(0, 3, 13)
    mean = 0.95 - 0.12 * p + rng.normal(0, 0.01, p.size)
    t = fit_trend(p, mean)
    ref = sps.linregress(p, mean)
    tq = sps.t.ppf(0.975, p.size - 2)
    assert_allclose(t.slope, ref.slope)
    assert_allclose(t.slope_ci, [ref.slope - tq * ref.stderr, ref.slope + tq * ref.stderr])
    assert not t.zero_consistent
    # mean crosses 0.5 at p = (0.95 - 0.5) / 0.12 = 3.75 -> beyond the range: no crossing
    assert t.p_half is None


def test_flat_trend_is_consistent_with_zero_and_crossing_is_interpolated():
    rng = np.random.default_rng(4)
    flat = fit_trend(np.arange(10.0), 0.9 + rng.normal(0, 0.01, 10))
    assert flat.zero_consistent
    t = fit_trend(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.9, 0.7, 0.4, 0.2]))
    assert t.p_half == pytest.approx(1 + 0.2 / 0.3)


def test_trend_ignores_flagged_bins_and_needs_two_points():
    t = fit_trend(np.array([0.0, 1.0, 2.0]), np.array([0.9, np.nan, 0.7]), ok=[True, True, False])
    assert t.n_points == 1 and np.isnan(t.slope) and not t.zero_consistent
