"""Fixtures of the export tests: the tiny ONNX test model from :mod:`lensfind.testing`."""

from pathlib import Path

import pytest

from lensfind.testing import make_test_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DES test model (read-only: copy it before changing anything)."""
    return make_test_model(tmp_path_factory.mktemp("model") / "model")
