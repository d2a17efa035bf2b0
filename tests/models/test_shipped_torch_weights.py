"""The shipped des_y3 torch weights are the network of its ONNX file."""

import numpy as np
import pytest

pytest.importorskip("torch")

from lensfind.export.torch_weights import TorchScorer
from lensfind.runtime.scorer import OnnxScorer
from lensfind.runtime.shipped import resolve_model
from lensfind.simulation.simulate import simulate
from lensfind.surveys import get_survey


def test_torch_and_onnx_agree_on_simulated_cutouts():
    card = resolve_model("des_y3", "des_y3")
    raw = simulate(get_survey("des_y3"), 32, seed=11).images
    np.testing.assert_allclose(TorchScorer(card)(raw), OnnxScorer(card)(raw), atol=1e-5)
