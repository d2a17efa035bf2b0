"""Shared fixtures of the engine tests, built with :mod:`lensfind.testing`.

The region (2 DES tiles of 400x400 px, 32 objects) and the model are built once
per session; tests that modify a region work on a copy (``copy_region``).
"""

import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lensfind.engine.config import ENV_PREFIX, ScanConfig
from lensfind.engine.scan import ScanResult, run_scan
from lensfind.testing import make_test_model, make_test_region

SHARD_SIZE = 8


@pytest.fixture(autouse=True)
def _clean_scan_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No LENSFIND_SCAN__* settings leak in from the environment; a private cache."""
    import os

    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LENSFIND_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic DES region (read-only: copy it before changing anything)."""
    return make_test_region(tmp_path_factory.mktemp("region") / "region")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ONNX test model for DES."""
    return make_test_model(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="session")
def catalog(region: Path):
    """The region's catalogue as an Arrow table."""
    return pq.read_table(region / "catalog.parquet")


@pytest.fixture
def copy_region(region: Path, tmp_path: Path) -> Callable[..., Path]:
    """Return ``copy(name="region") -> Path``: a private copy of the region in tmp_path."""

    def copy(name: str = "region") -> Path:
        dest = tmp_path / name
        shutil.copytree(region, dest)
        return dest

    return copy


def _scan_config(data_dir: Path, model_dir: Path, out: Path, **kw) -> ScanConfig:
    kw.setdefault("workers", 0)
    kw.setdefault("shard_size", SHARD_SIZE)
    return ScanConfig(data_dir=data_dir, model=str(model_dir), out=out, quiet=True, **kw)


@pytest.fixture
def scan_config(model_dir: Path) -> Callable[..., ScanConfig]:
    """Return ``config(data_dir, out, **settings)``: an in-process, quiet scan of the test model."""

    def config(data_dir: Path, out: Path, **kw) -> ScanConfig:
        return _scan_config(data_dir, model_dir, out, **kw)

    return config


@pytest.fixture(scope="session")
def full_run(region: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    """One uninterrupted in-process scan of the region (read-only)."""
    out = tmp_path_factory.mktemp("runs") / "full"
    return run_scan(_scan_config(region, model_dir, out))
