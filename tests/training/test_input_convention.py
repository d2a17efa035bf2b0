"""Each architecture's input convention (band order, normalisation) through training and export."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from lensfind.errors import ConfigError, ModelError  # noqa: E402
from lensfind.runtime.card import load_card  # noqa: E402
from lensfind.runtime.normalisation import AsinhNormalisation, MinMaxNormalisation  # noqa: E402
from lensfind.runtime.scorer import OnnxScorer  # noqa: E402
from lensfind.simulation.dataset import (  # noqa: E402
    on_common_grid,
    read_dataset,
    survey_of,
    write_dataset,
)
from lensfind.surveys import get_survey  # noqa: E402
from lensfind.training.architectures import ARCHITECTURES, build_model, input_bands  # noqa: E402
from lensfind.training.config import TrainConfig  # noqa: E402
from lensfind.training.data import (  # noqa: E402
    TrainingData,
    normalisation_for,
    normalisation_kind,
)

EUCLID = get_survey("euclid_wide")
WILDE = ("ou66", "ou66_j", "ou66_y", "ou66_h", "ou66_jyh", "ou200", "ou200_vis")
#: Euclid's survey order (VIS, Y, J, H) -> the authors' J, Y, H, VIS
TO_WILDE = [2, 1, 3, 0]


@pytest.fixture(scope="module")
def euclid66(tmp_path_factory):
    """48 Euclid objects on the NISP grid (0.3"/px, 66 px), bands in the survey's order."""
    spec, config = on_common_grid(EUCLID, 0.3, 66)
    return write_dataset(tmp_path_factory.mktemp("sets") / "eu66.zarr", spec, 48, 3, config)


def test_registry_states_each_architectures_convention():
    for name in WILDE:
        assert ARCHITECTURES[name].normalisation == "minmax", name
    assert ARCHITECTURES["ou66"].bands == ARCHITECTURES["ou200"].bands == ("J", "Y", "H", "VIS")
    assert ARCHITECTURES["ou66_jyh"].bands == ("J", "Y", "H")
    for name in set(ARCHITECTURES) - set(WILDE):
        assert ARCHITECTURES[name].normalisation == "asinh", name
    assert input_bands("ou66", EUCLID.band_names) == ("J", "Y", "H", "VIS")
    assert input_bands("ou66_h", EUCLID.band_names) == ("H",)
    assert input_bands("lensfind_des_compact", ("z", "g")) == ("z", "g")
    with pytest.raises(ConfigError, match=r"ou66_jyh takes bands J, Y, H; .* \(no J\)"):
        input_bands("ou66_jyh", ("VIS", "Y", "H"))
    # the survey in its own order builds the paper network (trained in the paper's order)
    assert build_model("ou66", EUCLID.on_grid(0.3, 66))(torch.zeros(1, 4, 66, 66)).shape == (1,)


def test_normalisation_kind_is_the_architectures_unless_overridden():
    assert normalisation_kind(TrainConfig(arch="ou66")) == "minmax"
    assert normalisation_kind(TrainConfig(arch="ou66", normalisation="asinh")) == "asinh"
    assert normalisation_kind(TrainConfig()) == "asinh"  # the shipped des_y3 recipe
    with pytest.raises(ConfigError, match="normalisation must be one of arch, asinh, minmax"):
        TrainConfig(normalisation="zscale")


def test_training_data_feeds_ou66_the_authors_input(euclid66):
    data, attrs = read_dataset(euclid66)
    assert tuple(attrs["bands"]) == ("VIS", "Y", "J", "H")
    td = TrainingData(euclid66, TrainConfig(arch="ou66"), np.random.default_rng(0))
    assert td.spec.band_names == ("J", "Y", "H", "VIS") and td.norm == MinMaxNormalisation()
    x = td.model_input(data.images, data_bands := tuple(attrs["bands"]))
    want = np.empty(x.shape)
    for i, b in np.ndindex(x.shape[:2]):  # the authors' loader, stamp by stamp
        stamp = data.images[i, TO_WILDE[b]].astype(np.float64)
        want[i, b] = (stamp - stamp.min()) / (stamp.max() - stamp.min())
    assert_allclose(x, want, rtol=1e-6, atol=1e-6)
    assert_allclose(td.x_val.max(axis=(2, 3)), 1.0, atol=1e-6)
    # asinh on request: the sky scales follow the network's band order
    td = TrainingData(euclid66, TrainConfig(arch="ou66", normalisation="asinh"),
                      np.random.default_rng(0))  # fmt: skip
    grid = survey_of(attrs)
    assert td.norm == AsinhNormalisation(
        scale=tuple(grid.band(b).sky_sigma_counts for b in ("J", "Y", "H", "VIS"))
    )
    with pytest.raises(ModelError, match="no band VIS"):
        td.model_input(data.images[:, 1:], data_bands[1:])


def test_training_data_keeps_the_set_order_for_any_band_models(tiny_set):
    data, attrs = read_dataset(tiny_set)
    td = TrainingData(tiny_set, TrainConfig(), np.random.default_rng(0))
    assert td.spec == survey_of(attrs)
    assert td.norm == normalisation_for(survey_of(attrs))
    assert_array_equal(td.model_input(data.images, tuple(attrs["bands"])),
                       normalisation_for(survey_of(attrs))(data.images))  # fmt: skip


def test_trained_ou66_exports_its_convention_and_scores_survey_order_cutouts(euclid66, tmp_path):
    from lensfind.export.onnx_export import export_checkpoint
    from lensfind.training.loop import load_checkpoint, predict, train

    config = TrainConfig(arch="ou66", epochs=1, batch_size=16, threads=1, lr=3e-4)
    report = train(euclid66, tmp_path / "ckpt", config, test_set=euclid66, quiet=True)
    assert report["bands"] == ["J", "Y", "H", "VIS"]
    assert report["normalisation"] == {"kind": "minmax"}
    card = export_checkpoint(tmp_path / "ckpt" / "checkpoint.pt", tmp_path / "model",
                             test_set=euclid66)  # fmt: skip
    assert card["bands"] == ["J", "Y", "H", "VIS"] and card["normalisation"] == {"kind": "minmax"}
    loaded = load_card(tmp_path / "model")
    data, attrs = read_dataset(euclid66)
    onnx = OnnxScorer(loaded, input_bands=tuple(attrs["bands"]))(data.images)
    model, _ = load_checkpoint(tmp_path / "ckpt" / "checkpoint.pt")
    x = MinMaxNormalisation()(np.ascontiguousarray(data.images[:, TO_WILDE]))
    assert_allclose(onnx, predict(model, x), rtol=1e-4, atol=1e-5)
    # the card's held-out metrics were measured on the set in its own order, reordered
    assert card["test_metrics"]["auroc"] == pytest.approx(
        report["test_metrics_torch"]["auroc"], abs=1e-6
    )
