"""lensfind.training.loop options: losses, selection, early stopping, resume, outputs."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensfind.errors import ResumeError  # noqa: E402
from lensfind.simulation.dataset import read_dataset, survey_of  # noqa: E402
from lensfind.testing import TRAIN_RUN_FILES  # noqa: E402
from lensfind.training import loop  # noqa: E402
from lensfind.training.checkpoint import CHECKPOINT_NAME, LAST_NAME, load_checkpoint  # noqa: E402
from lensfind.training.config import LOSS_NAMES, TrainConfig  # noqa: E402
from lensfind.training.data import normalisation_for, stratified_split  # noqa: E402
from lensfind.training.losses import get_loss  # noqa: E402

FAST = {"epochs": 1, "batch_size": 32, "threads": 1}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_each_loss_lowers_itself_on_a_tiny_problem(name):
    """A tiny CNN, a few Adam steps: the loss that the trainer builds goes down."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = (torch.arange(64) % 2).float()
    x = torch.randn(64, 1, 8, 8, generator=g) + 1.5 * y[:, None, None, None]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 1), torch.nn.Flatten(0),
    )  # fmt: skip
    options = {"beta": 0.17} if name == "soft_fbeta" else {}
    loss_fn = get_loss(name, **options)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def value():
        with torch.no_grad():
            return float(loss_fn(model(x), y))

    first = value()
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    assert value() < 0.8 * first


def _val_split(tiny_set, seed=0, fraction=0.1):
    data, attrs = read_dataset(tiny_set)
    rng = np.random.default_rng(seed)
    val, _ = stratified_split(data.truth["is_lens"], fraction, rng, tiny_set)
    x = normalisation_for(survey_of(attrs))(data.images[val])
    return x, data.truth["is_lens"][val].astype(np.float32)


@pytest.mark.parametrize("name", ["double_soft_f1", "soft_fbeta"])
def test_the_configured_loss_is_the_one_reported(tiny_set, tmp_path, name):
    config = TrainConfig(loss=name, select_by="val_loss", beta=0.3, **FAST)
    report = loop.train(tiny_set, tmp_path, config, quiet=True)
    assert report["config"]["loss"] == name
    model, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    x, y = _val_split(tiny_set)
    with torch.inference_mode():
        z = model(torch.from_numpy(x))
    options = {"beta": 0.3} if name == "soft_fbeta" else {}
    expected = float(get_loss(name, **options)(z, torch.from_numpy(y)))
    assert report["val_metrics"]["val_loss"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    if name != "bce":  # the soft F-losses lie in [0, 1]
        assert 0 <= report["history"][0]["train_loss"] <= 1


def test_class_weighting_and_balanced_sampling_train(tiny_set, tmp_path):
    for loss in ("bce", "weighted_ce"):
        config = TrainConfig(loss=loss, class_weighting="balanced", sampling="balanced", **FAST)
        report = loop.train(tiny_set, tmp_path / loss, config, quiet=True)
        assert np.isfinite(report["history"][0]["train_loss"])


def test_early_stopping_keeps_the_best_epoch(tiny_set, tmp_path, monkeypatch):
    scripted = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.95])
    real = loop.validation_metrics

    def fake(labels, logits, loss_fn, beta):
        out = real(labels, logits, loss_fn, beta)
        out["fbeta_curve_mean"] = next(scripted)
        return out

    monkeypatch.setattr(loop, "validation_metrics", fake)
    config = TrainConfig(
        epochs=6, batch_size=32, threads=1, select_by="fbeta_curve_mean", patience=2,
        keep_checkpoints=True,
    )  # fmt: skip
    report = loop.train(tiny_set, tmp_path, config, quiet=True)
    # epoch 2 is best; epochs 3 and 4 do not improve -> stop before epoch 5
    assert report["epochs_run"] == 4 and report["stopped_early"] is True
    assert report["best_epoch"] == 2 and report["best_value"] == 0.7
    assert [h["improved"] for h in report["history"]] == [True, True, False, False]
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state_dict"]
    epoch2 = torch.load(tmp_path / "epoch-002.pt", weights_only=True)["model"]
    assert all(torch.equal(kept[k], epoch2[k]) for k in kept)
    assert not (tmp_path / "epoch-005.pt").exists()


class Interrupt(Exception):
    pass


def _interrupt_after(n):
    def hook(epoch, row):
        if epoch == n:
            raise Interrupt

    return hook


RESUME_CASES = {
    "simulated": {
        "epochs": 2, "batch_size": 32, "threads": 1, "rotation": "any", "shift_px": 4.0,
        "zoom_max": 1.05, "augment_per": "sample", "sampling": "balanced", "schedule": "cosine",
        "optimizer": "adam", "select_by": "soft_fbeta", "loss": "soft_f1",
    },
    "mock": {
        "epochs": 2, "batch_size": 32, "threads": 1, "positives": "mock", "mock_sources": 16,
        "mock_lens_kinds": ("elliptical", "pair", "spiral"), "val_fraction": 0.2,
        "augment_per": "sample",
    },
}  # fmt: skip


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_equals_an_uninterrupted_run(tiny_set, tmp_path, case):
    config = TrainConfig(**RESUME_CASES[case])
    full = loop.train(tiny_set, tmp_path / "full", config, quiet=True)
    with pytest.raises(Interrupt):
        loop.train(tiny_set, tmp_path / "cut", config, quiet=True, on_epoch=_interrupt_after(1))
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()
    assert (tmp_path / "cut" / LAST_NAME).is_file()
    resumed = loop.train(tiny_set, tmp_path / "cut", config, quiet=True, resume=True)
    assert resumed["history"] == full["history"]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["state_dict"]
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, differ
    rows = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == list(range(1, config.epochs + 1))


