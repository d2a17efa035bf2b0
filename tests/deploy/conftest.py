"""Shared fixtures of the deploy/ tests: paths, and the flags that `engine scan` accepts."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def deploy_dir() -> Path:
    return ROOT / "deploy"


@pytest.fixture(scope="session")
def scan_flags() -> frozenset[str]:
    """Long options listed by ``engine scan --help`` (run as ``python -m lensfind``)."""
    out = subprocess.run(
        [sys.executable, "-m", "lensfind", "scan", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    flags = frozenset(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", out))
    assert "--scheduler" in flags, out  # the help text was read, not an error message
    return flags
