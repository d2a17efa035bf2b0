"""Ensembles: Nelder-Mead weights, the gating CNN, and the one-graph ONNX export.

(The export half tests lensfind.export.ensemble_export; it lives here because it
needs this directory's trained tiny members.)
"""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from lensfind.errors import ModelError  # noqa: E402
from lensfind.export.ensemble_export import export_ensemble, load_ensemble_torch  # noqa: E402
from lensfind.export.onnx_export import export_checkpoint  # noqa: E402
from lensfind.hashing import sha256_of  # noqa: E402
from lensfind.runtime.card import CARD_NAME, load_card  # noqa: E402
from lensfind.runtime.scorer import OnnxScorer  # noqa: E402
from lensfind.simulation.dataset import read_dataset  # noqa: E402
from lensfind.training.ensemble import (  # noqa: E402
    EnsembleModule,
    best_member_targets,
    ensemble_mse,
    mean_weights,
    nelder_mead_weights,
)
from lensfind.training.gating import GatingCNN, train_gate  # noqa: E402
from lensfind.training.loop import TrainConfig, train  # noqa: E402


def test_nelder_mead_finds_a_known_optimum():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0, 1, (500, 2))
    labels = 0.7 * probs[:, 0] + 0.3 * probs[:, 1]  # exactly reachable: MSE 0 at (0.7, 0.3)
    w, info = nelder_mead_weights(probs, labels)
    np.testing.assert_allclose(w, [0.7, 0.3], atol=1e-4)
    assert info["mse"] < 1e-8 < info["mse_mean_weights"]


def test_nelder_mead_matches_least_squares_and_is_not_normalised():
    rng = np.random.default_rng(1)
    labels = (rng.uniform(size=2000) < 0.5).astype(float)
    # three members of different quality; the MSE optimum of P @ w is the OLS solution
    noise = rng.normal(0, [[0.2, 0.35, 0.5]], (2000, 3))
    probs = np.clip(labels[:, None] * 0.8 + 0.1 + noise, 0, 1)
    w, info = nelder_mead_weights(probs, labels)
    ols = np.linalg.lstsq(probs, labels, rcond=None)[0]
    np.testing.assert_allclose(w, ols, atol=2e-3)
    assert info["mse"] == pytest.approx(ensemble_mse(ols, probs, labels), rel=1e-4)
    assert info["mse"] < info["mse_mean_weights"]
    assert abs(w.sum() - 1) > 1e-3  # used as found: no normalisation to a sum of one
    module = EnsembleModule([torch.nn.Identity()] * 3, "nelder_mead", weights=w)
    np.testing.assert_allclose(module.weights.numpy(), w, rtol=1e-6)


def test_best_member_targets_and_mean_weights():
    probs = np.array([[0.9, 0.6], [0.2, 0.4], [0.5, 0.5]])
    assert best_member_targets(probs, np.array([1, 1, 0])).tolist() == [0, 1, 0]
    np.testing.assert_allclose(mean_weights(4), 0.25)


class Const(torch.nn.Module):
    """A member whose lens logit is a fixed function of the mean pixel."""

    def __init__(self, gain):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(float(gain)))

    def forward(self, x):
        return self.gain * x.mean(dim=(1, 2, 3))


def test_ensemble_module_combinations():
    x = torch.randn(5, 1, 8, 8)
    members = [Const(3.0), Const(-2.0)]
    p = torch.stack([torch.sigmoid(m(x)) for m in members], 1)
    mean = EnsembleModule(members, "mean")(x)
    torch.testing.assert_close(mean, p.mean(1))
    nm = EnsembleModule(members, "nelder_mead", weights=[1.5, 0.8])(x)
    torch.testing.assert_close(nm, torch.clamp(p @ torch.tensor([1.5, 0.8]), 0, 1))
    gate = GatingCNN(1, 2, width=4)
    gated = EnsembleModule(members, "gated", gate=gate).eval()
    out = gated(x)
    assert out.shape == (5,) and bool(((out >= 0) & (out <= 1)).all())
    with pytest.raises(Exception, match="weights"):
        EnsembleModule(members, "nelder_mead")


