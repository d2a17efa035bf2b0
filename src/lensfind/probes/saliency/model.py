"""Torch side of the saliency probes: a frozen model, layer lookup, layer capture,
the two-class view of a one-logit model, and the guided-backprop ReLU check.

Imported only inside the torch-backed saliency functions, so that
:mod:`lensfind.probes.saliency` (and its occlusion maps of ONNX scorers) imports
without the ``train`` extra.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from lensfind.errors import ConfigError, MissingExtraError, ModelError
from lensfind.training._torch import nn, torch

# Captum announces its temporary ReLU hooks and the inputs it marks for grad with
# UserWarnings; both are expected here (hooks are removed, inputs are our copies).
CAPTUM_NOISE = (
    r"Setting backward hooks on ReLU activations",
    r"Input Tensor \d+ did not already require gradients",
)

_RELU_FUNCTIONS = {"relu", "relu_"}


def captum_attr() -> ModuleType:
    """``captum.attr``, or the one clear message when it is not installed."""
    try:
        import captum.attr
    except ImportError as exc:  # pragma: no cover - captum is in the train extra
        raise MissingExtraError("train", "captum") from exc
    return captum.attr


def device_of(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 copy of ``x`` on ``device`` (never a view: callers' arrays stay intact)."""
    return torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True)).to(device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return np.asarray(t.detach().to("cpu", torch.float32).numpy())


def require_module(model: object) -> None:
    """Raise unless ``model`` is a torch module (gradient methods need one)."""
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model: this method needs a torch.nn.Module, got {type(model).__name__} "
            "(only occlusion maps work with any scorer)"
        )


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode and no parameter gradients for the duration of the block.

    Each module's ``training`` flag and each parameter's ``requires_grad`` are
    restored on exit, so a probe leaves the model exactly as it found it.
    """
    require_module(model)
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)
        for m, flag in modes:
            m.training = flag


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's lens logit per object, checked to be shape ``(N,)``."""
    z = model(x)
    if not isinstance(z, torch.Tensor) or z.shape not in ((len(x),), (len(x), 1)):
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelError(
            f"{type(model).__name__}: expected one lens logit per object, shape "
            f"({len(x)},), got {shape}"
        )
    return z.reshape(len(x))


class ClassView(nn.Module):
    """Two-class view ``[-z, z]`` of a one-logit lens model.

    Column 1 is the lens logit ``z`` and column 0 the non-lens score ``-z``; their
    softmax is ``[1 - sigmoid(z), sigmoid(z)]``, the two-output network of Wilde et
    al. (2022). Attribution libraries then take the usual class index as target.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = logits(self.model, x)
        return torch.stack((-z, z), dim=1)


def resolve_layer(model: nn.Module, layer: "nn.Module | str | None") -> nn.Module:
    """A layer of ``model``: itself, by dotted name, or (``None``) the last ``Conv2d``.

    "Last" is in registration order (``model.modules()``), which is the order of
    execution for sequential networks such as those of
    :mod:`lensfind.training.architectures`.
    """
    require_module(model)
    named = dict(model.named_modules())
    if layer is None:
        convs = [m for m in named.values() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ConfigError(f"layer: {type(model).__name__} has no Conv2d layer")
        return convs[-1]
    if isinstance(layer, str):
        if layer not in named or layer == "":
            names = [n for n, m in named.items() if isinstance(m, nn.Conv2d)]
            raise ConfigError(
                f"layer: {type(model).__name__} has no module {layer!r} "
                f"(Conv2d layers: {', '.join(names) or 'none'})"
            )
        return named[layer]
    if not any(m is layer for m in named.values()):
        raise ConfigError(f"layer: {type(layer).__name__} is not a module of the model")
    return layer


class _Stop(Exception):
    """Raised by a capture hook to skip the rest of the forward pass."""


def layer_output(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Output of ``layer`` for input ``x``; the forward pass stops at that layer."""
    box: list[torch.Tensor] = []

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            raise ConfigError(f"layer: {type(module).__name__} does not output one tensor")
        box.append(output)
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not box:
        raise ConfigError(f"layer: {type(layer).__name__} is not used in the forward pass")
    return box[0]


def check_guided_relus(model: nn.Module, example: torch.Tensor) -> None:
    """Raise unless every ReLU of the forward pass is an ``nn.ReLU`` module.

    Guided backpropagation replaces the backward pass of ``nn.ReLU`` modules only;
    a ``torch.relu`` / ``F.relu`` / ``Tensor.relu`` call elsewhere would silently
    fall back to the plain gradient. One forward pass of ``example`` under a torch
    function mode finds such calls. (In-place ``nn.ReLU`` modules are fine: Captum's
    hooks act on a copy of their input.)
    """
    from torch.overrides import TorchFunctionMode

    depth = [0]
    stray: list[str] = []

    class _Watch(TorchFunctionMode):
        def __torch_function__(
            self,
            func: Callable[..., Any],
            types: Any,
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            if depth[0] == 0 and getattr(func, "__name__", "") in _RELU_FUNCTIONS:
                stray.append(getattr(func, "__qualname__", str(func)))
            return func(*args, **(kwargs or {}))

    def enter(module: nn.Module, args: Any) -> None:
        depth[0] += 1

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        depth[0] -= 1

    handles = []
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.no_grad(), _Watch():
            model(example)
    finally:
        for h in handles:
            h.remove()
    if stray:
        raise ModelError(
            f"{type(model).__name__}: guided backpropagation needs every ReLU to be an "
            f"nn.ReLU module, but the forward pass calls {sorted(set(stray))} "
            f"{len(stray)} time(s) outside one; replace them by nn.ReLU() modules"
        )
