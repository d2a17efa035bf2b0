"""Gradient saliency maps of torch lens models: Grad-CAM, guided backpropagation and
Guided Grad-CAM (Selvaraju et al. 2017; Springenberg et al. 2014), computed with
Captum on the two-class view ``[-z, z]`` of the model's one lens logit ``z``.

Target ``'lens'`` attributes the logit ``z``; ``'non-lens'`` attributes ``-z``, which
is the non-lens logit of an equivalent two-output softmax network (its class
scores differ by ``z``). Grad-CAM is ReLU'd and then upsampled bilinearly to the
input size, as in Selvaraju et al. (2017).
"""

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.saliency.inputs import as_batch, check_batch_size, target_index

if TYPE_CHECKING:
    from lensfind.training._torch import nn, torch


def _run(
    model: "nn.Module",
    images: np.ndarray,
    batch_size: int,
    attribute: Callable[["nn.Module", "torch.Tensor"], "torch.Tensor"],
    guided: bool,
) -> np.ndarray:
    """Apply ``attribute(view, x)`` to ``images`` in chunks, model frozen, hooks removed."""
    from lensfind.probes.saliency import model as sm
    from lensfind.training._torch import torch

    x = as_batch(images)
    batch_size = check_batch_size(batch_size)
    with sm.frozen(model):
        device = sm.device_of(model)
        view = sm.ClassView(model)
        if guided and len(x):
            sm.check_guided_relus(model, sm.to_tensor(x[:1], device))
        out = []
        for start in range(0, len(x), batch_size):
            t = sm.to_tensor(x[start : start + batch_size], device).requires_grad_(True)
            with warnings.catch_warnings(), torch.enable_grad():
                for message in sm.CAPTUM_NOISE:
                    warnings.filterwarnings("ignore", message=message, category=UserWarning)
                out.append(sm.to_numpy(attribute(view, t)))
    if not out:
        return np.empty((0, *x.shape[1:]), dtype=np.float32)
    return np.concatenate(out)


def grad_cam(
    model: "nn.Module",
    images: np.ndarray,
    layer: "nn.Module | str | None" = None,
    *,
    target: str = "lens",
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM of each image, ReLU'd and upsampled to the input size.

    Parameters
    ----------
    model : torch.nn.Module
        One-logit lens model, ``(N, bands, H, W) -> (N,)``; left unchanged.
    images : ndarray, shape (N, bands, H, W)
        Normalised float32 inputs (the model's own input units).
    layer : nn.Module, str or None
        Convolutional layer whose feature maps are weighted: a module of ``model``,
        its dotted name, or ``None`` for the last ``Conv2d``.
    target : {'lens', 'non-lens'}
        Class whose score (``z`` or ``-z``) is explained.
    batch_size : int
        Images per backward pass.

    Returns
    -------
    ndarray, shape (N, H, W)
        ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of the target
        score's gradient w.r.t. feature map ``A_k``, bilinearly upsampled; units of
        the score (logit) times the activation.
    """
    from lensfind.probes.saliency import model as sm

    captum = sm.captum_attr()
    index = target_index(target)
    layer_module = sm.resolve_layer(model, layer)

    def attribute(view: "nn.Module", t: "torch.Tensor") -> "torch.Tensor":
        cam = captum.LayerGradCam(view, layer_module).attribute(
            t, target=index, relu_attributions=True
        )
        if cam.ndim != 4:
            raise ConfigError(
                f"layer: Grad-CAM needs a layer with (N, C, h, w) output; "
                f"{type(layer_module).__name__} gives {tuple(cam.shape)} attributions"
            )
        cam = captum.LayerAttribution.interpolate(cam, tuple(t.shape[2:]), "bilinear")
        return cam[:, 0]

    maps = _run(model, images, batch_size, attribute, guided=False)
    return maps.reshape(len(maps), *np.shape(images)[2:])


def guided_backprop(
    model: "nn.Module",
    images: np.ndarray,
    *,
    target: str = "lens",
    batch_size: int = 64,
) -> np.ndarray:
    """Guided backpropagation: input gradient with negative gradients cut at each ReLU.

    Every ReLU must be an ``nn.ReLU`` module (checked; a functional ``relu`` raises
    :class:`~lensfind.errors.ModelError`). Other activations pass their ordinary
    gradient; a model without ReLUs gets its plain input gradient.

    Parameters
    ----------
    model : torch.nn.Module
        One-logit lens model; left unchanged.
    images : ndarray, shape (N, bands, H, W)
        Normalised float32 inputs.
    target : {'lens', 'non-lens'}
        Class whose score is explained.
    batch_size : int
        Images per backward pass.

    Returns
    -------
    ndarray, shape (N, bands, H, W)
        Guided gradient of the target score, in logit per input unit.
    """
    from lensfind.probes.saliency import model as sm

    captum = sm.captum_attr()
    index = target_index(target)

    def attribute(view: "nn.Module", t: "torch.Tensor") -> "torch.Tensor":
        out: Any = captum.GuidedBackprop(view).attribute(t, target=index)
        return out

    return _run(model, images, batch_size, attribute, guided=True)


def guided_grad_cam(
    model: "nn.Module",
    images: np.ndarray,
    layer: "nn.Module | str | None" = None,
    *,
    target: str = "lens",
    batch_size: int = 64,
) -> np.ndarray:
    """Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM.

    Parameters are those of :func:`grad_cam`; the same ReLU rules as
    :func:`guided_backprop` apply.

    Returns
    -------
    ndarray, shape (N, bands, H, W)
        ``guided_backprop * grad_cam[:, None]`` (bilinear upsampling, as in
        :func:`grad_cam`).
    """
    from lensfind.probes.saliency import model as sm

    captum = sm.captum_attr()
    index = target_index(target)
    layer_module = sm.resolve_layer(model, layer)

    def attribute(view: "nn.Module", t: "torch.Tensor") -> "torch.Tensor":
        out: Any = captum.GuidedGradCam(view, layer_module).attribute(
            t, target=index, interpolate_mode="bilinear"
        )
        return out

    return _run(model, images, batch_size, attribute, guided=True)
