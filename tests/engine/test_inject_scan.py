"""``engine scan --inject-rate``: injected copies scored beside the survey, never candidates."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.engine.scan import run_scan
from lensfind.simulation.inject import choose_hosts


@pytest.fixture(scope="module")
def runs(region, model_dir, tmp_path_factory):
    from lensfind.engine.config import ScanConfig

    out = tmp_path_factory.mktemp("inject")
    results = {}
    for rate in (0.0, 0.5):
        cfg = ScanConfig(data_dir=region, model=str(model_dir), out=out / f"r{rate}",
                         quiet=True, workers=0, shard_size=8, inject_rate=rate)  # fmt: skip
        results[rate] = run_scan(cfg)
    return results


def test_injections_never_change_the_survey_results(runs):
    plain, injected = runs[0.0].run_dir, runs[0.5].run_dir
    assert pq.read_table(plain / "candidates.parquet").equals(
        pq.read_table(injected / "candidates.parquet")
    )
    for f in sorted((plain / "scores").glob("*.parquet")):
        a, b = pq.read_table(f), pq.read_table(injected / "scores" / f.name)
        assert a.schema == b.schema
        for name in a.column_names:  # NaN scores of skipped objects compare equal here
            np.testing.assert_array_equal(a[name].to_numpy(zero_copy_only=False),
                                          b[name].to_numpy(zero_copy_only=False))  # fmt: skip
    assert not (plain / "injections.parquet").exists()
    assert runs[0.0].summary["selection_function"]["n_injected"] == 0


def test_injected_copies_are_the_chosen_scored_hosts(runs):
    run = runs[0.5]
    rows = pq.read_table(run.run_dir / "injections.parquet").to_pydict()
    scored = []
    for f in sorted((run.run_dir / "scores").glob("*.parquet")):
        t = pq.read_table(f).to_pydict()
        scored += [i for i, s in zip(t["object_id"], t["status"], strict=True) if s == "scored"]
    expected = np.array(scored)[choose_hosts(np.array(scored), 0.5, 0)]
    assert sorted(rows["object_id"]) == sorted(expected.tolist())
    assert set(rows["status"]) == {"scored"}
    assert all(0 <= s <= 1 for s in rows["score"])
    assert len(set(rows["object_id"])) == len(rows["object_id"])  # one copy per host
    sel = run.summary["selection_function"]
    assert sel["n_injected"] == len(rows["object_id"]) > 0
    assert sel["completeness"] == pytest.approx(np.mean(np.array(rows["score"]) >= 0.5))
    table = pq.read_table(run.run_dir / "selection_function.parquet").to_pydict()
    assert set(table["parameter"]) >= {"theta_e_arcsec", "mag_g_source", "mag_r_lens",
                                       "psf_fwhm_arcsec"}  # fmt: skip
    theta = [n for p, n in zip(table["parameter"], table["n"], strict=True)
             if p == "theta_e_arcsec"]  # fmt: skip
    assert sum(theta) == sel["n_injected_scored"]
    assert (run.run_dir / "selection_function.png").is_file()
    # the host magnitude comes from the catalogue, the PSF from the tile header
    assert np.isfinite(rows["mag_r_lens"]).all() and np.isfinite(rows["psf_fwhm_tile_arcsec"]).all()


def test_cli_flag_and_summary_line(region, model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["scan", "--data", str(region), "--model", str(model_dir), "--out", str(out),
                 "--workers", "0", "--inject-rate", "1", "--inject-seed", "7",
                 "--quiet"])  # fmt: skip
    assert code == 0
    assert "selection function:" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())["selection_function"]
    assert summary["inject_rate"] == 1.0 and summary["inject_seed"] == 7
    assert summary["n_injected"] == json.loads((out / "summary.json").read_text())["n_scored"]


def test_bad_inject_rate_is_a_config_error(region, model_dir, tmp_path, capsys):
    code = main(["scan", "--data", str(region), "--model", str(model_dir), "--out",
                 str(tmp_path / "x"), "--inject-rate", "1.5", "--quiet"])  # fmt: skip
    assert code == 2 and "inject_rate must be in [0, 1]" in capsys.readouterr().err
