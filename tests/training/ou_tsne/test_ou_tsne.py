"""OU-T-SNE (Wilde+22 sec. 3.3): the grid, the 8-neighbour fill, the out-of-sample
transform, same objects on two grids, and ``engine ensemble --method ou_tsne`` end to end."""

import json

import numpy as np
import pytest

from lensfind.simulation.dataset import on_common_grid, read_dataset, survey_of, write_dataset
from lensfind.simulation.population import PopulationConfig, sample_scene
from lensfind.surveys import get_survey
from lensfind.training.ou_tsne.grid import classify, fill_empty, fit_grid

NAN = np.nan


def test_fill_uses_the_mean_of_the_defined_eight_neighbours():
    g = np.full((3, 3), NAN)
    g[0, 0], g[0, 2], g[2, 1] = 1.0, 0.0, 0.5
    out = fill_empty(g)
    assert out[1, 1] == pytest.approx((1.0 + 0.0 + 0.5) / 3)  # all 8 around, 3 defined
    assert out[0, 1] == pytest.approx(0.5)  # (1 + 0) / 2: edge square, 5 neighbours
    assert out[1, 0] == pytest.approx((1.0 + 0.5) / 2)
    assert out[2, 2] == pytest.approx(0.5)  # only (2, 1) touches it
    np.testing.assert_array_equal(out[[0, 0, 2], [0, 2, 1]], [1.0, 0.0, 0.5])  # kept


def test_fill_is_one_pass_and_leaves_isolated_squares_undefined():
    g = np.full((5, 5), NAN)
    g[0, 0] = 1.0
    out = fill_empty(g)
    assert out[1, 1] == 1.0 and out[0, 1] == 1.0
    assert np.isnan(out[2, 2])  # its neighbours were empty before the fill: no propagation
    assert np.isfinite(out).sum() == 4


def test_fit_grid_fractions_counts_and_edges():
    emb = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.49, 0.0]])
    grid = fit_grid(emb, np.array([1, 0, 1, 1]), n=2)
    np.testing.assert_allclose(grid.x_edges, [0, 0.5, 1])
    np.testing.assert_array_equal(grid.counts, [[3, 0], [0, 1]])
    assert grid.fraction[0, 0] == pytest.approx(2 / 3) and grid.fraction[1, 1] == 1.0
    assert np.isnan(grid.fraction[0, 1])
    assert grid.filled[0, 1] == pytest.approx((2 / 3 + 1) / 2)


def test_classify_separates_a_toy_embedding_and_reports_rules():
    rng = np.random.default_rng(0)
    lens = rng.normal([5, 5], 1, (300, 2))
    other = rng.normal([-5, -5], 1, (300, 2))
    grid = fit_grid(np.r_[lens, other], np.r_[np.ones(300), np.zeros(300)], n=20)
    test = np.r_[rng.normal([5, 5], 1, (100, 2)), rng.normal([-5, -5], 1, (100, 2))]
    score, rule = classify(grid, test)
    assert ((score >= 0.5) == np.r_[np.ones(100), np.zeros(100)].astype(bool)).mean() > 0.97
    assert set(np.unique(rule)) <= {0, 1, 2}
    far, far_rule = classify(grid, np.array([[100.0, 100.0], [-100.0, -100.0], [5.0, -5.0]]))
    assert far[0] == 1.0 and far[1] == 0.0  # outside: nearest edge square
    assert 0.0 <= far[2] <= 1.0 and far_rule[2] in (1, 2)  # empty middle: fill or nearest


def test_transform_places_reference_points_at_their_own_position(tmp_path):
    pytest.importorskip("openTSNE")
    from lensfind.training.ou_tsne.model import OuTsneClassifier

    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.5
    x = np.clip(np.where(y[:, None], 0.8, 0.2) + 0.1 * rng.standard_normal((300, 7)), 0, 1)
    clf = OuTsneClassifier.fit(x, y, tuple("ABCDEFG"), grid_side=30, seed=0)
    pos = clf.embed(x[:40])
    d = np.linalg.norm(pos - clf.reference_embedding[:40], axis=1)
    span = np.ptp(clf.reference_embedding, axis=0).max()
    assert np.median(d) < 0.02 * span
    score, _, _ = clf.predict(x[:40])
    assert ((score >= 0.5) == y[:40]).mean() > 0.9
    clf.save(tmp_path, {"method": "ou_tsne"})
    again, card = OuTsneClassifier.load(tmp_path)
    np.testing.assert_array_equal(again.embed(x[:40]), pos)  # reloaded: the same placement
    assert card["grid"]["side"] == 30 and card["tsne"]["library"] == "openTSNE"


