"""Band order as part of the model: cards in the network's order, scorers reorder to it."""

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from lensfind.errors import ModelError
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.card import CARD_NAME, load_card
from lensfind.runtime.normalisation import AsinhNormalisation, MinMaxNormalisation
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.simulate import simulate
from lensfind.surveys import get_survey
from lensfind.testing import make_test_model

DES = get_survey("des_y3")
#: a band-sensitive test model takes DES's bands reversed, each with its own weight
REVERSED = ("z", "i", "r", "g")
WEIGHTS = (0.4, 1.3, -0.7, 2.0)


def _cutouts(n: int, seed: int = 0) -> np.ndarray:
    """Raw DES cutouts (counts) in the survey's band order, bands of different brightness."""
    rng = np.random.default_rng(seed)
    sigma = np.array([b.sky_sigma_counts for b in DES.bands], dtype=np.float32)[:, None, None]
    level = rng.uniform(0, 4, size=(n, 4, 1, 1)).astype(np.float32)
    return (rng.normal(size=(n, 4, 100, 100)).astype(np.float32) + level) * sigma


def test_band_order_permutes_selects_and_names_what_is_missing():
    assert band_order(("g", "r"), ("g", "r")) is None
    assert band_order(("VIS", "Y", "J", "H"), ("J", "Y", "H", "VIS")) == (2, 1, 3, 0)
    assert band_order(("VIS", "Y", "J", "H"), ("J",)) == (2,)
    with pytest.raises(ModelError) as info:
        band_order(("g", "r", "i"), ("g", "r", "i", "z"), "model m")
    assert "model m takes bands g, r, i, z" in str(info.value) and "no band z" in str(info.value)
    with pytest.raises(ModelError, match="band r twice"):
        band_order(("g", "r", "r"), ("r", "g"))
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    assert take_bands(x, None) is x
    got = take_bands(x, (2, 0))
    assert_array_equal(got, x[:, [2, 0]]) and got.flags.c_contiguous


@pytest.mark.parametrize(
    ("kind", "cls"), [("asinh", AsinhNormalisation), ("minmax", MinMaxNormalisation)]
)
def test_card_round_trip_for_both_kinds(tmp_path, kind, cls):
    card = load_card(make_test_model(tmp_path / kind, normalisation=kind, bands=REVERSED))
    assert isinstance(card.normalisation, cls) and card.normalisation.kind == kind
    assert card.bands == REVERSED
    raw = json.loads((card.directory / CARD_NAME).read_text())
    assert raw["bands"] == list(REVERSED)
    assert raw["normalisation"] == card.normalisation.to_dict()
    if kind == "asinh":  # the scales follow the model's band order
        want = tuple(DES.band(b).sky_sigma_counts for b in REVERSED)
        assert card.normalisation.scale == want
    else:
        assert raw["normalisation"] == {"kind": "minmax"}
    # written back and read again: the same card
    (card.directory / CARD_NAME).write_text(json.dumps(raw))
    assert load_card(card.directory) == card


@pytest.mark.parametrize("kind", ["asinh", "minmax"])
def test_permuted_card_scores_as_the_model_fed_permuted_cutouts(tmp_path, kind):
    card = load_card(
        make_test_model(tmp_path / "m", bands=REVERSED, normalisation=kind, band_weights=WEIGHTS)
    )
    x = _cutouts(12)
    by_survey = OnnxScorer(card, input_bands=DES.band_names)
    assert by_survey.input_bands == DES.band_names
    pre = np.ascontiguousarray(x[:, [3, 2, 1, 0]])
    own = OnnxScorer(card)(pre)
    before = x.copy()
    assert_array_equal(by_survey(x), own)  # bit-identical: the same input reaches the graph
    assert_array_equal(by_survey(x, overwrite=True), own)
    assert_array_equal(x, before), "a reordered batch is a copy: the caller's counts stay"
    # the model does depend on the order: fed in the survey's order it scores otherwise
    assert np.abs(OnnxScorer(card)(x) - own).max() > 1e-3
    # one session, other input orders
    assert by_survey.with_input_bands(None).input_bands == REVERSED
    assert by_survey.with_input_bands(DES.band_names) is by_survey


def test_scorer_takes_the_card_bands_out_of_more_bands(tmp_path):
    card = load_card(make_test_model(tmp_path / "r", bands=("r",)))
    x = _cutouts(4)
    got = OnnxScorer(card, input_bands=DES.band_names)(x)
    assert_array_equal(got, OnnxScorer(card)(np.ascontiguousarray(x[:, [1]])))
    with pytest.raises(ModelError, match="no band r"):
        OnnxScorer(card, input_bands=("g", "i"))
    with pytest.raises(ModelError, match=r"expected cutouts \(N, 4, 100, 100\)"):
        OnnxScorer(card, input_bands=DES.band_names)(x[:, :3])


def test_shipped_des_y3_scores_are_bit_identical_to_the_asinh_path():
    """The shipped model (asinh, the survey's own band order) scores as it always did:
    the graph fed arcsinh(x / (3 sigma)) in float32, computed here without lensfind's scorer."""
    import onnxruntime as ort

    card = resolve_model("des_y3", "des_y3")
    assert card.normalisation.kind == "asinh" and card.bands == DES.band_names
    x = simulate(DES, 24, 5).images.astype(np.float32)
    sigma = np.asarray(card.normalisation.scale, dtype=np.float32)
    denom = (np.float32(3.0) * sigma)[None, :, None, None]
    ref_input = np.arcsinh(np.divide(x, denom, dtype=np.float32))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(card.onnx_path), opts, providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"cutouts": ref_input})
    want = card.calibrate(np.asarray(want, np.float32).reshape(-1))
    assert_array_equal(OnnxScorer(card, threads=1)(x.copy()), want)
    assert_array_equal(OnnxScorer(card, threads=1, input_bands=DES.band_names)(x), want)
    assert want.max() - want.min() > 0.5  # a real spread of scores, not all one value


@pytest.mark.gpu
def test_tensorrt_reorders_like_onnxruntime(tmp_path):
    from lensfind.runtime.tensorrt_scorer import TensorRTScorer

    card = load_card(
        make_test_model(
            tmp_path / "m", bands=REVERSED, normalisation="minmax", band_weights=WEIGHTS
        )
    )
    x = _cutouts(20)
    trt = TensorRTScorer(
        card, "fp32", batch_size=8, cache_root=tmp_path, input_bands=DES.band_names
    )
    want = OnnxScorer(card, input_bands=DES.band_names)(x)
    np.testing.assert_allclose(trt(x), want, atol=1e-5)
    trt.close()
