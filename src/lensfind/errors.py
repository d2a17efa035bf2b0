"""Typed errors. Every message names the file, column, object or survey at fault."""

from collections.abc import Iterable


class LensfindError(Exception):
    """Base class of every error lensfind raises on purpose."""


class UnknownSurveyError(LensfindError, KeyError):
    """A survey name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigError(LensfindError, ValueError):
    """Invalid configuration (unknown key, bad value)."""


class CatalogError(LensfindError):
    """An object catalogue that cannot be used (missing file or column, bad values)."""


class TileReadError(LensfindError):
    """A survey tile that cannot be read (missing, truncated, wrong shape, no WCS)."""


class ModelError(LensfindError):
    """A model file or card that cannot be used (missing, checksum mismatch, bad shape)."""


class StoreError(LensfindError):
    """A cutout store that cannot be read (missing, damaged, another layout)."""


class ResumeError(LensfindError):
    """``--resume`` on a run directory whose inputs or model changed."""


class MissingExtraError(LensfindError, ImportError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"{module} is needed for this; install it with: pip install 'lensfind[{extra}]'"
        )


def suggestion(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the known name closest to ``name`` (difflib), or ``""``."""
    from difflib import get_close_matches

    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class RunDirError(LensfindError):
    """A run directory that cannot be created or written (not a directory, read-only, full)."""
