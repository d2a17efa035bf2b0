"""Multiply-accumulates of a network per cutout, counted with forward hooks.

Only the layers that dominate a CNN's arithmetic are counted: convolutions
(``Conv2d``) and dense layers (``Linear``), one multiply-accumulate (MAC) per
weight use. Batch norm, activations, pooling and dropout are left out (they add
a few per cent at most for the registry's architectures). FLOP = 2 x MAC.
"""

from collections.abc import Sequence

from lensfind.errors import ConfigError
from lensfind.training._torch import nn, torch

__all__ = ["count_macs", "count_parameters", "gflop_per_cutout"]


def count_macs(model: "nn.Module", input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of ``model`` for one cutout of ``input_shape``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; run once in eval mode on zeros (its mode is restored).
    input_shape : sequence of int
        ``(bands, H, W)`` of one cutout, pixels.

    Returns
    -------
    int
        MACs of every ``Conv2d`` and ``Linear`` layer for one cutout.

    Raises
    ------
    ConfigError
        ``input_shape`` is not ``(bands, H, W)`` with positive sides.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input_shape must be (bands, H, W) > 0, got {tuple(input_shape)}")
    total = 0

    def conv(mod: "nn.Conv2d", _inp: object, out: "torch.Tensor") -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    def dense(mod: "nn.Linear", _inp: object, out: "torch.Tensor") -> None:
        nonlocal total
        total += (out.numel() // mod.out_features) * mod.in_features * mod.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(dense))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros((1, *shape), dtype=torch.float32))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def gflop_per_cutout(model: "nn.Module", input_shape: Sequence[int]) -> float:
    """``2 * count_macs(model, input_shape) / 1e9``: GFLOP per cutout."""
    return 2 * count_macs(model, input_shape) / 1e9


def count_parameters(model: "nn.Module") -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