def test_same_objects_on_the_nisp_and_vis_grids():
    euclid = get_survey("euclid_wide")
    nisp, cfg66 = on_common_grid(euclid, 0.3, 66)
    vis, cfg200 = on_common_grid(euclid, 0.1, 200)
    assert {b.pixel_scale_arcsec for b in nisp.bands} == {0.3}
    kinds = np.array(["lens", "elliptical", "pair", "spiral", "star", "lens"] * 4)
    a, _ = sample_scene(nisp, kinds, np.random.default_rng(7), cfg66)
    b, _ = sample_scene(vis, kinds, np.random.default_rng(7), cfg200)
    for name in ("center_x_arcsec", "center_y_arcsec", "theta_e_arcsec", "psf_fwhm_arcsec",
                 "gamma1", "mass_q", "point_flux"):  # fmt: skip
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-15)
    for comp in ("main", "companion", "source"):
        for f in ("flux", "r_eff_arcsec", "dx_arcsec", "q", "phi"):
            np.testing.assert_allclose(getattr(getattr(a, comp), f),
                                       getattr(getattr(b, comp), f), rtol=1e-12)  # fmt: skip
    assert np.abs(a.center_x_arcsec).max() <= 0.1 + 1e-12  # one VIS pixel on both grids
    assert cfg66.center_jitter_px == pytest.approx(PopulationConfig().center_jitter_px / 3)


def _paired_sets(tmp_path, n, seed, name):
    euclid = get_survey("euclid_wide")
    out = []
    for scale, size in ((0.3, 16), (0.1, 48)):
        spec, cfg = on_common_grid(euclid, scale, size)
        out.append(write_dataset(tmp_path / f"{name}{size}.zarr", spec, n, seed, cfg))
    return out


def test_set_on_a_common_grid_reads_back_its_spec(tmp_path):
    coarse, fine = _paired_sets(tmp_path, 8, 3, "g")
    spec = survey_of(read_dataset(coarse)[1])
    assert spec.cutout_px == 16 and spec.band("VIS").pixel_scale_arcsec == 0.3
    a, b = read_dataset(coarse)[0], read_dataset(fine)[0]
    assert a.images.shape[2:] == (16, 16) and b.images.shape[2:] == (48, 48)
    np.testing.assert_array_equal(a.truth["theta_e_arcsec"], b.truth["theta_e_arcsec"])


def test_engine_ensemble_ou_tsne_end_to_end(tmp_path, capsys):
    """Three tiny members on two grids, the fit CLI, and the evaluate CLI."""
    pytest.importorskip("openTSNE")
    pytest.importorskip("torch")
    from lensfind.cli.main import main
    from lensfind.export.onnx_export import export_checkpoint
    from lensfind.simulation.dataset import select_bands
    from lensfind.training.loop import TrainConfig, train

    tr16, tr48 = _paired_sets(tmp_path, 48, 1, "train")
    grid = _paired_sets(tmp_path, 60, 2, "grid")
    test = _paired_sets(tmp_path, 40, 3, "test")
    members = []
    for src, bands in ((tr16, ("J",)), (tr16, ("VIS", "Y", "J", "H")), (tr48, ("VIS",))):
        sub = select_bands(src, tmp_path / f"{src.stem}-{''.join(bands)}.zarr", bands)
        out = tmp_path / f"m-{sub.stem}"
        cfg = TrainConfig(arch="lensfind_des_compact", epochs=1, batch_size=16, threads=1)
        train(sub, out, cfg, quiet=True)
        export_checkpoint(out / "checkpoint.pt", out / "model")
        members.append(str(out / "model"))
    model = tmp_path / "ou"
    rc = main(["ensemble", "--method", "ou_tsne", "--members", ",".join(members), "--quiet",
               "--val-set", ",".join(map(str, grid)), "--test-set", ",".join(map(str, test)),
               "--grid-side", "10", "--perplexity", "10", "--out", str(model)])  # fmt: skip
    assert rc == 0
    card = json.loads((model / "ou_tsne_card.json").read_text())
    assert card["method"] == "ou_tsne" and card["grid"]["side"] == 10
    assert [m["bands"] for m in card["members"]] == [["J"], ["VIS", "Y", "J", "H"], ["VIS"]]
    assert (model / "embedding.png").stat().st_size > 0
    rows = card["test"]["rows"]
    assert [r["model"] for r in rows][-1] == "OU-T-SNE" and len(rows) == 4
    assert all(r["n"] == 40 and r["beta"] == 0.03 for r in rows)
    assert sum(card["test"]["rules"].values()) == 40
    capsys.readouterr()
    again = tmp_path / "eval"
    assert main(["ou-tsne", "evaluate", "--model", str(model), "--quiet",
                 "--test-set", ",".join(map(str, test)), "--out", str(again)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| OU-T-SNE |" in out
    result = json.loads((again / "evaluation.json").read_text())
    assert result["rows"] == json.loads(json.dumps(rows))  # a saved classifier scores the same
    import pyarrow.parquet as pq

    table = pq.read_table(again / "scores.parquet")
    assert table.num_rows == 40 and {"x", "y", "ou_tsne", "rule"} <= set(table.column_names)


def test_mismatched_pairs_are_refused(tmp_path):
    from lensfind.errors import ModelError
    from lensfind.training.ou_tsne.run import read_paired_sets

    a, _ = _paired_sets(tmp_path, 6, 1, "a")
    _, b = _paired_sets(tmp_path, 6, 2, "b")
    with pytest.raises(ModelError, match="same objects"):
        read_paired_sets([a, b])
