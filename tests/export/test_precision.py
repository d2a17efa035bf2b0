"""lensfind.export.precision: fp16 and INT8 models of the shipped des_y3 model.

Parity is checked on inputs the export never saw (another seed) against the
tolerance the card records; AUROC against scikit-learn's implementation.
"""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.metrics import roc_auc_score

from lensfind.errors import ModelError
from lensfind.export import precision as prec
from lensfind.hashing import sha256_of
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model

SIZES = {"n_calibration": 64, "n_parity": 64, "n_eval": 256}


@pytest.fixture(scope="module")
def fp32():
    return resolve_model("des_y3", "des_y3")


@pytest.fixture(scope="module")
def exported(fp32, tmp_path_factory):
    """``precision -> model directory`` of the shipped model in fp16 and int8."""
    root = tmp_path_factory.mktemp("precision")
    return {
        p: prec.export_precision(fp32.directory, root / p, p, **SIZES) for p in ("fp16", "int8")
    }


@pytest.fixture(scope="module")
def fresh_inputs(fp32):
    """Cutouts (counts) from a seed no export used."""
    images, _ = prec.simulated_set(fp32, 48, seed=99)
    return images


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_card_is_complete_and_its_sha256_right(exported, fp32, precision):
    out = exported[precision]
    assert sorted(p.name for p in out.iterdir()) == [ONNX_NAME, CARD_NAME]
    raw = json.loads((out / CARD_NAME).read_text())
    assert raw["sha256"] == sha256_of(out / ONNX_NAME)
    card = load_card(out)
    assert card.name == f"des_y3-{precision}"
    assert (card.bands, card.input_shape, card.threshold) == (
        fp32.bands, fp32.input_shape, fp32.threshold,
    )  # fmt: skip
    assert card.normalisation == fp32.normalisation
    assert raw["precision"]["precision"] == precision
    assert raw["precision"]["derived_from"] == {"name": "des_y3", "sha256": fp32.sha256}
    assert "torch_weights" not in raw  # the fp32 weights are not this model
    assert prec.card_precision(card) == precision
    assert raw["parity"]["atol"] == prec.PARITY_ATOL[precision]
    assert raw["parity"]["max_abs_diff"] <= raw["parity"]["atol"]
    assert raw["parity"]["n"] == SIZES["n_parity"]
    ev = raw["precision_eval"]
    assert ev["n"] == SIZES["n_eval"] and 0 < ev["n_lenses"] < ev["n"]
    assert ev["auroc_change"] == pytest.approx(ev["auroc"] - ev["auroc_fp32"])
    assert -ev["auroc_change"] <= prec.AUROC_DROP_MAX[precision]


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_parity_on_unseen_inputs_within_the_recorded_tolerance(
    exported, fp32, fresh_inputs, precision
):
    card = load_card(exported[precision])
    got, ref = OnnxScorer(card)(fresh_inputs), OnnxScorer(fp32)(fresh_inputs)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=card.raw["parity"]["atol"])


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_recorded_auroc_matches_scikit_learn(exported, fp32, precision):
    card = load_card(exported[precision])
    images, is_lens = prec.simulated_set(fp32, SIZES["n_eval"], prec.EVAL_SEED)
    ev = card.raw["precision_eval"]
    assert ev["auroc"] == pytest.approx(roc_auc_score(is_lens, OnnxScorer(card)(images)), abs=1e-9)
    assert ev["auroc_fp32"] == pytest.approx(
        roc_auc_score(is_lens, OnnxScorer(fp32)(images)), abs=1e-9
    )


def test_graphs_are_what_they_claim(exported, fp32):
    fp16 = onnx.load(str(exported["fp16"] / ONNX_NAME))
    floats = [i.data_type for i in fp16.graph.initializer]
    assert TensorProto.FLOAT16 in floats and TensorProto.FLOAT not in floats
    for vi in [*fp16.graph.input, *fp16.graph.output]:  # float32 interface
        assert vi.type.tensor_type.elem_type == TensorProto.FLOAT
    int8 = onnx.load(str(exported["int8"] / ONNX_NAME))
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    settings = json.loads((exported["int8"] / CARD_NAME).read_text())["precision"]["settings"]
    # the input layer stays float: the one node of the fp32 graph that reads the input
    fp32_graph = onnx.load(str(fp32.directory / ONNX_NAME)).graph
    first = [n.name for n in fp32_graph.node if fp32_graph.input[0].name in n.input]
    assert settings["kept_float"] == first and first[0].endswith("features.0/Conv")
    zero_points = [i for i in int8.graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and all(
        not onnx.numpy_helper.to_array(z).any() for z in zero_points
    )  # symmetric: what TensorRT accepts


def test_a_model_file_that_does_not_match_its_card_is_refused(exported, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(exported["fp16"], copy)
    (copy / ONNX_NAME).write_bytes((copy / ONNX_NAME).read_bytes()[:-5])
    with pytest.raises(ModelError, match="does not match its card"):
        load_card(copy)


def test_reduced_precision_models_are_not_reduced_again(exported, tmp_path):
    with pytest.raises(ModelError, match="already fp16; start from the fp32 model"):
        prec.export_precision(exported["fp16"], tmp_path / "x", "int8", **SIZES)


def test_outside_the_tolerance_nothing_is_written(fp32, tmp_path, monkeypatch):
    monkeypatch.setitem(prec.PARITY_ATOL, "fp16", 1e-9)
    with pytest.raises(ModelError, match=r"des_y3 fp16: max \|Δp\| .* \(tolerance 1e-09\)"):
        prec.export_precision(fp32.directory, tmp_path / "out", "fp16", **SIZES)
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_precision_is_refused(fp32, tmp_path):
    with pytest.raises(ValueError, match="precision must be fp16 or int8"):
        prec.export_precision(fp32.directory, tmp_path / "o", "int4")


def test_fp16_conversion_rejects_unknown_operators():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelError, match=r"unsupported operator.*Erf"):
        prec.convert_fp16(model)


def test_fp16_conversion_of_the_test_model_keeps_float32_io(model_dir):
    model = onnx.load(str(model_dir / ONNX_NAME))
    converted = prec.convert_fp16(model)
    assert converted.graph.node[0].op_type == "Cast"
    assert converted.graph.node[-1].op_type == "Cast"
    assert [i.name for i in converted.graph.input] == [i.name for i in model.graph.input]
    assert model.graph.node[0].op_type != "Cast"  # the input model is left alone


def test_calibration_from_a_simulated_set_checks_its_shape(fp32, tmp_path):
    from lensfind.simulation.dataset import write_dataset
    from lensfind.surveys import get_survey

    spec = get_survey("des_y3")
    write_dataset(tmp_path / "cal.zarr", spec, 6, 5)
    images, source = prec.calibration_images(fp32, tmp_path / "cal.zarr", 4)
    assert images.shape == (4, 4, 100, 100) and source == {"source": "cal.zarr", "n": 4, "seed": 5}
    write_dataset(tmp_path / "r.zarr", spec.select(("r",)), 4, 5)
    with pytest.raises(ValueError, match=r"r\.zarr: cutouts"):
        prec.calibration_images(fp32, tmp_path / "r.zarr", 4)
