"""Fixtures of the training tests: a tiny simulated DES set."""

from pathlib import Path

import pytest

from lensfind.simulation.dataset import write_dataset
from lensfind.surveys import get_survey

TINY_N = 96


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 simulated des_y3 objects (seed 0), read-only."""
    out = tmp_path_factory.mktemp("sets") / "tiny.zarr"
    return write_dataset(out, get_survey("des_y3"), TINY_N, seed=0)
