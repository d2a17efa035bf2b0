"""lensfind.export.onnx_export: a tiny trained checkpoint -> ONNX + card, parity, checksum."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from lensfind.errors import ModelError  # noqa: E402
from lensfind.export.onnx_export import export_checkpoint  # noqa: E402
from lensfind.hashing import sha256_of  # noqa: E402
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, load_card  # noqa: E402
from lensfind.runtime.normalisation import AsinhNormalisation  # noqa: E402
from lensfind.runtime.scorer import OnnxScorer  # noqa: E402
from lensfind.simulation.dataset import read_dataset, write_dataset  # noqa: E402
from lensfind.surveys import get_survey  # noqa: E402
from lensfind.training.loop import TrainConfig, load_checkpoint, train  # noqa: E402

# export_checkpoint uses torch's legacy TorchScript exporter (dynamo=False), which
# torch >= 2.9 flags with DeprecationWarnings; the pytest config turns warnings into errors.


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("sets") / "tiny.zarr"
    return write_dataset(out, get_survey("des_y3"), 96, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    train(tiny_set, out, TrainConfig(epochs=1, batch_size=32, threads=1), tiny_set, quiet=True)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def exported(checkpoint, tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model"
    card = export_checkpoint(checkpoint, out, name="tiny", test_set=tiny_set)
    return out, card


@pytest.fixture(scope="module")
def scorer(exported):
    return OnnxScorer(exported[0])


def test_onnx_passes_checker(exported):
    out, _ = exported
    onnx.checker.check_model(str(out / ONNX_NAME))
    model = onnx.load(str(out / ONNX_NAME))
    (inp,) = model.graph.input
    assert inp.name == "cutouts"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"  # symbolic, not fixed to the export example's 2
    assert [d.dim_value for d in dims[1:]] == [4, 100, 100]
    assert [o.name for o in model.graph.output] == ["lens_probability"]


@pytest.mark.parametrize("n", [1, 7, 64])
def test_dynamic_batch(scorer, n):
    rng = np.random.default_rng(n)
    x = rng.normal(0, 5, (n, 4, 100, 100)).astype(np.float32)
    p = scorer(x)
    assert p.shape == (n,)
    assert p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    # each object's score does not depend on the batch it came in
    np.testing.assert_allclose(scorer(x[:1]), p[:1], rtol=1e-5, atol=1e-6)


def test_card_sha256_matches_file(exported):
    out, card = exported
    raw = json.loads((out / CARD_NAME).read_text())
    assert raw["sha256"] == sha256_of(out / ONNX_NAME) == card["sha256"]
    assert raw == json.loads(json.dumps(card))


def test_parity_with_torch(exported, checkpoint, tiny_set, scorer):
    model, meta = load_checkpoint(checkpoint)
    data, _ = read_dataset(tiny_set)
    raw = data.images[:32]
    norm = AsinhNormalisation.from_dict(meta["normalisation"])
    with torch.inference_mode():
        ref = torch.sigmoid(model(torch.from_numpy(norm(raw)))).numpy()
    got = scorer(raw)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_card_records_parity_and_metrics(exported, tiny_set):
    _, card = exported
    parity = card["parity"]
    assert parity["n"] == 96
    assert 0 <= parity["max_abs_diff"] <= parity["atol"] == 1e-5
    assert parity["rtol"] == 1e-4
    metrics = card["test_metrics"]
    assert metrics["n"] == 96
    assert 0 <= metrics["auroc"] <= 1
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == 96
    assert card["test_set"]["n"] == 96 and card["test_set"]["seed"] == 0
    # ONNX Runtime and torch held-out metrics agree (same model, parity-checked)
    assert metrics["auroc"] == pytest.approx(card["test_metrics_torch"]["auroc"], abs=1e-3)
    assert card["name"] == "tiny"
    assert card["bands"] == ["g", "r", "i", "z"]
    assert card["input_shape"] == [4, 100, 100]


def test_load_card_and_byte_flip(exported, tmp_path):
    out, card = exported
    loaded = load_card(out)
    assert loaded.sha256 == card["sha256"]
    assert loaded.name == "tiny"
    assert loaded.input_shape == (4, 100, 100)
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    path = copy / ONNX_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        load_card(copy)
    assert str(path) in str(info.value)
    assert "sha256" in str(info.value)


def test_torch_weights_travel_with_the_onnx_model(exported, checkpoint, tiny_set, tmp_path):
    from lensfind.export.torch_weights import WEIGHTS_NAME, TorchScorer, load_torch_model

    out, card = exported
    entry = card["torch_weights"]
    assert entry["file"] == WEIGHTS_NAME and entry["sha256"] == sha256_of(out / WEIGHTS_NAME)
    model, _ = load_checkpoint(checkpoint)
    loaded = load_torch_model(load_card(out))
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items(),
                               strict=True):  # fmt: skip
        assert k == k2 and torch.equal(a, b)
    raw = read_dataset(tiny_set)[0].images[:16]
    np.testing.assert_allclose(TorchScorer(load_card(out))(raw), OnnxScorer(out)(raw), atol=1e-5)
    # a changed weights file is refused
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    with open(bad / WEIGHTS_NAME, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ModelError, match="sha256 does not match"):
        load_torch_model(load_card(bad))
