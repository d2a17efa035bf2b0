"""lensfind.probes.report and the suite's bookkeeping: findings, sparse bins, progress totals."""

import numpy as np
import pyarrow as pa

from lensfind.probes.report import largest_change, write_report
from lensfind.probes.sensitivity import ProbeResult
from lensfind.probes.suite import ProbeOptions, probe_steps, sparse_bins


def _parameter(n: list[int], mean: list[float], min_count: int = 10) -> ProbeResult:
    k = len(n)
    table = pa.table({
        "model": ["m"] * k, "test_set": ["lenses"] * k, "centre": np.arange(k) + 0.5,
        "n": n, "mean": mean, "std": [0.1] * k, "sem": [0.01] * k,
        "ok": [c >= min_count for c in n],
    })  # fmt: skip
    return ProbeResult("theta_e", "parameter", "Einstein radius (arcsec)", table,
                       [{"model": "m", "test_set": "lenses", "slope": -0.1,
                         "slope_ci": [-0.2, -0.01], "zero_consistent": False}],
                       {"min_count": min_count})  # fmt: skip


def test_sparse_bins_name_the_n_that_fills_them():
    result = _parameter([0, 4, 20, 30, 2], [np.nan, 0.7, 0.9, 0.8, 0.5])
    sparse = sparse_bins(result, n=100)
    assert sparse["n_bins"] == 5 and sparse["n_sparse"] == 3 and sparse["n_empty"] == 1
    assert sparse["centres"] == [0.5, 1.5, 4.5]
    # the sparsest non-empty bin (2 of 100) reaches 10 at n = 500 (the empty one never does)
    assert sparse["suggested_n"] == 500
    assert sparse_bins(_parameter([10, 20], [0.9, 0.8]), n=100) is None
    assert sparse_bins(_parameter([0, 20], [np.nan, 0.8]), n=100)["suggested_n"] is None


def test_largest_change_of_parameters_and_perturbations():
    text = largest_change(_parameter([12, 20, 30, 2], [0.95, 0.9, 0.6, 0.1]), "m", "lenses")
    # the sparse last bin is left out: lowest 0.6 at 2.5, highest 0.95 at 0.5
    assert text == "-0.350: lowest 0.600 at 2.5, highest 0.950 at 0.5"
    table = pa.table({"model": ["m"] * 3, "test_set": ["mix"] * 3, "p": [0.0, 2.0, 1.0],
                      "mean": [0.9, 0.4, 0.8]})  # fmt: skip
    blur = ProbeResult("blur", "perturbation", "sigma (px)", table)
    assert largest_change(blur, "m", "mix") == "-0.500 at 2 (from 0.900 at 0)"


def test_report_findings_first_and_provenance_collapsed(tmp_path):
    result = _parameter([0, 4, 20, 30], [np.nan, 0.7, 0.9, 0.8])
    result.meta["sparse_bins"] = sparse_bins(result, n=100)
    png = tmp_path / "theta_e.png"
    png.write_bytes(b"")
    path = write_report(tmp_path, [(result, {"png": png})], "probes",
                        {"survey": "des_y3", "n": 100, "models": {"m": "f" * 64}})  # fmt: skip
    page = path.read_text()
    assert page.index("<table class='findings'>") < page.index("<h2") < page.index("<details>")
    assert "-0.1 [-0.2, -0.01]" in page and "<b>yes</b>" in page
    assert "2 of 4 bins hold fewer than 10 objects" in page and "--n 300" in page
    assert "f" * 64 not in page.replace("title='" + "f" * 64 + "'", "")


def test_progress_steps_follow_the_strengths():
    assert probe_steps("blur", ProbeOptions(strengths=[0, 1, 2])) == 3
    assert probe_steps("psf", ProbeOptions()) == 8
    assert probe_steps("theta_e", ProbeOptions()) == 1
    assert probe_steps("colour", ProbeOptions()) > 1


def test_every_bar_has_a_total_that_its_updates_reach(tmp_path):
    from lensfind.probes.suite import run_probes
    from lensfind.runtime.card import load_card
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.surveys import get_survey
    from lensfind.testing import make_test_model

    card = load_card(make_test_model(tmp_path / "m", name="m"))
    bars: dict[str, list[int]] = {}

    def progress(name: str, total: int):
        bars[name] = [total, 0]

        def update(k: int) -> None:
            bars[name][1] += k

        return update

    opts = ProbeOptions(strengths=[0.0, 1.0, 2.0], min_count=1)
    spec = get_survey("des_y3")
    path, _ = run_probes(["blur", "theta_e"], {"m": OnnxScorer(card)}, {"m": card.sha256},
                         spec, 12, 0, tmp_path / "out", opts, progress)  # fmt: skip
    assert path.is_file()
    assert bars == {"simulate": [12, 12], "blur": [3, 3], "theta_e": [1, 1]}
