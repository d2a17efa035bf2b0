"""lensfind.training.config: YAML + flags -> TrainJob; unknown keys and bad values named."""

import dataclasses
from pathlib import Path

import pytest

from lensfind.errors import ConfigError
from lensfind.training.config import (
    CONFIG_FIELDS,
    LOSS_NAMES,
    SELECT_BY,
    TrainConfig,
    build_train_job,
)


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_yaml_then_flags(tmp_path):
    cfg = _yaml(
        tmp_path,
        "train_set: sets/a.zarr\nout: ckpt\nepochs: 3\nloss: soft_fbeta\nbeta: 0.5\n"
        "lr: 1e-4\nflip: false\nmock_alpha: [0.05, 0.2]\nmock_lens_kinds: elliptical,pair\n",
    )
    job = build_train_job({"epochs": 5, "lr": None, "seed": 7}, cfg)
    assert job.config.epochs == 5  # flag wins over the file
    assert job.config.lr == 1e-4  # YAML 1.1 reads "1e-4" as a string; coerced to float
    assert job.config.seed == 7 and job.config.loss == "soft_fbeta" and job.config.beta == 0.5
    assert job.config.flip is False
    assert job.config.mock_alpha == (0.05, 0.2)
    assert job.config.mock_lens_kinds == ("elliptical", "pair")
    # relative paths in the file are relative to the file
    assert job.train_set == tmp_path / "sets" / "a.zarr"
    assert job.out == tmp_path / "ckpt"
    assert job.test_set is None and job.export is True
    # untouched settings keep the defaults (those of the shipped model)
    assert job.config.batch_size == TrainConfig().batch_size


def test_flags_alone(tmp_path):
    job = build_train_job({"train_set": "a.zarr", "out": tmp_path, "rotation": "any"})
    assert job.train_set == Path("a.zarr") and job.config.rotation == "any"


def test_unknown_yaml_key_is_named(tmp_path):
    cfg = _yaml(tmp_path, "train_set: a.zarr\nout: o\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"train\.yaml: unknown key 'learning_rate'"):
        build_train_job({}, cfg)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("epochs: many", "epochs: 'many' is not a valid int"),
        ("epochs: 2.5", "epochs"),
        ("loss: focal", "loss: must be one of bce"),
        ("select_by: accuracy", "select_by"),
        ("mock_alpha: [0.1]", "mock_alpha"),
        ("flip: maybe", "flip"),
        ("- a\n- b", "expected a mapping"),
        ("epochs: [1", "not valid YAML"),
    ],
)
def test_bad_values_are_named(tmp_path, text, words):
    cfg = _yaml(tmp_path, text if text.startswith("-") else f"train_set: a\nout: o\n{text}\n")
    with pytest.raises(ConfigError, match=words):
        build_train_job({}, cfg)


def test_required_paths(tmp_path):
    with pytest.raises(ConfigError, match="train_set"):
        build_train_job({"out": tmp_path})
    with pytest.raises(ConfigError, match="no such config file"):
        build_train_job({}, tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"zoom_max": 0.9}, "zoom_max"),
        ({"mock_alpha": (0.3, 0.1)}, "mock_alpha"),
        ({"loss": "soft_f1", "class_weighting": "balanced"}, "class_weighting"),
        ({"device": "tpu"}, "device must be one of cpu, cuda"),
    ],
)
def test_config_validation(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**kwargs)


def test_names_match_the_registries():
    torch = pytest.importorskip("torch")  # noqa: F841
    from lensfind.training.losses import LOSSES

    assert set(LOSS_NAMES) == set(LOSSES)
    assert set(SELECT_BY) == {"val_auroc", "val_loss", "fbeta_curve_mean", "soft_fbeta"}
    assert len(CONFIG_FIELDS) == len(dataclasses.fields(TrainConfig))


def test_cuda_without_cuda_is_a_clear_error():
    torch = pytest.importorskip("torch")
    from lensfind.training.loop import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=r"device 'cuda' requested.*--device cpu"):
        resolve_device("cuda")
    assert str(resolve_device("cpu")) == "cpu"