def test_gate_learns_which_member_to_trust():
    """Member 0 is right on bright cutouts, member 1 on faint ones: the gate must route."""
    rng = np.random.default_rng(2)
    n = 240
    bright = rng.uniform(size=n) < 0.5
    labels = (rng.uniform(size=n) < 0.5).astype(float)
    x = rng.normal(0, 0.3, (n, 1, 16, 16)) + np.where(bright, 2.0, -2.0)[:, None, None, None]
    good, bad = np.where(labels == 1, 0.95, 0.05), np.where(labels == 1, 0.05, 0.95)
    probs = np.stack([np.where(bright, good, bad), np.where(bright, bad, good)], axis=1)
    gate = GatingCNN(1, 2, width=4)
    assert gate(torch.zeros(3, 1, 16, 16)).shape == (3, 2)
    fit = train_gate(gate, x.astype(np.float32), probs, labels, epochs=5, lr=1e-2, seed=0)
    assert fit["val_mse_mean_weights"] == pytest.approx(0.25, abs=1e-9)  # mean is always 0.5
    assert fit["val_mse"] < 0.05
    assert len(fit["history"]) == 5 and 1 <= fit["best_epoch"] <= 5
    assert fit["target_share"] == pytest.approx([bright.mean(), 1 - bright.mean()])


# --- export: one ONNX graph ----------------------------------------------------------


@pytest.fixture(scope="module")
def members(tiny_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    dirs = []
    for seed, loss in ((0, "bce"), (1, "soft_fbeta")):
        ckpt = root / f"ckpt{seed}"
        config = TrainConfig(epochs=1, batch_size=32, threads=1, seed=seed, loss=loss)
        train(tiny_set, ckpt, config, quiet=True)
        dirs.append(root / f"m{seed}")
        export_checkpoint(ckpt / "checkpoint.pt", dirs[-1], name=f"m{seed}")
    return dirs


@pytest.mark.parametrize("method", ["mean", "nelder_mead", "gated"])
def test_ensemble_onnx_equals_its_torch_form(members, tiny_set, tmp_path, method):
    out = tmp_path / method
    card = export_ensemble(members, out, method, val_set=tiny_set, threads=1,
                           gate_options={"epochs": 2, "width": 4})  # fmt: skip
    loaded = load_card(out)
    assert loaded.sha256 == sha256_of(out / "model.onnx") == card["sha256"]
    assert loaded.raw["arch"] == "ensemble" and loaded.bands == ("g", "r", "i", "z")
    ens = card["ensemble"]
    assert ens["method"] == method
    for entry, d in zip(ens["members"], members, strict=True):
        member = load_card(d)
        assert entry["sha256"] == member.sha256
        assert entry["card_sha256"] == sha256_of(d / CARD_NAME)
        assert entry["torch_weights_sha256"] == member.raw["torch_weights"]["sha256"]
    data, _ = read_dataset(tiny_set)
    raw = data.images[:48]
    got = OnnxScorer(out)(raw)
    module = load_ensemble_torch(out)
    with torch.inference_mode():
        ref = module(torch.from_numpy(loaded.normalisation(raw))).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    assert card["parity"]["max_abs_diff"] <= 1e-5
    if method == "nelder_mead":
        np.testing.assert_allclose(module.weights.numpy(), ens["weights"], rtol=1e-6)
        assert ens["fit"]["mse"] <= ens["fit"]["mse_mean_weights"] + 1e-12
    md = (out / "MODEL_CARD.md").read_text()
    assert f"Ensemble ({method})" in md and card["sha256"] in md
    assert load_card(members[0]).sha256[:16] in md
    assert json.loads((out / CARD_NAME).read_text())["val_metrics"]["n"] == 96


def test_members_must_share_their_input(members, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(members[1], odd)
    raw = json.loads((odd / CARD_NAME).read_text())
    raw["normalisation"]["softening"] = 5.0
    (odd / CARD_NAME).write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"odd: normalisation .* differs"):
        export_ensemble([members[0], odd], tmp_path / "e", "mean")
    with pytest.raises(ModelError, match="needs a validation set"):
        export_ensemble(members, tmp_path / "e", "nelder_mead")
    with pytest.raises(ModelError, match="at least two members"):
        export_ensemble(members[:1], tmp_path / "e", "mean")
