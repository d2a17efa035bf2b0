"""lensfind.training.loop: one tiny epoch end to end, checkpoint format, determinism."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensfind.training.loop import (  # noqa: E402
    CHECKPOINT_NAME,
    TrainConfig,
    load_checkpoint,
    normalisation_for,
    train,
)
from lensfind.training.metrics import evaluate  # noqa: E402

CONFIG = TrainConfig(epochs=1, batch_size=32, threads=1)


@pytest.fixture(scope="module")
def trained(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "a"
    report = train(tiny_set, out, CONFIG, test_set=tiny_set, quiet=True)
    return out, report


def test_report(trained, tiny_set):
    out, report = trained
    for key in ("history", "best_val_auroc", "test_metrics_torch", "normalisation"):
        assert key in report
    assert len(report["history"]) == CONFIG.epochs
    h = report["history"][0]
    assert h["epoch"] == 1
    assert np.isfinite(h["train_loss"]) and h["train_loss"] > 0
    assert 0.0 <= report["best_val_auroc"] <= 1.0
    assert report["best_val_auroc"] == max(e["val_auroc"] for e in report["history"])
    assert report["test_metrics_torch"]["n"] == 96
    assert report["train_set"]["n_val"] + report["train_set"]["n_train"] == 96
    assert report["input_shape"] == [4, 100, 100]
    assert report["bands"] == ["g", "r", "i", "z"]
    assert report["normalisation"]["kind"] == "asinh"
    on_disk = json.loads((out / "train_report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))


def test_checkpoint_loads_without_pickle(trained):
    out, report = trained
    path = out / CHECKPOINT_NAME
    blob = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors + str
    assert set(blob) == {"state_dict", "meta"}
    model, meta = load_checkpoint(path)
    assert not model.training
    assert meta["arch"] == report["arch"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, blob["state_dict"][k]), k


def test_checkpoint_reproduces_test_metrics(trained, tiny_set):
    from lensfind.simulation.dataset import read_dataset, survey_of

    out, report = trained
    model, _ = load_checkpoint(out / CHECKPOINT_NAME)
    data, attrs = read_dataset(tiny_set)
    x = torch.from_numpy(normalisation_for(survey_of(attrs))(data.images))
    with torch.inference_mode():
        p = torch.sigmoid(model(x)).numpy()
    got = evaluate(data.truth["is_lens"], p)
    assert got["auroc"] == pytest.approx(report["test_metrics_torch"]["auroc"], abs=1e-9)
    assert got["tp"] == report["test_metrics_torch"]["tp"]


def test_training_is_deterministic(trained, tiny_set, tmp_path):
    out, report = trained
    report2 = train(tiny_set, tmp_path / "b", CONFIG, test_set=None, quiet=True)
    a = torch.load(out / CHECKPOINT_NAME, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"tensors differ between two runs with seed 0: {differ}"
    assert report2["history"] == report["history"]
