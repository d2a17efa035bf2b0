"""Expected purity of a candidate list and the candidates to inspect."""

import numpy as np
import pytest

from lensfind.catalogue.purity import expected_purity, inspect_to_find
from lensfind.runtime.calibration import posterior_lens_probability, sigmoid


def test_inspect_to_find_by_hand():
    post = np.array([0.9, 0.6, 0.5, 0.3, 0.2])  # cumulative 0.9, 1.5, 2.0, 2.3, 2.5
    assert inspect_to_find(post, (1, 2, 3)) == {"1": 2, "2": 3, "3": None}
    assert inspect_to_find(np.array([1.0, 1.0]), (1, 2)) == {"1": 1, "2": 2}
    assert inspect_to_find(np.array([]), (1,)) == {"1": None}


def test_thresholds_start_at_the_runs_and_counts_by_hand():
    scores = np.array([0.995, 0.93, 0.91, 0.85])
    out = expected_purity(scores, n_scored=1000, threshold=0.85, prior_lens_rate=0.5,
                          calibration_lens_fraction=0.5)  # fmt: skip
    rows = {r["threshold"]: r for r in out["thresholds"]}
    assert sorted(rows) == [0.85, 0.9, 0.95, 0.99, 0.999]
    # prior == calibration fraction: the posterior is the score itself
    assert rows[0.85]["n_candidates"] == 4
    assert rows[0.85]["expected_true_lenses"] == pytest.approx(scores.sum(), abs=1e-4)
    assert rows[0.9]["expected_purity"] == pytest.approx((0.995 + 0.93 + 0.91) / 3, abs=1e-5)
    assert rows[0.999]["n_candidates"] == 0 and rows[0.999]["expected_purity"] is None
    assert "completeness" not in rows[0.85]
    assert out["expected_lenses_scanned"] == 500 and out["prior_consistent"] is True


def test_selection_estimate_is_rate_times_scanned_times_completeness():
    injected = np.array([0.99, 0.96, 0.92, 0.6, 0.3, np.nan])  # the NaN is left out
    out = expected_purity(np.array([0.97, 0.95, 0.7]), n_scored=20000, threshold=0.5,
                          prior_lens_rate=1e-3, calibration_lens_fraction=0.5,
                          injected_scores=injected)  # fmt: skip
    rows = {r["threshold"]: r for r in out["thresholds"]}
    assert rows[0.5]["completeness"] == pytest.approx(4 / 5)
    assert rows[0.5]["expected_true_lenses_selection"] == pytest.approx(1e-3 * 20000 * 0.8)
    assert rows[0.5]["expected_purity_selection"] == 1.0  # 16 expected, 3 candidates: capped
    assert rows[0.95]["completeness"] == pytest.approx(2 / 5)
    # a rare prior shrinks the calibrated posterior far below the score
    want = posterior_lens_probability(np.array([0.97, 0.95]), 1e-3, 0.5).sum()
    assert rows[0.95]["expected_true_lenses"] == pytest.approx(want, abs=1e-4)
    assert want < 0.1
    assert out["prior_consistent"] is True  # ~0.1 expected above 0.5, 20 allowed


def test_a_prior_below_what_the_scores_show_is_flagged():
    out = expected_purity(np.full(50, 0.999999), n_scored=1000, threshold=0.5,
                          prior_lens_rate=1e-3, calibration_lens_fraction=0.5)  # fmt: skip
    assert out["thresholds"][0]["expected_true_lenses"] > 1.0
    assert out["prior_consistent"] is False


def test_expected_purity_matches_a_simulated_sky():
    """Scores calibrated on a 50/50 set predict the purity of a sky with 1% lenses."""
    rng = np.random.default_rng(3)
    n, rate, m = 400_000, 0.01, 2.0
    is_lens = rng.random(n) < rate
    x = rng.normal(np.where(is_lens, m, -m), 1.0)
    # log-likelihood ratio of the two unit Gaussians: calibrated at lens fraction 0.5
    p = sigmoid(2 * m * x)
    for t in (0.5, 0.9, 0.99):
        sel = p >= t
        est = expected_purity(p[sel], n, t, rate, 0.5, thresholds=())
        row = est["thresholds"][0]
        true_lenses = int(is_lens[sel].sum())
        assert row["n_candidates"] == int(sel.sum())
        assert row["expected_true_lenses"] == pytest.approx(true_lenses, rel=0.08)
        assert row["expected_purity"] == pytest.approx(true_lenses / sel.sum(), rel=0.08)


def test_bad_prior_is_an_error():
    with pytest.raises(ValueError, match="prior lens rate"):
        expected_purity(np.array([0.9]), 10, 0.5, 0.0, 0.5)


def test_the_consistent_prior_is_the_smallest_rate_the_scores_allow():
    from lensfind.catalogue.purity import consistent_prior_rate

    scores = np.random.default_rng(3).uniform(0.99, 0.99999, 300)
    n_scored = 2000
    p = expected_purity(scores, n_scored, 0.5, 1e-3, 0.5)
    suggested = p["consistent_prior_lens_rate"]
    assert p["prior_consistent"] is False and suggested > 1e-3
    exact = consistent_prior_rate(scores, n_scored, 0.5, 0.5)
    assert exact <= suggested < exact * 1.01  # rounded up to 3 digits
    # at the rate, and above it, consistent; 1% below it, not (independently summed)
    for rate, ok in ((suggested, True), (2 * suggested, True), (0.99 * exact, False)):
        e = posterior_lens_probability(scores, rate, 0.5).sum()
        assert bool(e <= rate * n_scored) is ok
        assert expected_purity(scores, n_scored, 0.5, rate, 0.5)["prior_consistent"] is ok
    assert (
        expected_purity(scores, n_scored, 0.5, suggested, 0.5)["consistent_prior_lens_rate"] is None
    )