def test_resume_refuses_changed_settings(tiny_set, tmp_path):
    config = TrainConfig(**FAST)
    loop.train(tiny_set, tmp_path, config, quiet=True)
    with pytest.raises(ResumeError, match=r"lr: 0.002 -> 0.001"):
        loop.train(tiny_set, tmp_path, TrainConfig(**{**FAST, "lr": 1e-3}), resume=True)
    with pytest.raises(ResumeError, match="nothing to resume"):
        loop.train(tiny_set, tmp_path / "new", config, resume=True)


def test_a_constant_rate_run_continues_for_more_epochs(tiny_set, tmp_path):
    short = {**FAST, "epochs": 1, "schedule": "constant"}
    longer = {**short, "epochs": 2}
    full = loop.train(tiny_set, tmp_path / "full", TrainConfig(**longer), quiet=True)
    loop.train(tiny_set, tmp_path / "cut", TrainConfig(**short), quiet=True)
    more = loop.train(tiny_set, tmp_path / "cut", TrainConfig(**longer), quiet=True, resume=True)
    assert len(more["history"]) == 2  # NaN-safe comparison (an undefined precision is NaN)
    assert json.dumps(more["history"]) == json.dumps(full["history"])
    with pytest.raises(ResumeError, match="2 epochs already ran; --epochs is fewer"):
        loop.train(tiny_set, tmp_path / "cut", TrainConfig(**{**longer, "epochs": 1}),
                   resume=True)  # fmt: skip
    # a run set to more epochs, stopped early, then finished at the epochs it ran
    with pytest.raises(Interrupt):
        loop.train(tiny_set, tmp_path / "stop", TrainConfig(**{**short, "epochs": 3}),
                   quiet=True, on_epoch=_interrupt_after(2))  # fmt: skip
    stopped = loop.train(tiny_set, tmp_path / "stop", TrainConfig(**longer), quiet=True,
                         resume=True)  # fmt: skip
    assert json.dumps(stopped["history"]) == json.dumps(full["history"])
    assert (tmp_path / "stop" / CHECKPOINT_NAME).is_file()
    onecycle = {**FAST, "epochs": 1}
    loop.train(tiny_set, tmp_path / "oc", TrainConfig(**onecycle), quiet=True)
    with pytest.raises(ResumeError, match=r"epochs: 1 -> 2\).*only with --schedule constant"):
        loop.train(tiny_set, tmp_path / "oc", TrainConfig(**{**onecycle, "epochs": 2}),
                   resume=True)  # fmt: skip


def test_a_checkpoint_older_than_a_setting_resumes_at_its_default(tiny_set, tmp_path):
    """A run saved before a setting existed (no key in its identity) had its default."""
    config = TrainConfig(**{**FAST, "epochs": 2})
    full = loop.train(tiny_set, tmp_path / "full", config, quiet=True)
    with pytest.raises(Interrupt):
        loop.train(tiny_set, tmp_path / "cut", config, quiet=True, on_epoch=_interrupt_after(1))
    path = tmp_path / "cut" / LAST_NAME
    blob = torch.load(path, weights_only=False)
    progress = json.loads(blob["progress"])
    del progress["identity"]["occlusion"]  # as written before --occlusion existed
    blob["progress"] = json.dumps(progress)
    torch.save(blob, path)
    resumed = loop.train(tiny_set, tmp_path / "cut", config, quiet=True, resume=True)
    assert json.dumps(resumed["history"]) == json.dumps(full["history"])
    with pytest.raises(ResumeError, match=r"occlusion: 0.0 -> 0.5"):
        loop.train(tiny_set, tmp_path / "cut", TrainConfig(**{**FAST, "epochs": 2,
                   "occlusion": 0.5}), resume=True)  # fmt: skip


def test_run_directory_outputs(tiny_set, tmp_path):
    config = TrainConfig(epochs=2, batch_size=32, threads=1, select_by="val_loss")
    report = loop.train(tiny_set, tmp_path, config, test_set=tiny_set, quiet=True)
    for name in TRAIN_RUN_FILES:
        assert (tmp_path / name).is_file(), name  # fmt: skip
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,val_loss,val_auroc")
    assert len(csv_lines) == 3
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["val_loss"] for r in rows] == [h["val_loss"] for h in report["history"]]
    best = min(range(2), key=lambda i: rows[i]["val_loss"])
    assert report["best_epoch"] == best + 1
    m = report["test_metrics_torch"]
    for key in ("tpr0", "tpr10", "fbeta", "fbeta_curve_mean", "soft_fbeta", "auroc"):
        assert 0 <= m[key] <= 1, key
    md = (tmp_path / "TRAINING_REPORT.md").read_text()
    assert "by `val_loss`" in md and "fbeta_curve_mean" in md and "tpr10" in md
