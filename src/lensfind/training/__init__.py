"""Training: architectures, data, training loop and metrics.

Importing ``lensfind.training`` needs no torch; the submodules that do
(``architectures``, ``loop``) raise a clear message if the ``train`` extra is
missing.
"""

from typing import Any

_LAZY = {"build_model", "ARCHITECTURES", "list_architectures"}


def __getattr__(name: str) -> Any:
    """``build_model`` and the registry, imported (with torch) on first use."""
    if name in _LAZY:
        from lensfind.training import architectures

        return getattr(architectures, name)
    raise AttributeError(f"module 'lensfind.training' has no attribute {name!r}")
