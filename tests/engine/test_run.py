"""What every run writes at the end: known-lens cross-match, expected purity, model identity."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.catalogue.known_lenses import KNOWN_LENS_COLUMNS
from lensfind.engine.run import MODEL_NAME
from lensfind.engine.scan import run_scan
from lensfind.errors import ResumeError


def _known_csv(path, ra, dec, names):
    lines = ["name,RA [deg],DEC [deg],grading,type"]
    lines += [
        f"{n},{r:.10f},{d:.10f},confident,galaxy" for n, r, d in zip(names, ra, dec, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_candidates_cross_matched_with_planted_known_lenses(region, scan_config, tmp_path):
    first = run_scan(scan_config(region, tmp_path / "a"))
    cand = pq.read_table(tmp_path / "a" / "candidates.parquet")
    assert cand.num_rows >= 3
    assert cand.column_names[-3:] == list(KNOWN_LENS_COLUMNS)
    assert first.summary["known_lens_radius_arcsec"] == 3.0
    ra, dec = cand["ra"].to_numpy()[:3], cand["dec"].to_numpy()[:3]
    offsets = np.array([0.5, 1.5, 6.0])  # arcsec in declination; the last is outside 2"
    csv = _known_csv(tmp_path / "known.csv", ra, dec + offsets / 3600, ["L1", "L2", "L3"])
    run = run_scan(scan_config(region, tmp_path / "b", known_lenses=csv,
                               known_lens_radius_arcsec=2.0))  # fmt: skip
    got = pq.read_table(tmp_path / "b" / "candidates.parquet")
    names = got["known_lens_name"].to_pylist()
    sep = got["known_lens_sep_arcsec"].to_numpy()
    assert names[:3] == ["L1", "L2", ""]
    np.testing.assert_allclose(sep[:2], offsets[:2], atol=1e-3)
    assert np.isnan(sep[2]) and got["known_lens_grade"].to_pylist()[:2] == ["confident"] * 2
    assert run.summary["n_known_lenses_matched"] == 2
    # the FITS catalogue carries the same columns
    from astropy.table import Table

    fits = Table.read(tmp_path / "b" / "candidates.fits")
    assert list(np.ma.filled(fits["known_lens_name"][:3], "")) == ["L1", "L2", ""]


def test_summary_reports_expected_purity(full_run):
    p = full_run.summary["expected_purity"]
    s = full_run.summary
    # a synthetic region: its planted-lens fraction is the prior (--prior-lens-rate unset)
    truth = pq.read_table(Path(s["data_dir"]) / "truth.parquet")["is_lens"].to_numpy()
    assert p["prior_lens_rate"] == pytest.approx(truth.mean()) and p["calibrated_scores"] is False
    rate = p["prior_lens_rate"]
    assert p["expected_lenses_scanned"] == pytest.approx(rate * s["n_scored"], abs=1e-3)
    first = p["thresholds"][0]
    assert first["threshold"] == s["threshold"]
    assert first["n_candidates"] == s["n_candidates"]
    assert 0 <= first["expected_true_lenses"] <= first["n_candidates"]
    assert set(p["inspect_to_find"]) == {"1", "10", "100"}
    assert (full_run.run_dir / p["file"]).stat().st_size > 0
    # the test region has injections: the selection-function estimate is there too
    inj = pq.read_table(full_run.run_dir / "injections.parquet").to_pydict()
    used = np.array(inj["score"])[np.array(inj["in_selection"])]
    assert first["completeness"] == pytest.approx(np.mean(used >= s["threshold"]), abs=1e-6)


def test_resume_refuses_a_changed_calibration(region, model_dir, tmp_path):
    import shutil

    from lensfind.engine.config import ScanConfig

    def scan_config(data_dir, out, **kw):
        return ScanConfig(data_dir=data_dir, out=out, quiet=True, workers=0, shard_size=8, **kw)

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    out = tmp_path / "run"
    run_scan(scan_config(region, out, model=str(model)))
    ident = json.loads((out / MODEL_NAME).read_text())
    assert ident["calibration"] is None
    card = json.loads((model / "model_card.json").read_text())
    card["calibration"] = {"method": "temperature", "temperature": 2.0, "lens_fraction": 0.5}
    (model / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ResumeError, match="calibration changed"):
        run_scan(scan_config(region, out, model=str(model), resume=True))


def test_cli_flags_reach_the_summary(region, model_dir, tmp_path, capsys):
    """``engine scan --known-lenses --known-lens-radius --prior-lens-rate`` end to end."""
    from lensfind.cli.main import main

    first = tmp_path / "a"
    assert main(["scan", "--data", str(region), "--model", str(model_dir), "--out", str(first),
                 "--workers", "0", "--quiet"]) == 0  # fmt: skip
    cand = pq.read_table(first / "candidates.parquet")
    csv = _known_csv(tmp_path / "k.csv", cand["ra"].to_numpy()[:1],
                     cand["dec"].to_numpy()[:1] + 1.0 / 3600, ["K1"])  # fmt: skip
    out = tmp_path / "b"
    code = main(["scan", "--data", str(region), "--model", str(model_dir), "--out", str(out),
                 "--workers", "0", "--quiet", "--known-lenses", str(csv),
                 "--known-lens-radius", "1.5", "--prior-lens-rate", "0.02"])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_known_lenses_matched"] == 1 and summary["known_lens_radius_arcsec"] == 1.5
    assert summary["expected_purity"]["prior_lens_rate"] == 0.02
    text = capsys.readouterr().out
    assert 'known lenses within 1.5": 1 of the candidates' in text
    assert "expected true lenses at prior rate 0.02" in text
