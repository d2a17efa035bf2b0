"""Checks of the arguments every saliency method shares (numpy only, no torch)."""

import numpy as np

from lensfind.errors import ConfigError

#: Column of the two-class view ``[-z, z]`` that holds each class score.
TARGETS = {"non-lens": 0, "lens": 1}


def target_index(target: str) -> int:
    """Column of ``target`` (``'lens'`` or ``'non-lens'``) in the two-class view."""
    try:
        return TARGETS[target]
    except KeyError:
        known = ", ".join(repr(t) for t in TARGETS)
        raise ConfigError(f"target: unknown class {target!r} (known: {known})") from None


def target_sign(target: str) -> float:
    """+1 for ``'lens'`` (maximise the logit ``z``), -1 for ``'non-lens'`` (``-z``)."""
    return 2.0 * target_index(target) - 1.0


def as_batch(images: np.ndarray, name: str = "images") -> np.ndarray:
    """``images`` as a C-contiguous float32 ``(N, bands, H, W)`` array."""
    x = np.asarray(images)
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(
            f"{name}: expected a float array (N, bands, H, W), got {x.dtype} {x.shape}"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` as an int >= 1."""
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
    return int(batch_size)
