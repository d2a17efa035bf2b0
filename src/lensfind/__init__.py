"""lensfind: a survey-scale strong-gravitational-lens finder.

The package is organised by component (see the project's design notes):
``surveys`` (instrument specs), ``simulation`` (lens physics and rendering),
``training`` (torch models, needs the ``train`` extra), ``export`` (ONNX export,
model cards and scorers), ``engine`` (survey scans) and ``probes``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lensfind")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
