"""``engine train --config``, ``engine ensemble``: end to end through the CLI ``main``."""

import json

import numpy as np
import pytest

from lensfind.cli.main import main
from lensfind.hashing import sha256_of
from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.simulation.dataset import read_dataset, write_dataset
from lensfind.surveys import get_survey
from lensfind.testing import TRAIN_RUN_FILES, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("yaml")

TINY_YAML = """\
# a tiny training run: every key is a TrainConfig / TrainJob field
train_set: sets/train.zarr
test_set: sets/test.zarr
out: ckpt
epochs: 2
batch_size: 32
threads: 1
seed: 3
loss: soft_fbeta
beta: 0.17
select_by: fbeta_curve_mean
rotation: any
shift_px: 2
zoom_max: 1.05
augment_per: sample
name: tiny-fbeta
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_train")
    write_dataset(root / "sets" / "train.zarr", get_survey("des_y3"), 64, seed=1)
    write_dataset(root / "sets" / "test.zarr", get_survey("des_y3"), 64, seed=2)
    (root / "tiny.yaml").write_text(TINY_YAML)
    return root


@pytest.fixture(scope="module")
def trained(work):
    return run_cli("train", "--config", str(work / "tiny.yaml"), "--quiet")


def test_train_from_yaml_end_to_end(work, trained):
    code, out = trained
    assert code == 0, out
    ckpt = work / "ckpt"
    for name in TRAIN_RUN_FILES:
        assert (ckpt / name).is_file(), name  # fmt: skip
    assert "best validation AUROC" in out and "by fbeta_curve_mean" in out
    rows = json.loads((ckpt / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (ckpt / "metrics.csv").read_text().count("\n") == 3
    card = load_card(ckpt / "model")  # exported by default into <out>/model
    assert card.name == "tiny-fbeta"
    training = card.raw["training"]
    assert training["config"]["loss"] == "soft_fbeta" and training["config"]["seed"] == 3
    assert training["config"]["rotation"] == "any" and training["select_by"] == "fbeta_curve_mean"
    assert training["train_set"]["seed"] == 1 and card.raw["test_set"]["seed"] == 2
    for key in ("tpr0", "tpr10", "fbeta", "fbeta_curve_mean", "auroc"):
        assert key in card.raw["test_metrics"], key
    md = (ckpt / "model" / "MODEL_CARD.md").read_text()
    assert card.sha256 in md and "soft_fbeta" in md and "tpr10" in md
    assert "seed 1" in md and "seed 2" in md  # training and test data
    assert f"sha256 {card.sha256[:12]}" in out


def test_flags_override_the_yaml(work, trained):
    code, out = run_cli(
        "train", "--config", str(work / "tiny.yaml"), "--out", str(work / "short"),
        "--epochs", "1", "--loss", "bce", "--no-export", "--quiet",
    )  # fmt: skip
    assert code == 0, out
    report = json.loads((work / "short" / "train_report.json").read_text())
    assert report["epochs_run"] == 1 and report["config"]["loss"] == "bce"
    assert report["config"]["seed"] == 3  # still from the file
    assert not (work / "short" / "model").exists()


def test_resume_of_a_finished_run_changes_nothing(work, trained):
    before = torch.load(work / "ckpt" / "checkpoint.pt", weights_only=True)["state_dict"]
    code, out = run_cli("train", "--config", str(work / "tiny.yaml"), "--resume", "--no-export",
                     "--quiet")  # fmt: skip
    assert code == 0, out
    after = torch.load(work / "ckpt" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unknown_yaml_key_exits_2_naming_it(work, capsys):
    bad = work / "bad.yaml"
    bad.write_text(TINY_YAML + "momentum: 0.9\n")
    code, _ = run_cli("train", "--config", str(bad), "--quiet")
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.yaml: unknown key 'momentum'" in err


def test_cuda_without_cuda_exits_2(work, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _ = run_cli("train", "--config", str(work / "tiny.yaml"), "--out", str(work / "gpu"),
                   "--device", "cuda", "--quiet")  # fmt: skip
    assert code == 2
    assert "device 'cuda' requested" in capsys.readouterr().err


def test_ensemble_command(work, trained):
    code, out = run_cli(
        "train", "--config", str(work / "tiny.yaml"), "--out", str(work / "second"),
        "--epochs", "1", "--seed", "4", "--loss", "bce", "--quiet",
    )  # fmt: skip
    assert code == 0, out
    members = f"{work / 'ckpt' / 'model'},{work / 'second' / 'model'}"
    code, out = run_cli(
        "ensemble", "--members", members, "--method", "nelder_mead",
        "--val-set", str(work / "sets" / "train.zarr"), "--test-set",
        str(work / "sets" / "test.zarr"), "--out", str(work / "ens"), "--threads", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, out
    assert "ensemble of 2 (nelder_mead): weights" in out
    card = load_card(work / "ens")
    assert card.sha256 == sha256_of(work / "ens" / "model.onnx")
    assert len(card.raw["ensemble"]["members"]) == 2
    assert card.raw["test_metrics"]["n"] == 64
    data, _ = read_dataset(work / "sets" / "test.zarr")
    p = OnnxScorer(work / "ens")(data.images[:8])
    assert p.shape == (8,) and np.all((p >= 0) & (p <= 1))
    assert (work / "ens" / "MODEL_CARD.md").is_file()


def test_export_fp16_of_the_shipped_model_from_the_cli(tmp_path, capsys):
    import json

    from lensfind.runtime.card import load_card

    out = tmp_path / "des_y3_fp16"
    assert main(["export", "--model", "des_y3", "--fp16", "--out", str(out), "--quiet"]) == 0
    card = load_card(out)  # sha256 checked
    raw = json.loads((out / "model_card.json").read_text())
    assert json.dumps(raw).count("fp16") >= 1
    assert "fp16" in capsys.readouterr().out and card.input_shape == (4, 100, 100)
    probes = raw["probe_mean_score_change"]["probes"]
    assert set(probes) == {"none", "colour", "blur", "noise", "annulus", "disk"}
    assert all(abs(p["change"]) < 1e-2 for p in probes.values())  # fp16: tiny changes
    assert main(["export", "--out", str(tmp_path / "x"), "--fp16"]) == 2
    assert "exactly one of --checkpoint, --weights or --model" in capsys.readouterr().err
    (tmp_path / "a.zarr").mkdir()
    assert main(["export", "--model", "des_y3", "--out", str(tmp_path / "y"),
                 "--calibration", str(tmp_path / "a.zarr")]) == 2  # fmt: skip
    assert "--calibration goes with --int8" in capsys.readouterr().err
