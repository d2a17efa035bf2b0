"""lensfind.cli.main: commands, exit codes and error messages."""

import json
import os

import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.engine.plan import available_tiles
from lensfind.surveys import get_survey


def _scan_args(data, model_dir, out, *extra):
    return [
        "scan",
        "--data",
        str(data),
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--workers",
        "0",
        "--shard-size",
        "8",
        "--quiet",
        *extra,
    ]


def test_surveys(capsys):
    assert main(["surveys"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["des_y3", "euclid_wide", "kids_dr3"]
    assert "cutout 100 px" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("lensfind ")


def test_unknown_survey(capsys, tmp_path):
    assert main(["scan", "--survey", "nope", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(
        "error: unknown survey 'nope' (known: des_y3, euclid_wide, kids_dr3)"
    )
    assert "Traceback" not in captured.err
    assert not (tmp_path / "run").exists()


def test_debug_prints_a_traceback(capsys):
    assert main(["scan", "--debug", "--survey", "nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "UnknownSurveyError" in err
    assert err.splitlines()[-1].startswith("error: unknown survey 'nope'")


def test_debug_before_the_subcommand(capsys):
    assert main(["--debug", "scan", "--survey", "nope", "--quiet"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_catalogue_without_ra(capsys, copy_region, model_dir, tmp_path):
    data = copy_region()
    cat = pq.read_table(data / "catalog.parquet").drop_columns(["ra"])
    pq.write_table(cat, data / "catalog.parquet")
    assert main(_scan_args(data, model_dir, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {data / 'catalog.parquet'}: missing column(s) ra ")
    assert "Traceback" not in err


def test_bad_setting_from_the_environment(capsys, monkeypatch, region, model_dir, tmp_path):
    monkeypatch.setenv("LENSFIND_SCAN__BATCHSIZE", "8")
    assert main(_scan_args(region, model_dir, tmp_path / "run")) == 2
    assert "LENSFIND_SCAN__BATCHSIZE: unknown setting" in capsys.readouterr().err


def test_missing_model(capsys, region, tmp_path):
    assert main(_scan_args(region, tmp_path / "no-model", tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model ")
    assert str(tmp_path / "no-model") in err


def test_scan_prints_the_run_directory_and_counts(capsys, region, model_dir, tmp_path):
    out = tmp_path / "run"
    assert main(_scan_args(region, model_dir, out)) == 0
    captured = capsys.readouterr()
    s = json.loads((out / "summary.json").read_text())
    lines = captured.out.splitlines()
    assert lines[0] == f"run directory: {out}"
    skipped = ", ".join(f"{k} {v}" for k, v in s["skip_reasons"].items())
    assert lines[1] == (
        f"objects 32: scored {s['n_scored']}, skipped {s['n_skipped']} ({skipped}), failed 0"
    )
    assert lines[2].startswith(f"candidates (score >= 0.5): {s['n_candidates']} -> ")
    # a 32-object region cannot populate the selection function's bins: it says so, only that
    sparse = s["selection_function"]["sparse_bins"]
    assert captured.err == (
        f"warning: {len(sparse)} selection-function bin(s) hold fewer than 30 injections "
        "(see summary.json); raise --inject-min or --inject-rate\n"
    )

    # a second scan into the same directory needs --resume
    assert main(_scan_args(region, model_dir, out)) == 2
    assert "use --resume" in capsys.readouterr().err
    assert main(_scan_args(region, model_dir, out, "--resume")) == 0


def test_failed_objects_exit_3(capsys, copy_region, model_dir, tmp_path):
    data = copy_region()
    tile = available_tiles(data, get_survey("des_y3"))[1]
    path = data / f"{tile}_g.fits"
    os.truncate(path, path.stat().st_size // 2)
    assert main(_scan_args(data, model_dir, tmp_path / "run")) == 3
    captured = capsys.readouterr()
    assert "failed 16 (tile unreadable 16)" in captured.out
    assert "warning: 16 object(s) failed; reasons in the scores files" in captured.err


def test_missing_data_directory_is_named(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    assert main(["scan", "--data", str(missing), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {missing}: data directory not found\n"


def test_survey_without_a_shipped_model_fails_before_generating_data(capsys, tmp_path):
    assert main(["scan", "--survey", "kids_dr3", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no shipped default model for survey 'kids_dr3'")
    assert not (tmp_path / "run").exists()


def test_the_scan_says_what_it_does_before_its_first_object(capsys, region, model_dir, tmp_path):
    args = [a for a in _scan_args(region, model_dir, tmp_path / "run") if a != "--quiet"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"run directory: {tmp_path / 'run'}")
    bar = captured.err.replace("\r", "\n")
    loading = bar.index("loading the model on 1 worker(s)")
    first = bar.index("cutting and scoring the first shards")
    done = bar.index("32/32")
    assert loading < first < done
    assert "first shards" not in bar[done:], "the status goes once objects are committed"


def test_the_prior_says_where_it_came_from_and_what_to_pass(capsys, region, model_dir, tmp_path):
    assert main(_scan_args(region, model_dir, tmp_path / "a")) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("expected true"))
    planted = pq.read_table(region / "truth.parquet")["is_lens"].to_numpy()
    assert f"at prior rate {planted.mean():g} (from the region's planted lenses, " in line
    assert main(_scan_args(region, model_dir, tmp_path / "b", "--prior-lens-rate", "1e-4")) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("expected true"))
    assert "at prior rate 0.0001 (from --prior-lens-rate, " in line
    suggested = json.loads((tmp_path / "b" / "summary.json").read_text())["expected_purity"][
        "consistent_prior_lens_rate"
    ]
    assert line.endswith(f"pass --prior-lens-rate {suggested:g} or more")
    # the number it names is one the scores accept
    assert main(_scan_args(region, model_dir, tmp_path / "c", "--prior-lens-rate",
                           f"{suggested:g}")) == 0  # fmt: skip
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["expected_purity"]["prior_consistent"] is True
    assert "pass --prior-lens-rate" not in capsys.readouterr().out
