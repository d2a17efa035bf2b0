"""Native TensorRT scoring, with engines cached per model, GPU, TensorRT and precision.

An engine is built from the model's ONNX graph in the wanted precision (fp16:
the graph converted by :func:`lensfind.export.precision.convert_fp16`; int8: a
Q/DQ graph, see below) as a *strongly typed* network, so TensorRT 10 and 11
build it alike, with one optimisation profile ``(1, batch, batch)``. Engines go
to ``cache_dir()/tensorrt/`` with a JSON sidecar holding their key: the model's
sha256, the built graph's sha256, TensorRT's version, the GPU's name and compute
capability, the precision and the profile. A cached engine whose sidecar key
differs from the wanted one (a new TensorRT, another GPU) is stale: it is rebuilt,
or refused with ``rebuild_stale=False``; it is never loaded.

A partial last batch is padded to the profile batch (:func:`pad_batch`), never
given a new profile. Needs ``lensfind[gpu]`` and an NVIDIA GPU.
"""

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError, MissingExtraError, ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ModelCard, load_card
from lensfind.runtime.cuda import DEVICE_TO_HOST, HOST_TO_DEVICE, GpuInfo, cudart, pinned_array
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE

PRECISIONS = ("fp32", "fp16", "int8")
ENGINE_DIR = "tensorrt"
log = logging.getLogger("lensfind.tensorrt")


class StaleEngineError(ModelError):
    """A cached TensorRT engine built for another model, GPU, TensorRT or precision."""


@dataclass(frozen=True)
class Profile:
    """Batch sizes of a TensorRT optimisation profile."""

    min_batch: int
    opt_batch: int
    max_batch: int

    @classmethod
    def for_batch(cls, batch_size: int) -> "Profile":
        """``min 1, opt = max = batch_size``: full batches, padded last batch."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        return cls(1, batch_size, batch_size)


def engine_key(
    model_sha256: str,
    graph_sha256: str,
    tensorrt_version: str,
    gpu: GpuInfo,
    precision: str,
    profile: Profile,
    input_shape: tuple[int, ...],
) -> dict[str, Any]:
    """Everything a serialized engine is specific to (the sidecar's ``key``)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return {
        "model_sha256": model_sha256, "graph_sha256": graph_sha256,
        "tensorrt_version": tensorrt_version, "gpu_name": gpu.name,
        "compute_capability": gpu.compute_capability, "precision": precision,
        "profile": {"min": profile.min_batch, "opt": profile.opt_batch, "max": profile.max_batch},
        "input_shape": list(input_shape),
    }  # fmt: skip


def engine_paths(root: Path, key: dict[str, Any]) -> tuple[Path, Path]:
    """``(engine, sidecar)`` of ``key`` under ``root``.

    The name holds the model, precision, batch and GPU, not the TensorRT version:
    after an upgrade the old engine is found, found stale and replaced.
    """
    gpu = GpuInfo(key["gpu_name"], key["compute_capability"])
    cc = str(key["compute_capability"]).replace(".", "")
    stem = (f"{key['model_sha256'][:16]}-{key['precision']}-b{key['profile']['opt']}-"
            f"{gpu.slug}-sm{cc}")  # fmt: skip
    return root / f"{stem}.engine", root / f"{stem}.json"


