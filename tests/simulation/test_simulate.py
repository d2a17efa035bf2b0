"""simulate(): reproducibility, truth columns and population constraints."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lensfind.simulation.population import KINDS, PopulationConfig
from lensfind.simulation.simulate import TRUTH_COLUMNS, reference_band, simulate
from lensfind.surveys import get_survey

DES = get_survey("des_y3")
SIZE = 64  # smaller than the 100 px cutout to keep the tests fast; theta_E <= 3" = 11 px


@pytest.fixture(scope="module")
def sim():
    return simulate(DES, 128, seed=2024, size_px=SIZE)


def _truth_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind == "f":
            assert_array_equal(a[k], b[k], err_msg=k)  # NaN == NaN here
        else:
            assert np.array_equal(a[k], b[k]), k


def test_same_seed_is_byte_identical_and_other_seed_differs():
    a = simulate(DES, 20, seed=7, size_px=32, chunk=8)
    b = simulate(DES, 20, seed=7, size_px=32, chunk=8)
    c = simulate(DES, 20, seed=8, size_px=32, chunk=8)
    assert a.images.tobytes() == b.images.tobytes()
    _truth_equal(a.truth, b.truth)
    assert a.images.tobytes() != c.images.tobytes()
    assert not np.array_equal(a.truth["mag_r_lens"], c.truth["mag_r_lens"])


def test_objects_depend_only_on_seed_and_chunk():
    """Documented: object i depends only on seed and i // chunk (with fixed kinds)."""
    kinds = np.array(
        ["lens", "star", "pair", "spiral", "elliptical", "edge_on", "lens", "lens"] * 2
    )
    long = simulate(DES, 16, seed=3, kinds=kinds, size_px=24, chunk=8)
    short = simulate(DES, 8, seed=3, kinds=kinds[:8], size_px=24, chunk=8)
    assert long.images[:8].tobytes() == short.images.tobytes()
    _truth_equal({k: v[:8] for k, v in long.truth.items()}, short.truth)


def test_truth_columns_and_shapes(sim):
    n = 128
    expected = set(TRUTH_COLUMNS) | {f"psf_fwhm_{b}_arcsec" for b in DES.band_names}
    assert set(sim.truth) == expected
    for key, value in sim.truth.items():
        assert value.shape == (n,), key
    assert len(sim) == n
    assert sim.images.shape == (n, 4, SIZE, SIZE)
    assert sim.images.dtype == np.float32
    assert np.all(np.isfinite(sim.images))
    assert sim.truth["is_lens"].dtype == np.bool_
    assert sim.truth["kind"].dtype.kind == "U"
    assert set(np.unique(sim.truth["kind"])) <= set(KINDS)
    # single-band PSF truth is the reference (r) band
    assert reference_band(DES) == 1
    assert_array_equal(sim.truth["psf_fwhm_arcsec"], sim.truth["psf_fwhm_r_arcsec"])
    # per-band PSF FWHM: a common seeing factor times the survey medians
    ratio = np.stack(
        [sim.truth[f"psf_fwhm_{b.name}_arcsec"] / b.psf_fwhm_arcsec for b in DES.bands]
    )
    assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape), rtol=1e-12)
    assert np.all((ratio >= 0.6 - 1e-12) & (ratio <= 1.8 + 1e-12))


def test_is_lens_matches_kind_and_nonlens_truth_is_nan(sim):
    t = sim.truth
    assert_array_equal(t["is_lens"], t["kind"] == "lens")
    non = ~t["is_lens"]
    assert non.any() and t["is_lens"].any()  # the default mix has both at n = 128
    for key in ("theta_e_arcsec", "mag_g_source", "alpha", "magnification", "source_snr"):
        assert np.all(np.isnan(t[key][non])), key
        assert np.all(np.isfinite(t[key][~non])), key
    assert np.all(np.isfinite(t["mag_r_lens"]))


