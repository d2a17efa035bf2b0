"""``engine export --weights``: a state dict of a registry architecture -> a model directory.

Tested with random state dicts of the published layout (the architecture built
here and saved), never with downloaded weights.
"""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from lensfind.cli.main import main  # noqa: E402
from lensfind.hashing import sha256_of  # noqa: E402
from lensfind.runtime.card import load_card  # noqa: E402
from lensfind.runtime.normalisation import AsinhNormalisation, MinMaxNormalisation  # noqa: E402
from lensfind.runtime.scorer import OnnxScorer  # noqa: E402
from lensfind.simulation.dataset import on_common_grid, write_dataset  # noqa: E402
from lensfind.surveys import get_survey  # noqa: E402
from lensfind.testing import run_cli  # noqa: E402
from lensfind.training.architectures import build_model  # noqa: E402

EUCLID = get_survey("euclid_wide")
TO_WILDE = [2, 1, 3, 0]  # VIS, Y, J, H -> J, Y, H, VIS


def _state_file(path, arch, seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(arch, **kw)
    torch.save(model.state_dict(), path)
    return model.eval()


@pytest.fixture(scope="module")
def ou66_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    model = _state_file(root / "OU_66_random.pt", "ou66")
    spec, config = on_common_grid(EUCLID, 0.3, 66)
    test_set = write_dataset(root / "eu66.zarr", spec, 32, 5, config)
    code, out = run_cli("export", "--weights", str(root / "OU_66_random.pt"), "--arch", "ou66",
                        "--survey", "euclid_wide", "--out", str(root / "model"),
                        "--test-set", str(test_set), "--quiet")  # fmt: skip
    return root, model, code, out, test_set


def test_exports_a_model_directory_with_the_architectures_convention(ou66_export):
    root, _, code, out, _ = ou66_export
    assert code == 0, out
    assert "bands J,Y,H,VIS, minmax inputs" in out and "held-out (ONNX Runtime)" in out
    card = load_card(root / "model")  # sha256 checked
    raw = json.loads((root / "model" / "model_card.json").read_text())
    assert card.bands == ("J", "Y", "H", "VIS") and card.input_shape == (4, 66, 66)
    assert card.normalisation == MinMaxNormalisation() and card.survey == "euclid_wide"
    assert raw["arch"] == "ou66" and raw["name"] == "ou66-euclid_wide-OU_66_random"
    assert raw["training"]["weights_sha256"] == sha256_of(root / "OU_66_random.pt")
    assert raw["parity"]["max_abs_diff"] <= raw["parity"]["atol"]
    assert raw["test_metrics"]["n"] == 32 and "tpr0" in raw["test_metrics"]
    assert (root / "model" / "MODEL_CARD.md").read_text().count("minmax") >= 1


def test_scores_survey_order_cutouts_as_the_torch_network_on_the_authors_input(ou66_export):
    root, model, _, _, _ = ou66_export
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 1, (16, 4, 66, 66)) * rng.uniform(1, 50, (16, 4, 1, 1))).astype(np.float32)
    got = OnnxScorer(root / "model", input_bands=EUCLID.band_names)(x)
    with torch.inference_mode():
        inp = torch.from_numpy(MinMaxNormalisation()(np.ascontiguousarray(x[:, TO_WILDE])))
        want = torch.sigmoid(model(inp)).numpy()
    assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with np.load(root / "model" / "weights.npz", allow_pickle=False) as npz:
        for k, v in model.state_dict().items():
            assert np.array_equal(npz[k], v.numpy()), k


def test_engine_evaluate_of_the_export_repeats_its_card_metrics(ou66_export, tmp_path):
    root, _, _, _, test_set = ou66_export
    code, out = run_cli("evaluate", "--model", str(root / "model"), "--set", str(test_set),
                        "--out", str(tmp_path / "eval"), "--quiet")  # fmt: skip
    assert code == 0, out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    card = json.loads((root / "model" / "model_card.json").read_text())
    for key in ("auroc", "tpr0", "tpr10", "fbeta", "precision", "recall", "n", "n_lenses"):
        assert metrics[key] == pytest.approx(card["test_metrics"][key], nan_ok=True), key


