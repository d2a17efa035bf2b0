"""Compound (double-source-plane) and red-source lenses: physics and populations."""

import numpy as np
import pytest
from astropy import units as u
from astropy.constants import c
from astropy.cosmology import FlatLambdaCDM
from lenstronomy.LensModel.lens_model import LensModel
from numpy.testing import assert_allclose

from lensfind.simulation.cosmology import beta_factor, sis_einstein_radius_arcsec
from lensfind.simulation.lensing import ray_trace
from lensfind.simulation.multiplane import double_source_plane_trace
from lensfind.simulation.population import KINDS, PopulationConfig
from lensfind.simulation.simulate import simulate
from lensfind.surveys import get_survey

COSMO = FlatLambdaCDM(H0=70, Om0=0.3)
RNG = np.random.default_rng(7)
X, Y = RNG.uniform(-4, 4, 300), RNG.uniform(-4, 4, 300)


def test_einstein_radius_against_a_hand_calculation():
    # 4 pi (sigma/c)^2 D_ls / D_s for sigma = 250 km/s, z_l = 0.5, z_s = 2
    d_ls = COSMO.angular_diameter_distance(0.5, 2.0)
    d_s = COSMO.angular_diameter_distance(2.0)
    hand = (4 * np.pi * (250 * u.km / u.s / c).decompose() ** 2 * d_ls / d_s).value
    hand_arcsec = np.degrees(hand) * 3600
    assert_allclose(sis_einstein_radius_arcsec(250.0, 0.5, 2.0), hand_arcsec, rtol=1e-10)
    assert 1.0 < hand_arcsec < 1.2  # ~1.08 arcsec
    assert sis_einstein_radius_arcsec(250.0, 2.0, 1.0) == 0.0  # source in front


def test_beta_is_the_ratio_of_einstein_radii():
    # theta_E(z_s1) / theta_E(z_s2) of one SIS = beta_12
    b = beta_factor(0.4, 1.0, 2.5)
    ratio = sis_einstein_radius_arcsec(300.0, 0.4, 1.0) / sis_einstein_radius_arcsec(
        300.0, 0.4, 2.5
    )
    assert_allclose(b, ratio, rtol=1e-10)
    assert 0 < b < 1
    assert_allclose(beta_factor(0.4, 2.5, 2.5), 1.0, rtol=1e-12)


