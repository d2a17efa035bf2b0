"""``engine calibrate``: temperature fitted on a held-out set, stored in the card, applied."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from lensfind.cli.main import main
from lensfind.runtime.calibrate import CALIBRATION_PNG, calibrate_model
from lensfind.runtime.calibration import apply_temperature, expected_calibration_error
from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.simulation.dataset import read_dataset
from lensfind.testing import make_test_model


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    out = tmp_path_factory.mktemp("sets") / "held.zarr"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["simulate", "--survey", "des_y3", "--n", "160", "--seed", "5",
                     "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return out


def test_cli_writes_the_calibration_and_scorers_apply_it(heldout, tmp_path):
    model = make_test_model(tmp_path / "model")
    raw_card = load_card(model)
    data, _ = read_dataset(heldout)
    raw = OnnxScorer(raw_card, threads=1)(data.images)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["calibrate", "--model", str(model), "--set", str(heldout)])
    assert code == 0 and "ECE" in buf.getvalue()
    cal = json.loads((model / "model_card.json").read_text())["calibration"]
    assert cal["method"] == "temperature" and cal["n"] == 80 and cal["n_eval"] == 80
    assert cal["set"] == "held.zarr" and cal["seed"] == 5
    assert (model / CALIBRATION_PNG).stat().st_size > 0
    card = load_card(model)  # the sha256 of the ONNX file still matches
    assert card.sha256 == raw_card.sha256
    np.testing.assert_allclose(
        OnnxScorer(card, threads=1)(data.images), apply_temperature(raw, cal["temperature"]),
        rtol=1e-6, atol=1e-7,
    )  # fmt: skip
    # the recorded held-out ECE is the one of the half the fit did not see
    y = data.truth["is_lens"].astype(float)
    order = np.random.default_rng(0).permutation(len(y))[80:]
    assert cal["ece_before"] == pytest.approx(expected_calibration_error(raw[order], y[order]),
                                              abs=1e-5)  # fmt: skip
    assert cal["ece_after"] == pytest.approx(
        expected_calibration_error(apply_temperature(raw[order], cal["temperature"]), y[order]),
        abs=1e-5,
    )
    assert cal["nll_after"] <= cal["nll_before"] + 0.05


def test_recalibrating_fits_the_raw_output_again(heldout, tmp_path):
    model = make_test_model(tmp_path / "model")
    first = calibrate_model(model, heldout, eval_set=heldout, threads=1)
    second = calibrate_model(model, heldout, eval_set=heldout, threads=1)
    assert first["temperature"] == second["temperature"] and first["n"] == 160


def test_wrong_input_shape_names_the_set(tmp_path, heldout):
    from lensfind.errors import ModelError

    model = make_test_model(tmp_path / "model", survey="kids_dr3")
    with pytest.raises(ModelError, match=r"held\.zarr"):
        calibrate_model(model, heldout, threads=1)


def test_shipped_model_is_calibrated_with_lower_heldout_ece():
    from lensfind.runtime.shipped import resolve_model

    cal = resolve_model("des_y3", "des_y3").calibration
    assert cal is not None
    entry = cal.summary()
    assert entry["ece_after"] < entry["ece_before"]


def test_copy_of_model_keeps_md_in_step(heldout, tmp_path):
    from lensfind.runtime.card_md import MODEL_CARD_MD, write_model_card_md

    model = make_test_model(tmp_path / "model")
    write_model_card_md(json.loads((model / "model_card.json").read_text()), model / MODEL_CARD_MD)
    shutil.copy(model / MODEL_CARD_MD, tmp_path / "before.md")
    calibrate_model(model, heldout, threads=1)
    text = (model / MODEL_CARD_MD).read_text()
    assert "## Score calibration" in text and "ECE" in text