def check_cached_engine(engine: Path, sidecar: Path, key: dict[str, Any]) -> bool:
    """Whether a usable engine for ``key`` is cached (False: none is).

    Raises
    ------
    StaleEngineError
        The cached engine was built for another key (naming what differs), its
        sidecar is unreadable, or the engine file does not match the sidecar.
    """
    if not engine.is_file():
        return False
    try:
        recorded = json.loads(sidecar.read_text())
        old = recorded["key"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StaleEngineError(f"{engine.name}: no readable sidecar {sidecar.name}") from None
    differ = sorted(k for k in set(key) | set(old) if old.get(k) != key.get(k))
    if differ:
        what = "; ".join(f"{k} {old.get(k)!r} != {key.get(k)!r}" for k in differ)
        raise StaleEngineError(f"{engine.name}: stale TensorRT engine ({what})")
    if sha256_of(engine) != recorded.get("engine_sha256"):
        raise StaleEngineError(f"{engine.name}: engine bytes do not match {sidecar.name}")
    return True


def write_cached_engine(engine: Path, sidecar: Path, key: dict[str, Any], blob: bytes) -> None:
    """Write the engine, then its sidecar (each to a temporary name, then renamed)."""
    engine.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine.with_name(f".{engine.name}.{os.getpid()}.tmp")
    tmp.write_bytes(blob)
    tmp.replace(engine)
    record = {"key": key, "engine_sha256": sha256_of(engine),
              "built_utc": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(sidecar)


def pad_batch(x: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """``(x padded with zero rows to batch_size rows, number of real rows)``.

    A full batch is returned as is (no copy); more rows than ``batch_size`` is an error.
    """
    n = len(x)
    if n > batch_size:
        raise ValueError(f"{n} rows do not fit a batch of {batch_size}")
    if n == batch_size:
        return x, n
    padded = np.zeros((batch_size, *x.shape[1:]), dtype=x.dtype)
    padded[:n] = x
    return padded, n


def _tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        raise MissingExtraError("gpu", "tensorrt") from None
    if int(tensorrt.__version__.split(".")[0]) < 10:
        raise MissingExtraError("gpu", f"tensorrt >= 10 (found {tensorrt.__version__})")
    return tensorrt


def graph_for_precision(card: ModelCard, precision: str) -> bytes:
    """The ONNX bytes to build: the card's graph, or its fp16 conversion.

    An int8 engine needs an int8 (Q/DQ) model directory
    (:func:`lensfind.export.precision.export_precision`).
    """
    from lensfind.runtime.fp16 import card_precision, convert_fp16, require_onnx

    have = card_precision(card)
    if have == precision:
        return card.onnx_path.read_bytes()
    if precision == "fp16" and have == "fp32":
        model = require_onnx().load(str(card.onnx_path))
        return bytes(convert_fp16(model).SerializeToString())
    raise ModelError(
        f"{card.name} is {have}: a {precision} engine needs a model directory in {precision} "
        f"(lensfind.export.precision.export_precision(..., {precision!r}))"
    )


def build_engine(trt: Any, graph: bytes, input_name: str, shape: tuple[int, ...],
                 profile: Profile) -> bytes:  # fmt: skip
    """Serialize a strongly typed engine of ``graph`` with one optimisation profile."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strong is not None and int(trt.__version__.split(".")[0]) < 11:
        flags = 1 << int(strong)  # 11.x: always strongly typed
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 2 << 30)
    opt = builder.create_optimization_profile()
    opt.set_shape(input_name, (profile.min_batch, *shape), (profile.opt_batch, *shape),
                  (profile.max_batch, *shape))  # fmt: skip
    config.add_optimization_profile(opt)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ModelError("TensorRT could not build the engine (see its log above)")
    return bytes(blob)


class TensorRTScorer:
    """A :class:`~lensfind.runtime.scorer.Scorer` on a native TensorRT engine.

    Parameters
    ----------
    model : ModelCard or path
        A model directory (an int8 engine needs an int8 model directory).
    precision : {"fp32", "fp16", "int8"}
        Engine precision.
    batch_size : int
        Profile batch: every call runs in batches of this size, the last one padded.
    device : int
        CUDA device index.
    cache_root : Path, optional
        Engine cache (default ``cache_dir()/tensorrt``).
    rebuild_stale : bool
        Rebuild a stale cached engine (True) or raise :class:`StaleEngineError`.
    input_bands : sequence of str, optional
        Band names of the cutouts given, in their order (e.g. the survey's);
        reordered to the card's ``bands``. Default: the card's order.
    """

    def __init__(
        self,
        model: ModelCard | Path,
        precision: str = "fp16",
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: int = 0,
        cache_root: Path | None = None,
        rebuild_stale: bool = True,
        input_bands: Sequence[str] | None = None,
    ) -> None:
        trt = _tensorrt()
        from lensfind.cache import cache_dir

        self.card = model if isinstance(model, ModelCard) else load_card(Path(model))
        self.input_bands = self.card.checked_input_bands(input_bands)
        self.precision, self.batch_size = precision, batch_size
        self._rt = cudart()
        self._rt.set_device(device)
        self.gpu = self._rt.device(device)
        graph = graph_for_precision(self.card, precision)
        profile = Profile.for_batch(batch_size)
        key = engine_key(self.card.sha256, hashlib.sha256(graph).hexdigest(), trt.__version__,
                         self.gpu, precision, profile, self.card.input_shape)  # fmt: skip
        self.engine_path, sidecar = engine_paths(cache_root or cache_dir() / ENGINE_DIR, key)
        try:
            cached = check_cached_engine(self.engine_path, sidecar, key)
        except StaleEngineError as exc:
            if not rebuild_stale:
                raise
            log.warning("%s; rebuilding", exc)
            cached = False
        self._input = self.card.raw.get("input", {}).get("name", "cutouts")
        if cached:
            blob = self.engine_path.read_bytes()
        else:
            blob = build_engine(trt, graph, self._input, self.card.input_shape, profile)
            write_cached_engine(self.engine_path, sidecar, key, blob)
        self.built = not cached
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)  # must outlive the engine
        self._engine = self._runtime.deserialize_cuda_engine(blob)
        if self._engine is None:
            raise ModelError(f"{self.engine_path}: TensorRT cannot load this engine")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._output = outputs[0]
        self._context.set_input_shape(self._input, (batch_size, *self.card.input_shape))
        out_shape = tuple(self._context.get_tensor_shape(self._output))
        for name in (self._input, self._output):
            if self._engine.get_tensor_dtype(name) != trt.float32:
                raise ModelError(f"{self.engine_path}: tensor {name} is not float32")
        self._host_in = pinned_array((batch_size, *self.card.input_shape))
        self._host_out = pinned_array(out_shape)
        self._dev_in = self._rt.malloc(self._host_in.nbytes)
        self._dev_out = self._rt.malloc(self._host_out.nbytes)
        self._stream = self._rt.stream_create()
        self._context.set_tensor_address(self._input, self._dev_in)
        self._context.set_tensor_address(self._output, self._dev_out)

    def __call__(self, cutouts: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """Lens probabilities ``(N,)`` of raw cutouts (counts) with bands :attr:`input_bands`."""
        x = self.card.normalised_input(cutouts, overwrite, self.input_bands)
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        return self.predict_normalised(x)

    def predict_normalised(self, x: np.ndarray) -> np.ndarray:
        """Lens probabilities of normalised cutouts: host -> device -> host per batch."""
        out = []
        for start in range(0, len(x), self.batch_size):
            batch, n = pad_batch(x[start : start + self.batch_size], self.batch_size)
            self._host_in[...] = batch
            self._rt.memcpy_async(self._dev_in, self._host_in.ctypes.data, self._host_in.nbytes,
                                  HOST_TO_DEVICE, self._stream)  # fmt: skip
            self.run_on_device(sync=False)
            self._rt.memcpy_async(self._host_out.ctypes.data, self._dev_out,
                                  self._host_out.nbytes, DEVICE_TO_HOST, self._stream)  # fmt: skip
            self._rt.synchronize(self._stream)
            out.append(self._host_out.reshape(-1)[:n].copy())
        return self.card.calibrate(np.concatenate(out)) if out else np.empty(0, np.float32)

    def load_device(self, x: np.ndarray) -> None:
        """Copy one batch of normalised cutouts to the device input (for benchmarks)."""
        batch, _ = pad_batch(np.ascontiguousarray(x, dtype=np.float32), self.batch_size)
        self._host_in[...] = batch
        self._rt.memcpy_async(self._dev_in, self._host_in.ctypes.data, self._host_in.nbytes,
                              HOST_TO_DEVICE, self._stream)  # fmt: skip
        self._rt.synchronize(self._stream)

    def run_on_device(self, sync: bool = True) -> None:
        """Run the engine on what is in the device input (no host copies)."""
        if not self._context.execute_async_v3(self._stream):
            raise ModelError(f"{self.engine_path.name}: TensorRT execution failed")
        if sync:
            self._rt.synchronize(self._stream)

    def close(self) -> None:
        """Free the device buffers and the stream."""
        if getattr(self, "_stream", None):
            self._rt.synchronize(self._stream)
            self._rt.free(self._dev_in)
            self._rt.free(self._dev_out)
            self._rt.stream_destroy(self._stream)
            self._stream = 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