def test_single_plane_limit_is_the_sie():
    te, q, phi, g1, g2, beta = 1.4, 0.7, 0.3, 0.04, -0.02, 0.6
    zero = np.zeros_like(X)
    x1, y1, x2, y2 = double_source_plane_trace(
        X, Y, te, q, phi, g1, g2, zero, 1.0, 0.0, 0.2, -0.1, beta
    )
    bx, by = ray_trace(X, Y, te, q, phi, g1, g2)
    assert_allclose(x1, bx, atol=1e-12)
    assert_allclose(y1, by, atol=1e-12)
    # a massless first source: the second plane sees the SIE scaled by 1 / beta
    bx2, by2 = ray_trace(X, Y, te / beta, q, phi, g1 / beta, g2 / beta)
    assert_allclose(x2, bx2, atol=1e-12)
    assert_allclose(y2, by2, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Cosmology is provided:UserWarning")
@pytest.mark.parametrize("q2", [1.0, 0.6])
def test_double_source_plane_matches_lenstronomy_multi_plane(q2):
    z_l, z_s1, z_s2 = 0.35, 0.9, 2.2
    te1_s2, te2_s2 = 1.6, 0.7  # Einstein radii for a source at z_s2
    q1, phi1, phi2, cx2, cy2 = 0.75, 0.4, 1.1, 0.5, -0.3
    beta = float(beta_factor(z_l, z_s1, z_s2, COSMO))
    ref = LensModel(["SIE", "SIE"], lens_redshift_list=[z_l, z_s1], z_source=z_s2,
                    multi_plane=True, cosmo=COSMO, z_source_convention=z_s2)  # fmt: skip

    def kw(te, q, phi, cx, cy):
        e = (1 - q) / (1 + q)
        return {"theta_E": te, "e1": e * np.cos(2 * phi), "e2": e * np.sin(2 * phi),
                "center_x": cx, "center_y": cy}  # fmt: skip

    kwargs = [kw(te1_s2, q1, phi1, 0.0, 0.0), kw(te2_s2, q2, phi2, cx2, cy2)]
    bx_ref, by_ref = ref.ray_shooting(X, Y, kwargs)
    _, _, x2, y2 = double_source_plane_trace(
        X, Y, te1_s2 * beta, q1, phi1, 0.0, 0.0, te2_s2, q2, phi2, cx2, cy2, beta
    )
    assert_allclose(x2, bx_ref, atol=1e-6)
    assert_allclose(y2, by_ref, atol=1e-6)


def test_rare_kinds_are_lenses_with_compound_truth():
    spec = get_survey("des_y3")
    kinds = np.array(["lens", "compound_arc", "double_ring", "red_source", "elliptical"] * 4)
    s = simulate(spec, kinds.size, seed=2, kinds=kinds, size_px=48)
    assert (s.truth["is_lens"] == (kinds != "elliptical")).all()
    comp = np.isin(kinds, ["compound_arc", "double_ring"])
    assert np.isfinite(s.truth["theta_e_source1_arcsec"][comp]).all()
    assert np.isnan(s.truth["z_lens"][~comp]).all()
    z1, z2 = s.truth["z_source1"][comp], s.truth["z_source2"][comp]
    assert (s.truth["z_lens"][comp] <= z1).all() and (z1 < z2).all()
    assert ((s.truth["beta12"][comp] > 0) & (s.truth["beta12"][comp] <= 1)).all()


def test_red_sources_are_the_single_lenses_in_other_colours():
    spec = get_survey("des_y3")
    n = 16
    blue = simulate(spec, n, seed=4, kinds=np.full(n, "lens"), noise=False, size_px=48)
    red = simulate(spec, n, seed=4, kinds=np.full(n, "red_source"), noise=False, size_px=48)
    assert_allclose(red.truth["theta_e_arcsec"], blue.truth["theta_e_arcsec"])
    assert_allclose(red.truth["magnification"], blue.truth["magnification"], rtol=1e-9)
    # the source is redder: (z - g) flux ratio of the image minus the deflector
    g, z = 0, 3
    ratio_blue = blue.images[:, z].sum() / blue.images[:, g].sum()
    ratio_red = red.images[:, z].sum() / red.images[:, g].sum()
    assert ratio_red > ratio_blue


def test_lens_mix_draws_rare_kinds_and_leaves_default_draws_alone():
    rng = np.random.default_rng
    default = PopulationConfig().draw_kinds(500, rng(1))
    assert set(default) <= set(KINDS)
    mixed = PopulationConfig(lens_mix={"lens": 1, "double_ring": 1}).draw_kinds(500, rng(1))
    lens_rows = default == "lens"
    assert (np.isin(mixed[lens_rows], ["lens", "double_ring"])).all()
    assert (mixed[~lens_rows] == default[~lens_rows]).all()
    assert 0.3 < (mixed[lens_rows] == "double_ring").mean() < 0.7
    with pytest.raises(ValueError, match="unknown lens kinds"):
        PopulationConfig(lens_mix={"spiral": 1.0}).draw_kinds(10, rng(0))


def test_engine_simulate_writes_rare_kinds(tmp_path, capsys):
    from lensfind.cli.main import main
    from lensfind.simulation.dataset import read_dataset

    out = tmp_path / "mix.zarr"
    args = ["simulate", "--n", "40", "--out", str(out), "--lens-fraction", "1", "--quiet",
            "--lens-kinds", "compound_arc=1,double_ring=1,red_source=1"]  # fmt: skip
    assert main(args) == 0
    sim, attrs = read_dataset(out)
    assert set(sim.truth["kind"]) == {"compound_arc", "double_ring", "red_source"}
    assert sim.truth["is_lens"].all() and "red_source" in attrs["kinds"]
    assert attrs["population"]["lens_mix"] == {"compound_arc": 1.0, "double_ring": 1.0,
                                               "red_source": 1.0}  # fmt: skip
    bad = ["simulate", "--n", "4", "--out", str(tmp_path / "b.zarr"), "--lens-kinds", "spiral"]
    assert main(bad) == 2
    assert "unknown lens kind 'spiral'" in capsys.readouterr().err
