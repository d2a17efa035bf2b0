"""The scoring protocol and its ONNX Runtime implementation.

A :class:`Scorer` takes raw cutouts in image counts, float32 ``(N, bands, H, W)``
in the band order of its model card (or, given ``input_bands``, in that order:
e.g. the survey's, reordered to the card's), and returns lens probabilities
``(N,)``. Normalisation is part of the scorer, so probes and the engine can
perturb physical images and any model applies its own preprocessing.

Execution providers are chosen explicitly (:func:`resolve_provider`): ``auto``
takes the best one this onnxruntime build has (TensorRT, then CUDA, then CPU);
a named provider that is not available, or not active in the created session,
is a :class:`ProviderError`, never a silent fallback to the CPU.
"""

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from lensfind.errors import ConfigError, ModelError
from lensfind.runtime.card import ModelCard, load_card

#: Cutouts per model call unless a caller says otherwise (scans, re-scoring, probes, training
#: inference): large enough to amortise a call on CPU, small enough for cache-sized batches.
DEFAULT_BATCH_SIZE = 256

#: ``--provider`` values; ``auto`` is the best available of the others.
PROVIDER_CHOICES = ("auto", "cpu", "cuda", "tensorrt")
#: lensfind provider name -> ONNX Runtime execution provider.
EXECUTION_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
#: The order in which ``auto`` looks for a provider (best first).
AUTO_ORDER = ("tensorrt", "cuda", "cpu")
GPU_PROVIDERS = frozenset({"cuda", "tensorrt"})
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


class ProviderError(ModelError):
    """An execution provider that was asked for and that onnxruntime cannot give."""


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns a batch of cutouts into lens probabilities.

    ``overwrite=True`` allows the scorer to normalise ``cutouts`` in place.
    """

    card: ModelCard

    def __call__(self, cutouts: np.ndarray, overwrite: bool = False) -> np.ndarray: ...


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers in this environment."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_provider(requested: str, available: Sequence[str] | None = None) -> str:
    """The provider (``cpu``, ``cuda`` or ``tensorrt``) that ``requested`` means here.

    Parameters
    ----------
    requested : str
        One of :data:`PROVIDER_CHOICES`.
    available : sequence of str, optional
        ONNX Runtime execution providers (default: :func:`available_providers`).

    Raises
    ------
    ConfigError
        ``requested`` is not a provider name.
    ProviderError
        The requested provider is not in ``available`` (one line naming both).
    """
    if requested not in PROVIDER_CHOICES:
        raise ConfigError(
            f"provider must be one of {', '.join(PROVIDER_CHOICES)}, got {requested!r}"
        )
    have = available_providers() if available is None else list(available)
    if requested == "auto":
        for name in AUTO_ORDER:
            if EXECUTION_PROVIDERS[name] in have:
                return name
        raise ProviderError(f"provider 'auto': onnxruntime has no usable provider in {have}")
    if EXECUTION_PROVIDERS[requested] not in have:
        hint = "; install lensfind[gpu]" if requested in GPU_PROVIDERS else ""
        raise ProviderError(f"provider {requested!r} requested but onnxruntime has {have}{hint}")
    return requested


def provider_chain(provider: str) -> list[str]:
    """ONNX Runtime providers of a session for ``provider``, best first.

    The later entries only run graph nodes the first cannot (ONNX Runtime's
    node-level placement, e.g. a shape op on the CPU); the session itself must
    have the first one active, which :class:`OnnxScorer` checks.
    """
    order = AUTO_ORDER[AUTO_ORDER.index(provider) :]
    return [EXECUTION_PROVIDERS[p] for p in order]


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime session options (any field from ``LENSFIND_ORT__<FIELD>``).

    Attributes
    ----------
    threads : int
        Intra-op threads (1 per Dask worker process is right for CPU scans
        where the workers already fill the cores).
    inter_op_threads : int
        Inter-op threads.
    graph_optimization : str
        ``disable``, ``basic``, ``extended`` or ``all``.
    io_binding : bool or None
        Bind inputs and outputs to reusable host buffers (pinned on GPU
        providers); None: on for GPU providers, off for the CPU.
    batch_size : int
        Largest batch of the TensorRT provider's optimisation profile.
    """

    env_prefix: ClassVar[str] = "LENSFIND_ORT__"

    threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    io_binding: bool | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.threads < 0 or self.inter_op_threads < 0:
            raise ConfigError("threads and inter_op_threads must be >= 0 (0: onnxruntime's)")
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            raise ConfigError(
                f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}, "
                f"got {self.graph_optimization!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def _session_options(settings: SessionSettings) -> Any:
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings.threads
    opts.inter_op_num_threads = settings.inter_op_threads
    opts.graph_optimization_level = levels[settings.graph_optimization]
    return opts


