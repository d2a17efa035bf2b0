"""The shipped des_y3 torch weights are the network of its ONNX file."""

import numpy as np
import pytest

pytest.importorskip("torch")

from lensfind.export.scorer import OnnxScorer  # noqa: E402
from lensfind.export.torch_weights import TorchScorer  # noqa: E402
from lensfind.models import resolve_model  # noqa: E402
from lensfind.simulation.simulate import simulate  # noqa: E402
from lensfind.surveys import get_survey  # noqa: E402


def test_torch_and_onnx_agree_on_simulated_cutouts():
    card = resolve_model("des_y3", "des_y3")
    raw = simulate(get_survey("des_y3"), 32, seed=11).images
    np.testing.assert_allclose(TorchScorer(card)(raw), OnnxScorer(card)(raw), atol=1e-5)
