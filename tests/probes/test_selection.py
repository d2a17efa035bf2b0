"""Injection-recovery: which hosts, what is injected, and the completeness table."""

import numpy as np
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose

from lensfind.probes.selection import joint_table, selection_table, sparse_bins, write_selection
from lensfind.simulation.inject import (
    choose_hosts,
    inject,
    inject_lenses,
    injection_population,
    simulate_sources,
)
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import simulate
from lensfind.surveys import get_survey

SPEC = get_survey("des_y3")
#: What is injected by default: the default (training) population, all lenses, centred.
INJECTED = injection_population(PopulationConfig())


def test_host_choice_is_a_fixed_fraction_by_object_id():
    ids = np.arange(1_000_000, 1_100_000)
    chosen = choose_hosts(ids, 0.05, seed=3)
    assert abs(chosen.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / ids.size)
    # the same objects whatever the sharding or order
    assert (choose_hosts(ids[::7], 0.05, 3) == chosen[::7]).all()
    assert (choose_hosts(ids[::-1], 0.05, 3) == chosen[::-1]).all()
    assert (choose_hosts(ids, 0.05, 4) != chosen).any()
    assert not choose_hosts(ids, 0.0, 3).any() and choose_hosts(ids, 1.0, 3).all()


def test_sources_are_the_lensed_light_alone_on_a_small_stamp():
    n = 12
    src = simulate_sources(SPEC, n, seed=5, seeing_factor=1.0)
    assert src.sources.shape == (n, 4, 100, 100)
    # the same draws rendered on the full cutout with the deflector made invisible
    full = simulate(SPEC, n, 5, config=INJECTED, kinds=np.full(n, "lens"),
                    seeing_factor=np.full(n, 1.0), noise=False,
                    source_only=True).images  # fmt: skip
    rel = np.abs(src.sources - full).sum(axis=(1, 2, 3)) / full.sum(axis=(1, 2, 3))
    assert rel.max() < 3e-3
    assert set(src.truth) >= {"theta_e_arcsec", "mag_g_source", "mag_g_source_intrinsic",
                              "psf_fwhm_arcsec"}  # fmt: skip
    assert (src.truth["source_snr"] >= 20.0 - 1e-6).all()  # the training S/N floor
    lo, hi = INJECTED.theta_e_range_arcsec
    assert ((src.truth["theta_e_arcsec"] >= lo) & (src.truth["theta_e_arcsec"] <= hi)).all()
    assert_allclose(src.truth["psf_fwhm_arcsec"], SPEC.bands[1].psf_fwhm_arcsec)


def test_inject_adds_the_source_and_its_photon_noise_only():
    rng = np.random.default_rng(0)
    cut = rng.normal(0, 3, (3, 4, 100, 100)).astype(np.float32)
    cut.flags.writeable = False
    src = np.zeros_like(cut)
    src[:, :, 40:60, 40:60] = 500.0
    out = inject(cut, src, SPEC, seed=1)
    assert out.dtype == np.float32 and not np.shares_memory(out, cut)
    assert_allclose(out[:, :, :40], cut[:, :, :40])  # no light, no noise
    resid = (out - cut - src)[:, :, 40:60, 40:60]
    gain = np.array([b.gain_e_per_count for b in SPEC.bands])
    assert_allclose(resid.std(axis=(0, 2, 3)), np.sqrt(500.0 / gain), rtol=0.1)
    with pytest.raises(ValueError, match="differ"):
        inject(cut, src[:2], SPEC, seed=1)


def test_inject_lenses_reports_the_host_magnitude():
    cut = np.zeros((2, 4, 100, 100), np.float32)
    batch = inject_lenses(SPEC, cut, seed=2, psf_fwhm_arcsec=1.5, host_mag_r=np.array([19, 20]))
    assert batch.images.shape == cut.shape and batch.images.sum() > 0
    assert batch.truth["mag_r_lens"].tolist() == [19.0, 20.0]
    assert_allclose(batch.truth["psf_fwhm_arcsec"], 1.5)  # the tile's measured PSF


def test_selection_table_completeness_per_bin(tmp_path):
    theta = np.array([0.6, 0.7, 1.2, 1.3, 1.4, 2.9, np.nan])
    score = np.array([0.1, 0.9, 0.6, 0.4, 0.8, 0.99, 0.7], dtype=np.float32)
    inj = pa.table({"theta_e_arcsec": theta, "score": score,
                    "mag_g_source": np.full(7, 22.0)})  # fmt: skip
    t = selection_table(inj, 0.5, {"theta_e_arcsec": 0.5}).to_pydict()
    assert t["lo"][:2] == [0.5, 1.0] and t["n"][:2] == [2, 3]
    assert t["completeness"][:2] == [0.5, pytest.approx(2 / 3)]
    assert t["n_recovered"][:2] == [1, 2]
    assert all(lo <= c <= hi for lo, c, hi in
               zip(t["ci_lo"], t["completeness"], t["ci_hi"], strict=True) if c == c)  # fmt: skip
    summary = write_selection(tmp_path, inj, 0.5, host_positive_rate=0.5)
    assert summary["n_injected"] == 7 and summary["completeness"] == pytest.approx(5 / 7)
    assert summary["host_positive_rate"] == 0.5
    assert (tmp_path / "selection_function.parquet").is_file()
    assert (tmp_path / "selection_function.png").read_bytes()[:4] == b"\x89PNG"


def test_the_injected_mass_follows_the_host_shape():
    """With host shapes given, the lensed images follow the mass: the same draws with the
    host turned by 90 degrees give different images, and q = 1 hosts give rounder ones."""
    n = 6
    a = simulate_sources(SPEC, n, 3, 1.0, deflector_shape=(np.full(n, 0.5), np.zeros(n)))
    b = simulate_sources(SPEC, n, 3, 1.0, deflector_shape=(np.full(n, 0.5), np.full(n, np.pi / 2)))
    assert not np.allclose(a.sources, b.sources)
    assert_allclose(a.truth["theta_e_arcsec"], b.truth["theta_e_arcsec"])  # other draws unchanged


def test_candidate_hosts_are_left_out_and_bins_flagged(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    inj = pa.table({"theta_e_arcsec": rng.uniform(0.8, 3.0, n),
                    "mag_g_source": rng.uniform(20, 24, n),
                    "psf_fwhm_arcsec": rng.uniform(0.8, 1.2, n),
                    "score": rng.random(n).astype(np.float32),
                    "host_score": np.where(np.arange(n) < 50, 0.9, 0.1),
                    "host_class": np.full(n, "red_isolated")})  # fmt: skip
    summary = write_selection(tmp_path, inj, 0.5, context={"population": {}})
    assert summary["n_excluded_host_candidates"] == 50 and summary["n_used"] == 350
    joint = joint_table(inj, 0.5)
    assert joint["n"].to_numpy().sum() == 350
    assert set(joint["host_class"].to_pylist()) == {"red_isolated"}
    assert summary["sparse_bins"] == sparse_bins(selection_table(inj, 0.5))
    assert all(b["n"] < 30 for b in summary["sparse_bins"])
    for name in ("selection_function_joint.parquet", "selection_function_map.png"):
        assert (tmp_path / name).is_file()
