"""Kernel activations of a torch lens model (Wilde et al. 2022, section 5.2): the
feature maps of a layer for an input, and their means, the kernel activation values
(KAV) used to find the images that most activate each kernel."""

from typing import TYPE_CHECKING

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.saliency.inputs import as_batch, check_batch_size
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    from lensfind.training._torch import nn


def kernel_activations(
    model: "nn.Module", image: np.ndarray, layer: "nn.Module | str | None" = None
) -> np.ndarray:
    """Feature maps of one layer for one image (kernel-activation images).

    Parameters
    ----------
    model : torch.nn.Module
        Lens model; left unchanged.
    image : ndarray, shape (bands, H, W) or (1, bands, H, W)
        One normalised input.
    layer : nn.Module, str or None
        The layer (``None``: last ``Conv2d``).

    Returns
    -------
    ndarray, shape (C, h, w)
        The layer's output (for a ``Conv2d``, before any following ReLU).
    """
    x = np.asarray(image)
    x = x[None] if x.ndim == 3 else x
    if x.ndim != 4 or len(x) != 1:
        raise ConfigError(f"image: expected (bands, H, W), got {np.shape(image)}")
    return kernel_activation_maps(model, x, layer)[0]


def kernel_activation_maps(
    model: "nn.Module", images: np.ndarray, layer: "nn.Module | str | None" = None
) -> np.ndarray:
    """Feature maps ``(N, C, h, w)`` of ``layer`` for a batch (see :func:`kernel_activations`)."""
    from lensfind.probes.saliency import model as sm
    from lensfind.training._torch import torch

    x = as_batch(images)
    module = sm.resolve_layer(model, layer)
    with sm.frozen(model), torch.no_grad():
        return sm.to_numpy(sm.layer_output(model, module, sm.to_tensor(x, sm.device_of(model))))


def kernel_activation_values(
    model: "nn.Module",
    images: np.ndarray,
    layer: "nn.Module | str | None" = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Kernel activation values (KAV, section 5.2): mean of each feature map, ``(N, C)``."""
    x = as_batch(images)
    batch_size = check_batch_size(batch_size)
    parts = [
        kernel_activation_maps(model, x[s : s + batch_size], layer)
        for s in range(0, len(x), batch_size)
    ]
    maps = np.concatenate(parts) if parts else np.empty((0, 0, 0, 0), np.float32)
    return maps.reshape(*maps.shape[:2], -1).mean(axis=2)
