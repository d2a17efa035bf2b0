"""lensfind: a survey-scale strong-gravitational-lens finder.

The package is organised by component (see the project's design notes):
``surveys`` (instrument specs), ``simulation`` (lens physics and rendering),
``training`` (torch models, needs the ``train`` extra), ``export`` (ONNX export,
model cards and scorers), ``engine`` (survey scans) and ``probes``.

The Python interface (:mod:`lensfind.api`) is imported on first use, so
``import lensfind`` (and the ``engine`` command) stays cheap:
:func:`scan` (a survey region -> a :class:`Run`), :func:`score` (cutouts in
image counts -> lens probabilities), :func:`load_model` and :class:`Run`.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("lensfind")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: Names served lazily from :mod:`lensfind.api`.
_API = ("Run", "load_model", "scan", "score")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from lensfind import api

        return getattr(api, name)
    raise AttributeError(f"module 'lensfind' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
