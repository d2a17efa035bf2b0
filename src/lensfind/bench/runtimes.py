"""The runtimes of ``engine bench models``: model variants and one-batch runners.

A variant is a model in one precision (a card with a float32 interface, and its
torch module when there is one); a runner is a closure that scores one prepared
batch of normalised cutouts once on one runtime, in ``host`` mode (numpy in,
probabilities out) or, on GPUs, ``device`` mode (the data stays on the GPU).
"""

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError
from lensfind.export.onnx_export import export_probability_graph
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ModelCard
from lensfind.runtime.scorer import (
    EXECUTION_PROVIDERS,
    OnnxScorer,
    ProviderError,
    SessionSettings,
    available_providers,
)

#: ``--provider`` of the benchmark -> runtimes it measures.
RUNTIME_GROUPS = {
    "cpu": ("torch-cpu", "ort-cpu"),
    "cuda": ("torch-cuda", "ort-cuda"),
    "tensorrt": ("ort-tensorrt", "tensorrt"),
}
Run = Callable[[], object]


@dataclass(frozen=True)
class Variant:
    """One model in one precision: its card (float32 I/O) and torch module, if any."""

    name: str
    kind: str
    precision: str
    card: ModelCard
    module: Any = None


def arch_card(arch: str, workdir: Path) -> tuple[ModelCard, Any]:
    """A seed architecture with random weights at its paper input: card + torch module."""
    from lensfind.runtime.normalisation import AsinhNormalisation
    from lensfind.training.architectures import ARCHITECTURES, build_model

    info = ARCHITECTURES[arch] if arch in ARCHITECTURES else None
    if info is None:
        raise ConfigError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    module = build_model(arch).eval()
    shape = (len(info.bands), info.size_px, info.size_px)
    path = workdir / f"{arch}.onnx"
    export_probability_graph(module, shape, path)
    card = ModelCard(
        name=arch,
        survey="",
        bands=info.bands,
        input_shape=shape,
        normalisation=AsinhNormalisation(scale=(1.0,) * len(info.bands)),
        threshold=0.5,
        sha256=sha256_of(path),
        onnx_path=path,
        raw={"arch": arch, "input": {"name": "cutouts"}, "weights": "random (seed 0)"},
    )
    return card, module


def precision_card(
    card: ModelCard, precision: str, workdir: Path, calibration: np.ndarray
) -> ModelCard:
    """``card`` with its graph in ``precision`` (a temporary file; float32 I/O)."""
    import onnx

    from lensfind.export.precision import quantize_int8
    from lensfind.runtime.fp16 import convert_fp16

    if precision == "fp32":
        return card
    path = workdir / f"{card.name}-{card.sha256[:8]}-{precision}.onnx"
    if precision == "fp16":
        onnx.save(convert_fp16(onnx.load(str(card.onnx_path))), str(path))
    else:
        quantize_int8(card.onnx_path, path, calibration)
    raw = {**card.raw, "precision": {"precision": precision}}
    return ModelCard(**{**card.__dict__, "sha256": sha256_of(path), "onnx_path": path, "raw": raw})


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    from lensfind.training._torch import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _torch_runs(v: Variant, x: np.ndarray, device: str) -> dict[str, Run]:
    from lensfind.training._torch import torch

    if v.module is None:
        raise ProviderError("no torch weights for this model")
    if v.precision == "int8":
        raise ProviderError("torch eager has no int8 path for this model (not measured)")
    if device == "cpu" and v.precision == "fp16":
        raise ProviderError("torch eager fp16 on a CPU is emulated; not measured")
    dtype = torch.float16 if v.precision == "fp16" else torch.float32
    model = copy.deepcopy(v.module).to(device=device, dtype=dtype).eval()

    def host() -> object:
        with torch.inference_mode():
            z = model(torch.from_numpy(x).to(device=device, dtype=dtype))
            return torch.sigmoid(z).float().cpu().numpy()

    if device == "cpu":
        return {"host": host}
    xd = torch.from_numpy(x).to(device=device, dtype=dtype)

    def on_device() -> object:
        with torch.inference_mode():
            z = torch.sigmoid(model(xd))
        torch.cuda.synchronize()
        return z

    return {"host": host, "device": on_device}


