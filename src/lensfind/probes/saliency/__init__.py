"""Saliency maps and generated images for lens models (Wilde et al. 2022, section 5).

Inputs are float32 batches ``(N, bands, H, W)`` (normalised for torch models),
outputs numpy arrays. Torch models map their input to one lens logit ``z`` per
object; the gradient methods explain the two-class view ``[-z, z]`` (target
``'lens'`` is ``z``, ``'non-lens'`` is ``-z``) with Captum as the engine. Every
method puts the model in evaluation mode, computes no parameter gradients, removes
its hooks, and restores each module's mode and each parameter's ``requires_grad``.

============================  ===========================================  =========
method                        function                                     paper
============================  ===========================================  =========
``occlusion``                 :func:`occlusion_map` (any scorer)           5.1
``gradcam``                   :func:`grad_cam`                             5.6
``guided_backprop``           :func:`guided_backprop`                      5.6
``guided_gradcam``            :func:`guided_grad_cam`                      5.6
``deep_dream``                :func:`deep_dream` (layer objective)         5.5
``class_dream``               :func:`class_dream` (class objective)        5.4
``class_image``               :func:`class_image`                          5.3
``kernels``                   :func:`kernel_activations`                   5.2
============================  ===========================================  =========

Only :func:`occlusion_map` and :func:`save_saliency_png` work without the ``train``
extra (torch, captum); the others raise :class:`~lensfind.errors.MissingExtraError`.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lensfind.errors import ConfigError, suggestion
from lensfind.probes.saliency.generate import class_dream, class_image, deep_dream, kernel_patterns
from lensfind.probes.saliency.gradients import grad_cam, guided_backprop, guided_grad_cam
from lensfind.probes.saliency.inputs import TARGETS
from lensfind.probes.saliency.kernels import (
    kernel_activation_maps,
    kernel_activation_values,
    kernel_activations,
)
from lensfind.probes.saliency.occlusion import occlusion_map
from lensfind.probes.saliency.plot import asinh_display, save_saliency_png

__all__ = [
    "METHODS",
    "TARGETS",
    "UnknownMethodError",
    "asinh_display",
    "class_dream",
    "class_image",
    "deep_dream",
    "get_method",
    "grad_cam",
    "guided_backprop",
    "guided_grad_cam",
    "kernel_activation_maps",
    "kernel_activation_values",
    "kernel_activations",
    "kernel_patterns",
    "occlusion_map",
    "save_saliency_png",
]


class UnknownMethodError(ConfigError, KeyError):
    """A saliency method name that is not in :data:`METHODS`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _Registry(Mapping[str, Callable[..., Any]]):
    """Read-only name -> function mapping whose unknown names raise :class:`UnknownMethodError`."""

    def __init__(self, methods: dict[str, Callable[..., Any]]) -> None:
        self._methods = dict(methods)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        try:
            return self._methods[name]
        except KeyError:
            known = ", ".join(self._methods)
            hint = suggestion(name, self._methods)
            raise UnknownMethodError(
                f"unknown saliency method {name!r}{hint} (known: {known})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)

    def __repr__(self) -> str:
        return f"METHODS({', '.join(self._methods)})"


#: Saliency methods by the names the CLI uses.
METHODS: Mapping[str, Callable[..., Any]] = _Registry(
    {
        "occlusion": occlusion_map,
        "gradcam": grad_cam,
        "guided_backprop": guided_backprop,
        "guided_gradcam": guided_grad_cam,
        "deep_dream": deep_dream,
        "class_dream": class_dream,
        "class_image": class_image,
        "kernels": kernel_activations,
    }
)


def get_method(name: str) -> Callable[..., Any]:
    """The saliency function called ``name``; :class:`UnknownMethodError` if none is."""
    return METHODS[name]
