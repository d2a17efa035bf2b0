"""lensfind.probes.reweight against analytic completeness; ``engine selection reweight``."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import integrate

from lensfind.errors import ConfigError
from lensfind.probes.reweight import Target, reweight
from lensfind.probes.selection import write_selection
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.population_file import population_from_dict, population_to_dict
from lensfind.testing import run_cli

RUN = PopulationConfig(theta_e_range_arcsec=(0.5, 3.0), source_mag_g_range=(21.0, 26.0))


def _p_found(theta, mag):
    """A made-up detection probability: rises with theta_E, falls with source magnitude."""
    return np.clip(theta / 3.0, 0, 1) * np.clip((26.5 - mag) / 5.5, 0, 1)


def _injections(n=60_000, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(*RUN.theta_e_range_arcsec, n)
    mag = rng.uniform(*RUN.source_mag_g_range, n)
    score = (rng.random(n) < _p_found(theta, mag)).astype(float)
    return pa.table({"score": score, "theta_e_arcsec": theta, "mag_g_source_intrinsic": mag,
                     "mag_g_source": mag - 1.0, "host_score": np.zeros(n)})  # fmt: skip


def _expected(target: Target) -> float:
    (t0, t1), (m0, m1) = (
        target.population.theta_e_range_arcsec,
        target.population.source_mag_g_range,
    )

    def pdf(m, t):
        return t**target.theta_e_power * 10 ** (target.source_counts_slope * m)

    num = integrate.dblquad(lambda m, t: _p_found(t, m) * pdf(m, t), t0, t1, m0, m1)[0]
    return num / integrate.dblquad(pdf, t0, t1, m0, m1)[0]


@pytest.mark.parametrize(("theta", "mag", "k", "a"), [
    ((0.5, 3.0), (21.0, 26.0), 0.0, 0.0),   # the run itself
    ((1.0, 2.0), (22.0, 24.0), 0.0, 0.0),   # narrower ranges
    ((0.5, 3.0), (21.0, 26.0), -2.0, 0.0),  # more small Einstein radii
    ((0.8, 3.0), (21.5, 25.0), 1.0, 0.3),   # rising source counts
])  # fmt: skip
def test_reweighted_completeness_is_the_target_populations(theta, mag, k, a):
    target = Target(population_from_dict({"theta_e_range_arcsec": theta,
                                          "source_mag_g_range": mag}, RUN), k, a)  # fmt: skip
    out = reweight(_injections(), RUN, target, threshold=0.5)
    expected = _expected(target)
    assert out["ci_lo"] <= expected <= out["ci_hi"], (out["completeness"], expected)
    assert out["completeness"] == pytest.approx(expected, abs=0.01)
    assert out["coverage"] == {"theta_e_arcsec": 1.0, "mag_g_source_intrinsic": 1.0}
    if k or a:  # tilted weights: fewer effective injections than used ones
        assert out["n_eff"] < out["n_injections"]


def test_what_was_never_injected_is_reported_or_refused():
    wide = Target(population_from_dict({"theta_e_range_arcsec": [0.25, 3.0]}, RUN))
    out = reweight(_injections(2000), RUN, wide, 0.5)
    assert out["coverage"]["theta_e_arcsec"] == pytest.approx(2.5 / 2.75)
    floor = Target(population_from_dict({"min_source_snr": 10.0}, RUN))
    with pytest.raises(ConfigError, match="min_source_snr 10 differs"):
        reweight(_injections(2000), RUN, floor, 0.5)


def test_population_files_round_trip_and_name_bad_keys():
    assert population_from_dict(population_to_dict(RUN)) == RUN
    with pytest.raises(ConfigError, match="unknown keys \\['theta_e'\\]"):
        population_from_dict({"theta_e": [1, 2]})
    with pytest.raises(ConfigError, match="theta_e_range_arcsec must be \\[low, high\\]"):
        population_from_dict({"theta_e_range_arcsec": 1.0})


def test_engine_selection_reweight_on_a_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    write_selection(run, _injections(5000), 0.5, context={"population": population_to_dict(RUN)})
    pop = tmp_path / "narrow.yaml"
    pop.write_text("theta_e_range_arcsec: [1.0, 2.0]\ntheta_e_power: -1\n")
    code, out = run_cli("selection", "reweight", str(run), "--population", str(pop))
    assert code == 0, out
    result = json.loads((run / "selection_reweighted-narrow.json").read_text())
    assert result["target"]["theta_e_power"] == -1.0
    assert f"{result['completeness']:.3f}" in out
    assert all(1.0 <= b["lo"] < 2.0 for b in result["bins"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_source_snr: 5\n")
    assert run_cli("selection", "reweight", str(run), "--population", str(bad))[0] == 2
    assert "differs from the run's" in capsys.readouterr().err
    assert pq.read_table(run / "injections.parquet").num_rows == 5000
