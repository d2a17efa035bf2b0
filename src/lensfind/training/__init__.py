"""Training: architectures, data, losses, training loop, metrics and ensembles.

``config`` (TrainConfig, YAML + flags), ``data`` (splits, mock lenses, batches),
``mock`` (vL eq. 4.2), ``augment``, ``losses``, ``selection`` (model selection,
early stopping), ``loop`` (train, resume), ``checkpoint``, ``metrics``,
``metrics_log``, ``plots``, ``report``, ``ensemble`` and ``gating``.

Importing ``lensfind.training`` (and ``config``, ``mock``, ``metrics``) needs no
torch; the submodules that do raise a clear message if the ``train`` extra is
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
