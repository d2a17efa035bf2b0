"""The sensitivity probe's numbers against independent computations on fixed inputs."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from lensfind.probes.sensitivity import (
    ProbeSet,
    make_probe_set,
    mixed_kinds,
    parameter_probe,
    perturbation_probe,
    perturbation_surface,
    psf_probe,
    surface_probe,
)
from lensfind.simulation.population import PopulationConfig
from lensfind.surveys import get_survey


def flux_scorer(images: np.ndarray) -> np.ndarray:
    """A stand-in model: P(lens) rises with the mean pixel value of the stamp."""
    return 1.0 / (1.0 + np.exp(-images.mean(axis=(1, 2, 3))))


@pytest.fixture
def fixed_set() -> ProbeSet:
    rng = np.random.default_rng(0)
    n = 60
    is_lens = np.arange(n) % 2 == 0
    images = rng.normal(0, 1, (n, 2, 8, 8)).astype(np.float32)
    images[is_lens] += 1.0
    theta = np.where(is_lens, rng.uniform(0.8, 3.0, n), np.nan)
    truth = {"theta_e_arcsec": theta, "is_lens": is_lens, "mag": rng.uniform(18, 22, n)}
    return ProbeSet(images, is_lens, truth, {"source": "test"})


def _s_k(images, is_lens):
    p = flux_scorer(images)
    return np.where(is_lens, p, 1 - p), p


def test_parameter_probe_matches_a_loop_over_bins(fixed_set):
    edges = np.array([0.8, 1.5, 2.2, 3.0])
    r = parameter_probe({"m": flux_scorer}, fixed_set, "theta_e_arcsec", edges, min_count=1)
    t = r.table.to_pydict()
    s_k, p = _s_k(fixed_set.images, fixed_set.is_lens)
    theta = fixed_set.truth["theta_e_arcsec"]
    for i in range(3):
        sel = fixed_set.is_lens & (theta >= edges[i]) & (theta <= edges[i + 1])
        sel &= theta < edges[i + 1] if i < 2 else True
        assert t["n"][i] == sel.sum()
        assert t["mean"][i] == pytest.approx(s_k[sel].mean())
        assert t["std"][i] == pytest.approx(s_k[sel].std(ddof=0))
        assert t["n_correct"][i] == (p[sel] >= 0.5).sum()
    assert set(t["test_set"]) == {"lenses"} and set(t["parameter"]) == {"theta_e_arcsec"}
    (trend,) = r.trends
    assert trend["n_nan"] == 0 and trend["n_points"] == 3


def test_objects_outside_the_bins_are_counted(fixed_set):
    r = parameter_probe({"m": flux_scorer}, fixed_set, "theta_e_arcsec", np.array([1.0, 2.0]),
                        test_sets=("lenses", "nonlenses"))  # fmt: skip
    lens_trend, non_trend = r.trends
    theta = fixed_set.truth["theta_e_arcsec"][fixed_set.is_lens]
    assert lens_trend["n_below"] == (theta < 1).sum() and lens_trend["n_above"] == (theta > 2).sum()
    assert non_trend["n_nan"] == (~fixed_set.is_lens).sum()  # non-lenses have no theta_E


def test_perturbation_probe_statistics_and_paired_deltas(fixed_set):
    def dim(images, p):
        return images * np.float32(1 - p)

    r = perturbation_probe({"a": flux_scorer, "b": flux_scorer}, fixed_set, "dim", dim,
                           [0.0, 0.5, 1.0])  # fmt: skip
    t = r.table.to_pydict()
    assert len(t["p"]) == 2 * 3 * 3  # models x strengths x test sets
    s0, _ = _s_k(fixed_set.images, fixed_set.is_lens)
    for row in range(len(t["p"])):
        p, ts = t["p"][row], t["test_set"][row]
        m = {"lenses": fixed_set.is_lens, "nonlenses": ~fixed_set.is_lens}.get(
            ts, np.ones(60, bool)
        )
        s, prob = _s_k(dim(fixed_set.images, p), fixed_set.is_lens)
        assert t["n"][row] == m.sum()
        assert t["mean"][row] == pytest.approx(s[m].mean())
        assert t["std"][row] == pytest.approx(s[m].std())
        assert t["delta_mean"][row] == pytest.approx((s - s0)[m].mean(), abs=1e-6)
        correct = (prob[m] >= 0.5) == fixed_set.is_lens[m]
        assert t["frac_correct"][row] == pytest.approx(correct.mean())
        assert t["ci_lo"][row] <= t["frac_correct"][row] <= t["ci_hi"][row]
    assert {(x["model"], x["test_set"]) for x in r.trends} == {
        (m, s) for m in "ab" for s in ("lenses", "nonlenses", "mix")
    }
    # fully dimmed images score 0.5 -> the lens curve falls to 0.5 exactly at p = 1
    lens_a = next(x for x in r.trends if x["model"] == "a" and x["test_set"] == "lenses")
    assert lens_a["slope"] < 0


def test_surfaces_cover_every_binned_object(fixed_set):
    fixed_set.truth["mag"][fixed_set.is_lens] = np.linspace(18, 22, 30)
    r = surface_probe({"m": flux_scorer}, fixed_set, "theta_e_arcsec", "mag",
                      np.array([0.8, 1.9, 3.0]), np.array([18.0, 20.0, 22.0]))  # fmt: skip
    assert sum(r.table["n"].to_pylist()) == fixed_set.is_lens.sum()
    s = perturbation_surface({"m": flux_scorer}, fixed_set, "theta_e_arcsec",
                             np.array([0.8, 1.9, 3.0]), "dim", lambda x, p: x * (1 - p),
                             [0.0, 1.0])  # fmt: skip
    t = s.table.to_pydict()
    assert t["y_centre"] == [0.0, 0.0, 1.0, 1.0]
    assert t["mean"][2] == pytest.approx(0.5) and t["mean"][3] == pytest.approx(0.5)


def test_mixed_sets_are_half_lenses_and_reproducible():
    kinds = mixed_kinds(101, 3, PopulationConfig())
    assert (kinds == "lens").sum() == 50
    assert (mixed_kinds(101, 3, PopulationConfig()) == kinds).all()
    spec = get_survey("des_y3")
    a = make_probe_set(spec, 6, seed=1)
    b = make_probe_set(spec, 6, seed=1)
    assert (a.images == b.images).all() and a.is_lens.sum() == 3


def test_psf_probe_resimulates_the_same_objects():
    spec = get_survey("des_y3")
    r = psf_probe({"m": flux_scorer}, spec, 6, seed=2, factors=(1.0, 2.5))
    assert r.meta["resimulated"] and r.table["p"].to_pylist()[::3] == [1.0, 2.5]
    wide = make_probe_set(spec, 6, seed=2, seeing_factor=2.5)
    narrow = make_probe_set(spec, 6, seed=2, seeing_factor=1.0)
    assert (wide.is_lens == narrow.is_lens).all()
    assert_allclose(wide.truth["theta_e_arcsec"], narrow.truth["theta_e_arcsec"])
    assert_allclose(wide.truth["psf_fwhm_arcsec"], 2.5 * narrow.truth["psf_fwhm_arcsec"])
    mix = [row for row in r.table.to_pylist() if row["test_set"] == "mix"]
    s, _ = _s_k(wide.images, wide.is_lens)
    assert mix[1]["mean"] == pytest.approx(s.mean())


def test_probe_sets_on_another_grid_are_centred_as_training_sets_there():
    """OU-66 is trained on Euclid's NISP grid with offsets of one VIS pixel; its probes too."""
    from lensfind.probes.sensitivity import make_probe_set, mixed_kinds
    from lensfind.simulation.dataset import on_common_grid, population_on_grid
    from lensfind.simulation.simulate import simulate
    from lensfind.surveys import get_survey

    grid, trained = on_common_grid(get_survey("euclid_wide"), 0.3, 66)
    assert trained.center_jitter_px == pytest.approx(1 / 3)  # 0.1" on a 0.3"/px grid
    assert population_on_grid(grid).center_jitter_px == pytest.approx(1 / 3)
    des = get_survey("des_y3")
    assert population_on_grid(des).center_jitter_px == 1.0  # its own grid
    probe = make_probe_set(grid, 6, 5)
    training = simulate(grid, 6, 5, config=trained, kinds=mixed_kinds(6, 5, trained))
    np.testing.assert_array_equal(probe.images, training.images)


def test_band_subsets_keep_the_survey_offsets():
    """NISP-only sets (OU-66's single-band members) are centred as the four-band ones."""
    from lensfind.simulation.dataset import on_common_grid

    nisp = get_survey("euclid_wide").select(("J", "Y", "H"))
    _, config = on_common_grid(nisp, 0.3, 66)
    assert config.center_jitter_px == pytest.approx(1 / 3)  # one VIS pixel, not one NISP pixel
