"""lensfind.runtime.card and lensfind.runtime.scorer, on the lensfind.testing model."""

import json
import shutil

import numpy as np
import onnx
import pytest

from lensfind.errors import ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, load_card
from lensfind.runtime.scorer import OnnxScorer, Scorer
from lensfind.runtime.shipped import resolve_model
from lensfind.surveys import get_survey
from lensfind.testing import TEST_MODEL_GAIN, TEST_MODEL_OFFSET, make_test_model

DES = get_survey("des_y3")


@pytest.fixture
def model_copy(model_dir, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


@pytest.fixture(scope="module")
def scorer(model_dir):
    return OnnxScorer(model_dir)


def _cutouts(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.array([b.sky_sigma_counts for b in DES.bands], dtype=np.float32)
    noise = rng.normal(size=(n, 4, 100, 100)).astype(np.float32) * sigma[None, :, None, None]
    return (
        noise + rng.uniform(0, 3, size=(n, 1, 1, 1)).astype(np.float32) * sigma[None, :, None, None]
    )


def test_load_card(model_dir):
    card = load_card(model_dir)
    assert card.name == "test-model"
    assert card.survey == "des_y3"
    assert card.bands == DES.band_names
    assert card.input_shape == (4, 100, 100)
    assert card.threshold == 0.5
    assert card.sha256 == sha256_of(model_dir / ONNX_NAME)
    assert card.onnx_path == model_dir / ONNX_NAME
    assert card.directory == model_dir
    assert card.normalisation.scale == tuple(b.sky_sigma_counts for b in DES.bands)
    assert card.normalisation.softening == 3.0
    assert resolve_model(str(model_dir), "des_y3") == card
    assert resolve_model(str(model_dir / ONNX_NAME), "des_y3") == card


def test_test_model_is_valid_and_deterministic(model_dir, tmp_path):
    model = onnx.load(str(model_dir / ONNX_NAME))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["cutouts"]
    assert [o.name for o in model.graph.output] == ["lens_probability"]
    assert model.opset_import[0].version == 17
    again = make_test_model(tmp_path / "again")
    assert (again / ONNX_NAME).read_bytes() == (model_dir / ONNX_NAME).read_bytes()
    kids = load_card(make_test_model(tmp_path / "kids", survey="kids_dr3", name="k"))
    assert kids.bands == ("r",)
    assert kids.input_shape == (1, 101, 101)
    assert OnnxScorer(kids)(np.zeros((2, 1, 101, 101), np.float32)).shape == (2,)


def test_changed_model_bytes_are_rejected(model_copy):
    path = model_copy / ONNX_NAME
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelError) as info:
        load_card(model_copy)
    msg = str(info.value)
    assert str(path) in msg
    assert "does not match its card" in msg


def test_missing_card(model_copy):
    (model_copy / CARD_NAME).unlink()
    with pytest.raises(ModelError, match="no model card") as info:
        load_card(model_copy)
    assert str(model_copy / CARD_NAME) in str(info.value)


def test_missing_model_file(model_copy):
    (model_copy / ONNX_NAME).unlink()
    with pytest.raises(ModelError, match="is missing") as info:
        load_card(model_copy)
    assert str(model_copy / ONNX_NAME) in str(info.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.pop("bands"),
        lambda c: c.update(normalisation={"kind": "log", "scale": [1, 1, 1, 1], "softening": 3}),
        lambda c: c.update(threshold="high"),
    ],
)
def test_bad_card_fields(model_copy, edit):
    path = model_copy / CARD_NAME
    card = json.loads(path.read_text())
    edit(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="missing or bad field") as info:
        load_card(model_copy)
    assert str(path) in str(info.value)


def test_card_not_json(model_copy):
    (model_copy / CARD_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_card(model_copy)


def test_scorer_output(scorer):
    assert isinstance(scorer, Scorer)
    x = _cutouts(9)
    p = scorer(x)
    assert p.shape == (9,)
    assert p.dtype == np.float32
    assert ((p >= 0) & (p <= 1)).all()
    assert p.std() > 0.05, "the test model gives varied scores"
    # the test model is sigmoid(GAIN * (mean(normalised) - OFFSET))
    mean = scorer.card.normalisation(x).mean(axis=(1, 2, 3), dtype=np.float64)
    expected = 1 / (1 + np.exp(-TEST_MODEL_GAIN * (mean - TEST_MODEL_OFFSET)))
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)


def test_scorer_is_batch_independent(scorer):
    x = _cutouts(6, seed=3)
    whole = scorer(x)
    parts = np.concatenate([scorer(x[:1]), scorer(x[1:4]), scorer(x[4:])])
    np.testing.assert_allclose(parts, whole, rtol=1e-6)


def test_scorer_does_not_modify_its_input(scorer):
    x = _cutouts(4, seed=1)
    before = x.copy()
    scorer(x)
    np.testing.assert_array_equal(x, before)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(scorer(x64), scorer(x), rtol=1e-6)
    np.testing.assert_array_equal(x64, before.astype(np.float64))


def test_scorer_empty_batch(scorer):
    p = scorer(np.zeros((0, 4, 100, 100), np.float32))
    assert p.shape == (0,)
    assert p.dtype == np.float32


@pytest.mark.parametrize(
    "shape", [(4, 100, 100), (2, 3, 100, 100), (2, 4, 99, 100), (2, 4, 100, 100, 1)]
)
def test_scorer_rejects_wrong_shapes(scorer, shape):
    with pytest.raises(ModelError, match="expected cutouts") as info:
        scorer(np.zeros(shape, np.float32))
    assert "test-model" in str(info.value)
    assert str(shape) in str(info.value)


def test_scorer_rejects_a_changed_model(model_copy):
    path = model_copy / ONNX_NAME
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ModelError, match="does not match"):
        OnnxScorer(model_copy)
