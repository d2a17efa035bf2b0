"""The shipped des_y3 model: loads, is what its card says, and scores without torch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lensfind.runtime.shipped
from lensfind.hashing import sha256_of
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model, shipped_models
from lensfind.surveys import get_survey

MODEL_DIR = Path(lensfind.__file__).parent / "models" / "des_y3"


@pytest.fixture(scope="module")
def card():
    return resolve_model(None, "des_y3")


def test_default_resolves_to_the_shipped_model(card):
    assert "des_y3" in shipped_models()
    assert card.directory == MODEL_DIR
    assert card.name == "des_y3"
    assert card.survey == "des_y3"
    assert resolve_model("des_y3", "des_y3").sha256 == card.sha256
    assert resolve_model(str(MODEL_DIR), "des_y3").sha256 == card.sha256


def test_checksum(card):
    assert sha256_of(card.onnx_path) == card.sha256


def test_bands_shape_and_normalisation_match_the_survey(card):
    spec = get_survey("des_y3")
    assert card.bands == ("g", "r", "i", "z") == spec.band_names
    assert card.input_shape == (4, 100, 100)
    assert card.input_shape[1] == spec.cutout_px
    np.testing.assert_allclose(
        card.normalisation.scale, [b.sky_sigma_counts for b in spec.bands], rtol=1e-12
    )
    assert 0 < card.threshold < 1


def test_card_records_held_out_metrics(card):
    metrics = card.raw["test_metrics"]
    assert metrics["n"] >= 1000, metrics
    assert 0 < metrics["n_lenses"] < metrics["n"]
    assert metrics["auroc"] >= 0.98, metrics
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == metrics["n"]
    assert metrics["threshold"] == card.threshold
    # held out: the test set is not the training set
    assert card.raw["test_set"]["seed"] != card.raw["training"]["train_set"]["seed"]


def test_card_records_parity(card):
    parity = card.raw["parity"]
    assert parity["n"] > 0
    assert 0 <= parity["max_abs_diff"] <= 1e-5, parity


def test_onnx_file_is_small(card):
    size = card.onnx_path.stat().st_size
    assert size < 5 * 2**20, f"{card.onnx_path} is {size} bytes"


def test_scores_are_probabilities(card):
    rng = np.random.default_rng(0)
    sigma = np.asarray(card.normalisation.scale, dtype=np.float32)[None, :, None, None]
    x = rng.normal(size=(3, 4, 100, 100)).astype(np.float32) * sigma
    p = OnnxScorer(card)(x)
    assert p.shape == (3,)
    assert np.all((p >= 0) & (p <= 1))


def test_scoring_does_not_import_torch():
    code = (
        "import sys, numpy as np; from lensfind.runtime.shipped import resolve_model; "
        "from lensfind.runtime import OnnxScorer; s=OnnxScorer(resolve_model(None,'des_y3')); "
        "s(np.zeros((2,4,100,100),np.float32)); assert 'torch' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