def _provider_options(provider: str, card: ModelCard, batch_size: int) -> list[dict[str, str]]:
    """Options of each provider of :func:`provider_chain` (TensorRT: profile + cache)."""
    chain = provider_chain(provider)
    options: list[dict[str, str]] = [{} for _ in chain]
    if provider == "tensorrt":
        from lensfind.cache import cache_dir

        cache = cache_dir() / "tensorrt" / "ort-ep"
        cache.mkdir(parents=True, exist_ok=True)
        shape = "x".join(map(str, card.input_shape))
        name = card.raw.get("input", {}).get("name", "cutouts")
        options[0] = {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": "True",
            "trt_profile_min_shapes": f"{name}:1x{shape}",
            "trt_profile_opt_shapes": f"{name}:{batch_size}x{shape}",
            "trt_profile_max_shapes": f"{name}:{batch_size}x{shape}",
        }
    return options


class OnnxScorer:
    """Score cutouts with ONNX Runtime on an explicitly chosen execution provider.

    Parameters
    ----------
    model : ModelCard or path
        A loaded card, or a model directory.
    threads : int, optional
        Intra-op threads; overrides ``settings.threads``.
    provider : str
        ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` (see :func:`resolve_provider`).
    settings : SessionSettings, optional
        Session options (default: one thread, all graph optimisations).
    input_bands : sequence of str, optional
        Band names of the cutouts this scorer is given, in their order (e.g. a
        survey's ``band_names``); they are reordered to the card's ``bands``.
        Default: the cutouts are in the card's order.

    Raises
    ------
    ProviderError
        The provider is not available, or the created session does not run on it.
    ModelError
        ``input_bands`` lack one of the card's bands.
    """

    def __init__(
        self,
        model: ModelCard | Path,
        threads: int | None = None,
        provider: str = "cpu",
        settings: SessionSettings | None = None,
        input_bands: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.card = model if isinstance(model, ModelCard) else load_card(Path(model))
        self.input_bands = self.card.checked_input_bands(input_bands)
        settings = settings or SessionSettings()
        if threads is not None:
            settings = SessionSettings(**{**settings.__dict__, "threads": threads})
        self.settings = settings
        self.provider = resolve_provider(provider)
        chain = provider_chain(self.provider)
        if self.provider in GPU_PROVIDERS:
            _preload_cuda_libraries()
        try:
            self.session = ort.InferenceSession(
                str(self.card.onnx_path),
                sess_options=_session_options(settings),
                providers=chain,
                provider_options=_provider_options(self.provider, self.card, settings.batch_size),
            )
        except Exception as exc:
            if self.provider == "cpu":
                raise ModelError(
                    f"{self.card.onnx_path}: onnxruntime cannot load it ({exc})"
                ) from None
            raise ProviderError(
                f"provider {self.provider!r}: onnxruntime could not create a session for "
                f"{self.card.onnx_path.name} ({type(exc).__name__}: {exc})"
            ) from None
        active = self.session.get_providers()
        if chain[0] not in active:
            raise ProviderError(
                f"provider {self.provider!r} requested but the onnxruntime session for "
                f"{self.card.onnx_path.name} runs on {active} (is CUDA/cuDNN/TensorRT "
                "installed and a GPU visible?)"
            )
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name
        self._output_rank = len(self.session.get_outputs()[0].shape)
        use_binding = settings.io_binding
        self.io_binding = self.provider in GPU_PROVIDERS if use_binding is None else use_binding
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, cutouts: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """Lens probabilities ``(N,)`` of raw cutouts ``(N, bands, H, W)`` (counts).

        The bands are those of :attr:`input_bands`, in that order.
        ``overwrite=True`` lets the normalisation reuse ``cutouts`` (float32,
        C-contiguous) as the model input: one pass less over memory, and the
        caller's counts are gone.
        """
        x = self.card.normalised_input(cutouts, overwrite, self.input_bands)
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        return self.predict_normalised(x)

    def with_input_bands(self, input_bands: Sequence[str] | None) -> "OnnxScorer":
        """This scorer (the same session) for cutouts with bands ``input_bands``."""
        bands = self.card.checked_input_bands(input_bands)
        if bands == self.input_bands:
            return self
        other = copy.copy(self)
        other.input_bands = bands
        return other

    def predict_normalised(self, x: np.ndarray) -> np.ndarray:
        """Lens probabilities ``(N,)`` of cutouts already normalised as the card says.

        The card's score calibration, if it has one, is applied
        (:meth:`~lensfind.runtime.card.ModelCard.calibrate`).
        """
        step = self.settings.batch_size if self.provider == "tensorrt" else max(len(x), 1)
        parts = [self._run(x[i : i + step]) for i in range(0, len(x), step)]
        return self.card.calibrate(np.concatenate(parts)) if parts else np.empty(0, np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if not self.io_binding:
            (p,) = self.session.run([self._output], {self._input: x})
            p = np.asarray(p, dtype=np.float32)
            if p.shape not in ((len(x),), (len(x), 1)):
                raise ModelError(
                    f"{self.card.onnx_path}: output {self._output!r} has shape {p.shape} for "
                    f"{len(x)} cutouts; a lens finder returns one probability per cutout, "
                    "(N,) or (N, 1)"
                )
            return p.reshape(-1)
        with self._lock:  # the bound buffers are shared by every call of this size
            host_in, host_out, binding = self._bound(len(x))
            np.copyto(host_in, x, casting="same_kind")
            self.session.run_with_iobinding(binding)
            return host_out.reshape(-1).copy()

    def _bound(self, n: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """Host buffers for a batch of ``n`` (pinned on GPU providers), bound once."""
        if n not in self._buffers:
            if len(self._buffers) >= 4:  # a few batch sizes: full batches + the last one
                self._buffers.pop(next(iter(self._buffers)))
            alloc = _pinned_empty if self.provider in GPU_PROVIDERS else _aligned_empty
            host_in = alloc((n, *self.card.input_shape))
            host_out = alloc((n,) + (1,) * (self._output_rank - 1))
            binding = self.session.io_binding()
            binding.bind_input(self._input, "cpu", 0, np.float32, list(host_in.shape),
                               host_in.ctypes.data)  # fmt: skip
            binding.bind_output(self._output, "cpu", 0, np.float32, list(host_out.shape),
                                host_out.ctypes.data)  # fmt: skip
            self._buffers[n] = (host_in, host_out, binding)
        return self._buffers[n]


def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the nvidia-* wheels if that is where they are (onnxruntime >= 1.21).

    Harmless where the libraries come from the system; a failure here only
    means the session creation below reports what is missing.
    """
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # the session creation names the missing library
            pass


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous float32 array (ordinary host memory)."""
    return np.empty(shape, dtype=np.float32)


def _pinned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array in page-locked (pinned) host memory, freed with the array."""
    from lensfind.runtime.cuda import pinned_array

    return pinned_array(shape, np.float32)