def test_lens_truth_respects_config(sim):
    cfg = PopulationConfig()
    t = sim.truth
    lens = t["is_lens"]
    mu = t["magnification"][lens]
    assert np.mean(mu > 1.0) > 0.9, np.sort(mu)[:10]
    assert np.all(t["source_snr"][lens] >= cfg.min_source_snr * (1 - 1e-9))
    lo, hi = cfg.theta_e_range_arcsec
    assert np.all((t["theta_e_arcsec"][lens] >= lo) & (t["theta_e_arcsec"][lens] <= hi))
    assert np.all(t["alpha"][lens] > 0)


def test_noise_false_gives_the_noiseless_version_of_the_same_objects():
    kinds = np.array(["lens", "elliptical", "star", "spiral"])
    noisy = simulate(DES, 4, seed=11, kinds=kinds, size_px=48)
    clean = simulate(DES, 4, seed=11, kinds=kinds, size_px=48, noise=False)
    _truth_equal(noisy.truth, clean.truth)
    resid = noisy.images.astype(np.float64) - clean.images
    # blank corners (12 x 12 px) are dominated by sky noise at the survey depth
    corners = np.concatenate([resid[:, :, :12, :12], resid[:, :, -12:, -12:]], axis=2)
    std = corners.std(axis=(0, 2, 3))
    sky = np.array([b.sky_sigma_counts for b in DES.bands])
    # 1152 samples per band: 2% standard error (plus a little object Poisson noise)
    assert_allclose(std, sky, rtol=0.1)


def test_lens_fraction_zero_and_one():
    none = simulate(DES, 24, seed=1, config=PopulationConfig(lens_fraction=0.0), size_px=24)
    assert not none.truth["is_lens"].any()
    assert np.all(np.isnan(none.truth["theta_e_arcsec"]))
    all_ = simulate(DES, 24, seed=1, config=PopulationConfig(lens_fraction=1.0), size_px=24)
    assert all_.truth["is_lens"].all()


def test_fixed_kinds_respected():
    kinds = np.array(["star", "lens", "pair", "edge_on", "spiral", "elliptical", "lens"])
    out = simulate(DES, 7, seed=5, kinds=kinds, size_px=40, chunk=3)
    assert_array_equal(out.truth["kind"], kinds)
    assert_array_equal(out.truth["is_lens"], kinds == "lens")


def test_unknown_kind_raises_naming_it():
    kinds = np.array(["lens", "quasar", "star"])
    with pytest.raises(ValueError, match="quasar"):
        simulate(DES, 3, seed=0, kinds=kinds, size_px=16)


def test_kinds_length_mismatch_raises():
    with pytest.raises(ValueError, match="n=4"):
        simulate(DES, 4, seed=0, kinds=np.array(["lens", "star"]), size_px=16)


def test_seeing_factor_sets_psf_truth_and_progress_counts():
    factor = np.array([0.7, 1.0, 1.3, 1.6, 0.9])
    done: list[int] = []
    out = simulate(DES, 5, seed=2, seeing_factor=factor, size_px=16, chunk=2, progress=done.append)
    assert done == [2, 2, 1]
    for b in DES.bands:
        assert_allclose(
            out.truth[f"psf_fwhm_{b.name}_arcsec"], factor * b.psf_fwhm_arcsec, rtol=1e-12
        )


def test_single_band_survey_kids():
    kids = get_survey("kids_dr3")
    out = simulate(kids, 6, seed=9, kinds=np.array(["lens", "star"] * 3))
    assert out.images.shape == (6, 1, 101, 101)
    assert out.images.dtype == np.float32
    assert set(out.truth) == set(TRUTH_COLUMNS) | {"psf_fwhm_r_arcsec"}
    assert_array_equal(out.truth["psf_fwhm_arcsec"], out.truth["psf_fwhm_r_arcsec"])
    lens = out.truth["is_lens"]
    assert np.all(out.truth["source_snr"][lens] >= PopulationConfig().min_source_snr * (1 - 1e-9))
    assert np.all(np.isfinite(out.truth["magnification"][lens]))