def _ort_runs(v: Variant, x: np.ndarray, provider: str, threads: int) -> dict[str, Run]:
    settings = SessionSettings(threads=threads, batch_size=len(x))
    scorer = OnnxScorer(v.card, provider=provider, settings=settings)
    runs: dict[str, Run] = {"host": lambda: scorer.predict_normalised(x)}
    if provider != "cpu":
        import onnxruntime as ort

        xv = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), "cuda", 0)
        binding = scorer.session.io_binding()
        binding.bind_ortvalue_input(scorer.session.get_inputs()[0].name, xv)
        binding.bind_output(scorer.session.get_outputs()[0].name, "cuda", 0)
        runs["device"] = lambda: scorer.session.run_with_iobinding(binding)
    return runs


def _trt_runs(v: Variant, x: np.ndarray, stack: ExitStack) -> dict[str, Run]:
    from lensfind.runtime.tensorrt_scorer import TensorRTScorer

    scorer = TensorRTScorer(v.card, precision=v.precision, batch_size=len(x))
    stack.callback(scorer.close)
    scorer.load_device(x)
    return {"host": lambda: scorer.predict_normalised(x), "device": scorer.run_on_device}


def make_runs(
    v: Variant, runtime: str, x: np.ndarray, threads: int, stack: ExitStack
) -> dict[str, Run]:
    """Mode (``host``/``device``) -> a call scoring ``x`` once on ``runtime``."""
    if runtime in ("torch-cpu", "torch-cuda"):
        return _torch_runs(v, x, "cpu" if runtime == "torch-cpu" else "cuda")
    if runtime.startswith("ort-"):
        return _ort_runs(v, x, runtime.removeprefix("ort-"), threads)
    return _trt_runs(v, x, stack)


def available_runtimes(provider: str) -> tuple[list[str], dict[str, str]]:
    """Runtimes to measure for ``--provider`` and why others are left out.

    ``all`` takes every runtime this machine has; named groups (``cpu``,
    ``cuda``, ``tensorrt``, comma-separated) must each have an ONNX Runtime or
    TensorRT runtime here, or it is a :class:`ProviderError`.
    """
    groups = list(RUNTIME_GROUPS) if provider == "all" else provider.split(",")
    unknown = [g for g in groups if g not in RUNTIME_GROUPS]
    if unknown:
        raise ConfigError(
            f"--provider must be all or some of {', '.join(RUNTIME_GROUPS)}; got {provider!r}"
        )
    have = available_providers()
    why: dict[str, str] = {}
    try:
        from lensfind.training._torch import torch

        torch_cuda = bool(torch.cuda.is_available())
    except ImportError:
        why["torch-cpu"] = why["torch-cuda"] = "torch not installed (lensfind[train])"
        torch_cuda = False
    if "torch-cuda" not in why and not torch_cuda:
        why["torch-cuda"] = "torch has no CUDA device"
    for name in ("cuda", "tensorrt"):
        if EXECUTION_PROVIDERS[name] not in have:
            why[f"ort-{name}"] = f"onnxruntime has {have}"
    try:
        import tensorrt  # noqa: F401

        from lensfind.runtime.cuda import cudart

        if cudart().device_count() == 0:
            why["tensorrt"] = "no CUDA device"
    except Exception as exc:
        why["tensorrt"] = f"tensorrt or the CUDA runtime missing ({type(exc).__name__})"
    wanted = [r for g in groups for r in RUNTIME_GROUPS[g]]
    chosen = [r for r in wanted if r not in why]
    for g in groups if provider != "all" else []:
        if not any(r in chosen for r in RUNTIME_GROUPS[g] if not r.startswith("torch")):
            raise ProviderError(
                f"provider {g!r}: {why.get(f'ort-{g}', 'missing')}; install lensfind[gpu]"
            )
    return chosen, {r: why[r] for r in wanted if r in why}
