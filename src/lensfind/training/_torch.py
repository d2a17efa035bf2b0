"""The one place torch is imported, with a clear message when the extra is missing."""

from lensfind.errors import MissingExtraError

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise MissingExtraError("train", "torch") from exc

__all__ = ["nn", "torch"]
