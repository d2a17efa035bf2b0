"""The shipped ``ou66`` (Wilde et al. 2022's OU-66, trained here on simulated Euclid NISP
cutouts): its input convention, its grid, and its accuracy on a set it never saw."""

from pathlib import Path

import numpy as np
import pytest

import lensfind
from lensfind.hashing import sha256_of
from lensfind.runtime.normalisation import MinMaxNormalisation
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model, shipped_models
from lensfind.simulation.dataset import on_common_grid, write_dataset
from lensfind.surveys import get_survey
from lensfind.training.metrics import auroc

MODEL_DIR = Path(lensfind.__file__).parent / "models" / "ou66"
EUCLID = get_survey("euclid_wide")


@pytest.fixture(scope="module")
def card():
    return resolve_model("ou66", "euclid_wide")


def test_ou66_is_shipped_with_the_papers_input_convention(card):
    assert "ou66" in shipped_models() and card.directory == MODEL_DIR
    assert sha256_of(card.onnx_path) == card.sha256
    assert card.bands == ("J", "Y", "H", "VIS")  # the authors' loader's stacking order
    assert card.normalisation == MinMaxNormalisation()  # each band of each cutout to [0, 1]
    assert card.input_shape == (4, 66, 66) and card.pixel_scale_arcsec == 0.3
    assert card.raw["arch"] == "ou66" and card.calibration is not None


def test_the_card_records_auroc_above_095_on_a_set_not_used_in_training(card):
    metrics, test, train = card.raw["test_metrics"], card.raw["test_set"], card.raw["training"]
    assert metrics["n"] >= 4000 and metrics["auroc"] >= 0.95, metrics
    assert test["seed"] not in (train["train_set"]["seed"], 102)  # nor the set watched in training


def test_ou66_separates_lenses_on_fresh_simulations(card, tmp_path):
    """An independent check: a fresh NISP-grid set (a seed used nowhere else), scored
    from the survey's band order; AUROC well above chance (0.97 on 4,000 such objects)."""
    spec, config = on_common_grid(EUCLID, 0.3, 66)
    write_dataset(tmp_path / "fresh.zarr", spec, 400, 20261207, config)
    from lensfind.simulation.dataset import read_dataset

    data, _ = read_dataset(tmp_path / "fresh.zarr")
    scores = OnnxScorer(card, input_bands=EUCLID.band_names)(data.images)
    truth = np.asarray(data.truth["is_lens"], dtype=bool)
    assert 100 < truth.sum() < 300
    assert auroc(truth, scores) >= 0.93
