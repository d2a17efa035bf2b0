"""``engine scan --inject-rate``: injected copies scored beside the survey, never candidates."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.engine.scan import run_scan
from lensfind.simulation.hosts import HostSelection, classify_hosts
from lensfind.simulation.inject import MAX_COPIES, choose_hosts, effective_rate


@pytest.fixture(scope="module")
def runs(region, model_dir, tmp_path_factory):
    from lensfind.engine.config import ScanConfig

    out = tmp_path_factory.mktemp("inject")
    results = {}
    for rate in (0.0, 0.5):
        cfg = ScanConfig(data_dir=region, model=str(model_dir), out=out / f"r{rate}",
                         quiet=True, workers=0, shard_size=8, inject_rate=rate,
                         inject_min=0)  # fmt: skip
        results[rate] = run_scan(cfg)
    return results


def _eligible_scored(run_dir, region, selection):
    """Scored objects of a run that the host selection lets host, by id."""
    catalog = pq.read_table(region / "catalog.parquet")
    cols = {c: catalog[c].to_numpy(zero_copy_only=False) for c in catalog.column_names
            if c.startswith("mag_") or c in ("extended_class", "flags")}  # fmt: skip
    classes = classify_hosts(cols, selection, catalog.num_rows)
    ok = dict(zip(catalog["object_id"].to_pylist(), classes.eligible.tolist(), strict=True))
    scored = []
    for f in sorted((run_dir / "scores").glob("*.parquet")):
        t = pq.read_table(f).to_pydict()
        scored += [i for i, s in zip(t["object_id"], t["status"], strict=True) if s == "scored"]
    return np.array([i for i in scored if ok[i]])


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


def test_injected_copies_are_the_chosen_eligible_hosts(runs, region):
    run = runs[0.5]
    rows = pq.read_table(run.run_dir / "injections.parquet").to_pydict()
    sel = run.summary["selection_function"]
    selection = HostSelection(**{k: tuple(map(tuple, v)) if k == "colour_cuts" else
                                 tuple(v) if isinstance(v, list) else v
                                 for k, v in sel["host_selection"].items()})  # fmt: skip
    eligible = _eligible_scored(run.run_dir, region, selection)
    expected = eligible[choose_hosts(eligible, 0.5, 0)]
    assert sorted(rows["object_id"]) == sorted(expected.tolist())
    assert set(rows["status"]) == {"scored"}
    assert all(0 <= s <= 1 for s in rows["score"])
    assert len(set(rows["object_id"])) == len(rows["object_id"])  # one copy per host
    assert sel["n_injected"] == len(rows["object_id"]) > 0
    assert sel["inject_copies"] == 1 and sel["inject_rate_effective"] == 0.5
    used = np.array(rows["in_selection"])
    assert used.tolist() == (~(np.array(rows["host_score"]) >= 0.5)).tolist()
    assert sel["n_excluded_host_candidates"] == int((~used).sum())
    assert sel["completeness"] == pytest.approx(np.mean(np.array(rows["score"])[used] >= 0.5))
    # never a star, and every host of the class the selection allows
    truth = pq.read_table(region / "truth.parquet").to_pydict()
    kind = dict(zip(truth["object_id"], truth["kind"], strict=True))
    assert "star" not in {kind[i] for i in rows["object_id"]}
    assert set(rows["host_class"]) <= set(selection.classes)
    assert sum(sel["host_classes"].values()) == run.summary["n_objects"]
    table = pq.read_table(run.run_dir / "selection_function.parquet").to_pydict()
    assert set(table["parameter"]) >= {"theta_e_arcsec", "mag_g_source", "mag_r_lens",
                                       "psf_fwhm_arcsec"}  # fmt: skip
    theta = [n for p, n in zip(table["parameter"], table["n"], strict=True)
             if p == "theta_e_arcsec"]  # fmt: skip
    assert sum(theta) == sel["n_used"]
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
    # the region is small: every eligible host gets several lenses to reach --inject-min
    k = summary["inject_copies"]
    assert k == min(MAX_COPIES, -(-1000 // summary["n_hosts_eligible"])) > 1
    rows = pq.read_table(out / "injections.parquet").to_pydict()
    assert summary["n_injected"] == len(rows["object_id"]) == k * len(set(rows["object_id"]))
    assert sorted(set(rows["copy"])) == list(range(k))
    assert summary["population"]["min_source_snr"] == 20.0  # the test model's default population


def test_bad_inject_rate_is_a_config_error(region, model_dir, tmp_path, capsys):
    code = main(["scan", "--data", str(region), "--model", str(model_dir), "--out",
                 str(tmp_path / "x"), "--inject-rate", "1.5", "--quiet"])  # fmt: skip
    assert code == 2 and "inject_rate must be in [0, 1]" in capsys.readouterr().err


def test_effective_rate_reaches_the_minimum():
    assert effective_rate(0.0, 1000, 500) == (0.0, 1)  # off stays off
    assert effective_rate(0.05, 1000, 100_000) == (0.05, 1)
    assert effective_rate(0.05, 1000, 4000) == (0.25, 1)
    assert effective_rate(0.05, 1000, 300) == (1.0, 4)
    assert effective_rate(0.5, 1000, 10) == (1.0, MAX_COPIES)
    assert effective_rate(0.5, 1000, 0) == (0.0, 1)


def test_population_and_host_files_through_the_cli(region, model_dir, tmp_path, capsys):
    """--inject-population and --inject-hosts change what is injected where, and say so."""
    pop, hosts = tmp_path / "pop.yaml", tmp_path / "hosts.yaml"
    pop.write_text("theta_e_range_arcsec: [1.5, 2.0]\nsource_mag_g_range: [22.0, 23.0]\n")
    hosts.write_text("classes: [red_isolated, red_blended, blue, out_of_range]\n")
    out = tmp_path / "run"
    code = main(["scan", "--data", str(region), "--model", str(model_dir), "--out", str(out),
                 "--workers", "0", "--inject-rate", "1", "--inject-min", "0", "--quiet",
                 "--inject-population", str(pop), "--inject-hosts", str(hosts)])  # fmt: skip
    assert code == 0
    sel = json.loads((out / "summary.json").read_text())["selection_function"]
    assert sel["population"]["theta_e_range_arcsec"] == [1.5, 2.0]
    assert sel["population"]["min_source_snr"] == 20.0  # the rest stays the model's
    assert sel["host_selection"]["classes"] == ["red_isolated", "red_blended", "blue",
                                                "out_of_range"]  # fmt: skip
    rows = pq.read_table(out / "injections.parquet").to_pydict()
    assert all(1.5 <= t <= 2.0 for t in rows["theta_e_arcsec"])
    assert "star" not in rows["host_class"] and len(set(rows["host_class"])) > 1
    meta = json.loads(pq.read_table(out / "injections.parquet").schema.metadata[b"lensfind"])
    assert meta["population"] == sel["population"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("theta_e: [1, 2]\n")
    args = ["scan", "--data", str(region), "--model", str(model_dir), "--out",
            str(tmp_path / "bad"), "--inject-population", str(bad), "--quiet"]  # fmt: skip
    assert main(args) == 2
    assert "unknown keys ['theta_e']" in capsys.readouterr().err
