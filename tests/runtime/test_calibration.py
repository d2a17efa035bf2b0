"""Temperature scaling and the expected calibration error, against scikit-learn."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression

from lensfind.runtime.calibration import (
    Calibration,
    apply_temperature,
    binary_nll,
    expected_calibration_error,
    fit_temperature,
    logit,
    posterior_lens_probability,
)


def _overconfident(n: int = 4000, true_t: float = 2.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    z_true = rng.normal(0, 2.0, n)
    y = rng.random(n) < 1 / (1 + np.exp(-z_true))
    p = 1 / (1 + np.exp(-true_t * z_true))  # logits too large by true_t
    return p, y


def test_ece_matches_sklearn_calibration_curve():
    p, y = _overconfident()
    frac, mean_p = calibration_curve(y, p, n_bins=15, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 16)[1:-1], p), minlength=15)
    ref = np.sum(counts[counts > 0] / len(p) * np.abs(frac - mean_p))
    assert expected_calibration_error(p, y, 15) == pytest.approx(ref, rel=1e-12)


def test_temperature_matches_logistic_regression_and_reduces_ece():
    p, y = _overconfident()
    t = fit_temperature(p, y)
    lr = LogisticRegression(fit_intercept=False, C=1e12, tol=1e-10, max_iter=1000)
    lr.fit(logit(p)[:, None], y)
    assert 1 / t == pytest.approx(lr.coef_[0, 0], rel=1e-4)
    assert t == pytest.approx(2.5, rel=0.1)
    q = apply_temperature(p, t)
    assert expected_calibration_error(q, y) < 0.5 * expected_calibration_error(p, y)
    assert binary_nll(q, y) < binary_nll(p, y)
    assert np.all(np.diff(q[np.argsort(p)]) >= 0), "the ranking is kept (float32 ties aside)"
    assert apply_temperature(np.array([0.5]), t)[0] == pytest.approx(0.5)


def test_posterior_moves_odds_to_the_prior():
    p = np.array([0.5, 0.9, 0.999])
    post = posterior_lens_probability(p, 1e-3, 0.5)
    odds = p / (1 - p) * (1e-3 / (1 - 1e-3))
    np.testing.assert_allclose(post, odds / (1 + odds), rtol=1e-9)
    np.testing.assert_allclose(posterior_lens_probability(p, 0.5, 0.5), p, rtol=1e-9)


def test_calibration_from_card():
    assert Calibration.from_card({}) is None
    cal = Calibration.from_card({"calibration": {"method": "temperature", "temperature": 2.0}})
    assert cal is not None and cal.lens_fraction == 0.5
    np.testing.assert_allclose(cal.apply(np.array([0.9])), apply_temperature([0.9], 2.0))
    with pytest.raises(ValueError):
        Calibration.from_card({"calibration": {"method": "isotonic", "temperature": 1.0}})