def test_an_asinh_architecture_records_the_survey_sky_scales(tmp_path):
    _state_file(tmp_path / "compact.pt", "lensfind_des_compact")
    code, out = run_cli("export", "--weights", str(tmp_path / "compact.pt"), "--arch",
                        "lensfind_des_compact", "--survey", "des_y3", "--out",
                        str(tmp_path / "m"), "--name", "compact", "--quiet")  # fmt: skip
    assert code == 0, out
    card = load_card(tmp_path / "m")
    des = get_survey("des_y3")
    assert card.name == "compact" and card.bands == des.band_names
    assert card.normalisation == AsinhNormalisation(tuple(b.sky_sigma_counts for b in des.bands))


def _error(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    return err


def test_a_mismatched_state_dict_is_a_one_line_error_naming_the_keys(tmp_path, capsys):
    state = build_model("ou66").state_dict()
    state.pop("fc_layer.2.bias")
    state["head.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "bad.pt")
    args = ("--arch", "ou66", "--survey", "euclid_wide", "--out", str(tmp_path / "o"))
    err = _error(capsys, "export", "--weights", str(tmp_path / "bad.pt"), *args)
    assert "weights do not fit ou66" in err
    assert "missing keys fc_layer.2.bias" in err and "unexpected keys head.weight" in err
    # OU-J's weights (one input band) for the four-band OU-66: the shapes differ
    _state_file(tmp_path / "j.pt", "ou66_j")
    err = _error(capsys, "export", "--weights", str(tmp_path / "j.pt"), *args)
    assert "shape of layer.0.weight (50, 1, 3, 3)" in err and "(50, 4, 3, 3)" in err
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert "not a torch weights file" in _error(
        capsys, "export", "--weights", str(tmp_path / "junk.pt"), *args
    )
    torch.save({"model": {"a": 1}}, tmp_path / "nested.pt")
    assert "not a state dict" in _error(
        capsys, "export", "--weights", str(tmp_path / "nested.pt"), *args
    )
    assert not (tmp_path / "o").exists()


def test_export_flags_are_checked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the weight and checkpoint files exist: the flags are at fault
    for name in ("w.pt", "c.pt"):
        (tmp_path / name).write_bytes(b"")
    out = ("--out", str(tmp_path / "o"))
    assert "--weights needs --arch and --survey" in _error(
        capsys, "export", "--weights", "w.pt", "--arch", "ou66", *out
    )
    assert "go with --weights" in _error(
        capsys, "export", "--checkpoint", "c.pt", "--arch", "ou66", *out
    )
    assert "exactly one of --checkpoint, --weights or --model" in _error(
        capsys, "export", "--checkpoint", "c.pt", "--weights", "w.pt", *out
    )
    # asinh inputs need the sky noise per pixel of one grid: Euclid mixes 0.1 and 0.3"/px
    assert "mixes pixel grids" in _error(
        capsys, "export", "--weights", "w.pt", "--arch", "ou66", "--survey", "euclid_wide",
        "--normalisation", "asinh", *out,
    )  # fmt: skip


def test_a_scan_puts_the_survey_on_the_models_grid(ou66_export, tmp_path):
    """``engine scan --survey euclid_wide --model OU66``: the card's 0.3"/px, 66 px grid (the
    NISP grid of Wilde et al.), not the survey's 200 px VIS grid."""
    from lensfind.engine.config import ScanConfig
    from lensfind.engine.scan import run_scan
    from lensfind.simulation.region import RegionConfig, make_region

    root = ou66_export[0]
    assert load_card(root / "model").pixel_scale_arcsec == 0.3
    grid = RegionConfig(tiles_ra=1, tiles_dec=1, tile_px=500, spacing_px=100)
    region = make_region(tmp_path / "nisp", EUCLID.on_grid(0.3, 66), grid)
    result = run_scan(ScanConfig(survey="euclid_wide", data_dir=region, model=str(root / "model"),
                                 out=tmp_path / "run", workers=0, quiet=True))  # fmt: skip
    s = result.summary
    assert s["n_scored"] > 0 and s["n_failed"] == 0
    assert s["n_scored"] + s["n_skipped"] == s["n_objects"] == 25
