"""``engine probe`` and ``engine explain`` end to end from the command line."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.cli.main import main
from lensfind.runtime.shipped import resolve_model
from lensfind.testing import make_test_model, make_test_region


@pytest.fixture(scope="module")
def test_model(tmp_path_factory):
    return make_test_model(tmp_path_factory.mktemp("model") / "m", name="flux-model")


def test_perturbation_probe_writes_numbers_plot_report_and_provenance(tmp_path, test_model):
    out = tmp_path / "blur"
    args = ["probe", "blur", "--n", "12", "--strengths", "0,1,2", "--out", str(out),
            "--model", "des_y3", "--model", str(test_model), "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = pq.read_table(out / "blur.parquet").to_pydict()
    assert set(table["model"]) == {"des_y3", "flux-model"}  # side by side
    assert sorted(set(table["p"])) == [0.0, 1.0, 2.0]
    assert set(table["test_set"]) == {"lenses", "nonlenses", "mix"}
    meta = json.loads((out / "blur.json").read_text())
    assert meta["models"]["des_y3"] == resolve_model("des_y3", "des_y3").sha256
    assert meta["data"]["seed"] == 0 and meta["data"]["n"] == 12
    assert {"lensfind", "numpy", "onnxruntime"} <= set(meta["versions"])
    assert len(meta["trends"]) == 6 and all("slope_ci" in t for t in meta["trends"])
    assert (out / "blur.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert 'src="blur.png"' in html and 'href="blur.parquet"' in html
    # deterministic: the same command gives the same numbers
    again = tmp_path / "again"
    again_args = ["probe", "blur", "--n", "12", "--strengths", "0,1,2", "--model", "des_y3",
                  "--model", str(test_model), "--out", str(again), "--quiet"]  # fmt: skip
    assert main(again_args) == 0
    assert pq.read_table(again / "blur.parquet").to_pydict()["mean"] == table["mean"]


def test_parameter_probe_with_a_surface_and_torch_runtime(tmp_path):
    out = tmp_path / "theta"
    args = ["probe", "theta_e", "--n", "16", "--min-count", "1", "--width", "0.5", "--by",
            "mag_g_source", "--bins", "2", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    t = pq.read_table(out / "theta_e.parquet").to_pydict()
    assert sum(t["n"]) == 8 and set(t["parameter"]) == {"theta_e_arcsec"}
    assert np.allclose(np.diff(t["centre"]), 0.5)
    assert (out / "theta_e_arcsec__mag_g_source.png").is_file()
    pytest.importorskip("torch")
    args = ["probe", "theta_e", "--n", "16", "--min-count", "1", "--width", "0.5",
            "--runtime", "torch", "--out", str(tmp_path / "torch"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    torch_t = pq.read_table(tmp_path / "torch" / "theta_e.parquet").to_pydict()
    np.testing.assert_allclose(torch_t["mean"], t["mean"], atol=1e-5)


def test_a_perturbation_probe_by_object_kind(tmp_path, capsys):
    """``--by kind``: one column per kind, its correct fraction as the kind's own count says."""
    from lensfind.probes.sensitivity import make_probe_set, score_all
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.surveys import get_survey

    out = tmp_path / "annulus"
    args = ["probe", "annulus", "--n", "24", "--strengths", "0,20", "--min-count", "1",
            "--by", "kind", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    meta = json.loads((out / "kind__annulus.json").read_text())
    kinds = meta["x_categories"]
    assert "lens" in kinds and "elliptical" in kinds and meta["test_set"] == "mix"
    t = pq.read_table(out / "kind__annulus.parquet").to_pydict()
    assert sum(t["n"]) == 2 * 24  # every object once per strength
    assert (out / "kind__annulus.png").is_file()
    # independent: zero the central 5 px disk (strength 0) by hand, score, count per kind
    spec = get_survey("des_y3")
    ps = make_probe_set(spec, 24, 0)
    c = np.arange(ps.images.shape[-1]) - ps.images.shape[-1] // 2  # the cutout's object pixel
    x = ps.images * (np.hypot(c[:, None], c[None, :]) >= 5)
    p = score_all(OnnxScorer(resolve_model("des_y3", "des_y3"), input_bands=spec.band_names), x)
    kind = np.asarray(ps.truth["kind"]).astype(str)
    correct = (p >= 0.5) == (kind == "lens")
    for i, k in enumerate(kinds):
        row = [j for j in range(len(t["n"])) if t["y_lo"][j] == 0.0 and t["centre"][j] == i]
        assert len(row) == 1 and t["n"][row[0]] == (kind == k).sum()
        assert t["n_correct"][row[0]] == correct[kind == k].sum()
    # a categorical column cannot be a parameter probe's bins
    assert main(["probe", "parameter", "--column", "kind", "--n", "4", "--out",
                 str(tmp_path / "k")]) == 2  # fmt: skip
    assert "categorical" in capsys.readouterr().err


def test_probe_errors_are_one_line(tmp_path, capsys):
    assert main(["probe", "nonsense", "--n", "4", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown probe 'nonsense'" in err and "suite" in err and "blur" in err
    assert main(["probe", "parameter", "--n", "4", "--out", str(tmp_path / "y")]) == 2
    assert "needs --column" in capsys.readouterr().err
    assert main(["probe", "parameter", "--column", "nope", "--n", "4", "--out",
                 str(tmp_path / "z")]) == 2  # fmt: skip
    assert "unknown truth column 'nope'" in capsys.readouterr().err


def test_the_full_suite_from_the_cli(tmp_path):
    out = tmp_path / "suite"
    assert main(["probe", "suite", "--n", "16", "--min-count", "1", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    html = (out / "report.html").read_text()
    for name in ("colour", "psf", "blur", "noise", "annulus", "disk", "theta_e", "source_mag",
                 "lens_mag"):  # fmt: skip
        assert (out / f"{name}.parquet").is_file() and f'src="{name}.png"' in html
    psf = json.loads((out / "psf.json").read_text())
    assert psf["resimulated"] and psf["strengths"][0] == 0.6


def test_selection_probe_is_injection_recovery_over_a_data_directory(tmp_path, test_model):
    region = make_test_region(tmp_path / "region")
    out = tmp_path / "sel"
    assert main(["probe", "selection", "--data", str(region), "--model", str(test_model),
                 "--workers", "0", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    sel = summary["selection_function"]
    # every eligible host, as many lenses each as --inject-min asks (at most 8)
    assert sel["inject_rate"] == 1.0 and sel["inject_rate_effective"] == 1.0
    assert (
        sel["n_injected"]
        == sel["inject_copies"]
        * len(set(pq.read_table(out / "injections.parquet")["object_id"].to_pylist()))
        > 0
    )
    assert (out / "selection_function.parquet").is_file()
    assert (out / "selection_function.png").is_file()


@pytest.mark.parametrize("method", ["occlusion", "gradcam", "kernels"])
def test_explain_writes_maps_png_and_record(tmp_path, method):
    if method != "occlusion":
        pytest.importorskip("captum")
    out = tmp_path / method
    assert main(["explain", method, "--n", "2", "--out", str(out), "--quiet"]) == 0
    maps = np.load(out / f"{method}.npy")
    assert maps.shape[0] == 2 and np.isfinite(maps).all()
    record = json.loads((out / f"{method}.json").read_text())
    assert record["model_sha256"] == resolve_model("des_y3", "des_y3").sha256
    assert (out / f"{method}.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_rejects_unknown_methods_and_bad_indices(tmp_path, capsys):
    assert main(["explain", "magic", "--n", "2", "--out", str(tmp_path)]) == 2
    assert "unknown saliency method 'magic'" in capsys.readouterr().err
    assert main(["explain", "occlusion", "--n", "2", "--index", "5", "--out",
                 str(tmp_path)]) == 2  # fmt: skip
    assert "input has 2 objects" in capsys.readouterr().err


def test_report_opens_with_findings_and_names_sparse_bins(tmp_path, capsys):
    """A small --n leaves theta_E bins under --min-count: the page and a warning say so."""
    out = tmp_path / "two"
    args = ["probe", "suite", "--n", "40", "--out", str(out), "--quiet"]
    assert main(args) == 0
    captured = capsys.readouterr()
    page = (out / "report.html").read_text()
    head = page[:4000]
    assert "<table class='findings'>" in head and "trend slope [95% interval]" in head
    # one findings row per probe curve, each probe linked to its section
    for name in ("colour", "blur", "theta_e", "source_mag"):
        assert f'<a href="#{name}">{name}</a>' in page and f"<h2 id='{name}'>" in page
    assert '"survey":' not in page and "{\n" not in page, "no raw JSON dump"
    assert "<details><summary>provenance</summary>" in page
    sha = resolve_model("des_y3", "des_y3").sha256
    assert sha not in page.replace(f"title='{sha}'", ""), "the full sha256 only on hover"
    meta = json.loads((out / "theta_e.json").read_text())
    sparse = meta["sparse_bins"]
    assert sparse["min_count"] == 10 and sparse["n_sparse"] > 0
    table = pq.read_table(out / "theta_e.parquet").to_pydict()
    under = [n for n, ok in zip(table["n"], table["ok"], strict=True) if not ok]
    assert len(under) == sparse["n_sparse"] and max(under) < 10
    # the suggested --n scales the sparsest non-empty bin up to --min-count
    assert sparse["suggested_n"] >= 40 * 10 / min(c for c in under if c > 0)
    warning = [line for line in captured.err.splitlines() if line.startswith("warning: theta_e")]
    assert warning and f"--n {sparse['suggested_n']}" in warning[0]
    assert "--n" in page.split("<h2 id='theta_e'>")[1].split("<h2")[0]
