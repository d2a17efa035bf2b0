"""The CUDA runtime through ctypes: GPU queries, device and pinned host memory, streams.

The TensorRT scorer needs device buffers and asynchronous copies, and
``engine doctor`` lists the GPUs; neither needs a CUDA Python package or torch.
``libcudart`` comes with the GPU runtimes (``lensfind[gpu]``: the CUDA runtime
wheel beside TensorRT and onnxruntime-gpu) or with a system CUDA. Only what
lensfind uses is wrapped. Every call is checked; a failure is a
:class:`CudaError` naming the call and CUDA's own message.
"""

import ctypes
import ctypes.util
import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from lensfind.errors import LensfindError

#: cudaMemcpyKind
HOST_TO_DEVICE = 1
DEVICE_TO_HOST = 2
_ATTR_CC_MAJOR = 75  # cudaDevAttrComputeCapabilityMajor
_ATTR_CC_MINOR = 76
_PROPS_BYTES = 8192  # larger than any cudaDeviceProp; the name is its first field
_NAMES = ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0")


class CudaError(LensfindError):
    """The CUDA runtime is missing, or one of its calls failed."""


@dataclass(frozen=True)
class GpuInfo:
    """One GPU: what TensorRT engines are specific to.

    Attributes
    ----------
    name : str
        Marketing name, e.g. ``NVIDIA H100 80GB HBM3``.
    compute_capability : str
        ``major.minor``, e.g. ``9.0``.
    memory_mib : int or None
        Total memory, MiB.
    index : int
        CUDA device index.
    """

    name: str
    compute_capability: str
    memory_mib: int | None = None
    index: int = 0

    @property
    def slug(self) -> str:
        """``name`` in lower case with runs of other characters as ``-``."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """GPUs from ``nvidia-smi --query-gpu=index,name,compute_cap,memory.total
    --format=csv,noheader,nounits`` output."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        memory = int(float(parts[3])) if re.fullmatch(r"[0-9.]+", parts[3]) else None
        gpus.append(GpuInfo(parts[1], parts[2], memory, int(parts[0])))
    return gpus


def list_gpus() -> list[GpuInfo]:
    """The GPUs this process can see (``nvidia-smi``, else the CUDA runtime); [] if none."""
    smi = shutil.which("nvidia-smi")
    if smi:
        query = "--query-gpu=index,name,compute_cap,memory.total"
        try:
            out = subprocess.run(
                [smi, query, "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout  # fmt: skip
            gpus = parse_nvidia_smi(out)
            if gpus:
                return gpus
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        rt = cudart()
        return [rt.device(i) for i in range(rt.device_count())]
    except CudaError:
        return []


def _candidates() -> list[str]:
    paths = []
    found = ctypes.util.find_library("cudart")
    if found:
        paths.append(found)
    for root in sys.path:  # the nvidia-cuda-runtime wheels
        paths += sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "libcudart.so*")))
    return [*paths, *_NAMES]


@cache
def cudart() -> "CudaRuntime":
    """The CUDA runtime library, loaded once per process."""
    for path in _candidates():
        try:
            return CudaRuntime(ctypes.CDLL(path), path)
        except OSError:
            continue
    raise CudaError(
        "the CUDA runtime library (libcudart) was not found; install lensfind[gpu] "
        "(or a CUDA toolkit) on a machine with an NVIDIA driver"
    )


class CudaRuntime:
    """Checked calls into ``libcudart`` (see the module docstring)."""

    def __init__(self, lib: Any, path: str) -> None:
        self.lib = lib
        self.path = path
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        lib.cudaGetErrorString.argtypes = [ctypes.c_int]

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            msg = self.lib.cudaGetErrorString(rc)
            raise CudaError(f"{what}: CUDA error {rc} ({(msg or b'?').decode()})")

    def _int(self, fn: str, *args: Any) -> int:
        value = ctypes.c_int()
        self._check(getattr(self.lib, fn)(ctypes.byref(value), *args), fn)
        return value.value

    def device_count(self) -> int:
        """Visible CUDA devices (0 when there is no driver or device)."""
        try:
            return self._int("cudaGetDeviceCount")
        except CudaError:
            return 0

    def runtime_version(self) -> str:
        v = self._int("cudaRuntimeGetVersion")
        return f"{v // 1000}.{v % 1000 // 10}"

    def driver_version(self) -> str | None:
        """The newest CUDA version the installed driver supports (None: no driver)."""
        v = self._int("cudaDriverGetVersion")
        return f"{v // 1000}.{v % 1000 // 10}" if v else None

    def device(self, index: int = 0) -> GpuInfo:
        """Name and compute capability of device ``index``."""
        props = ctypes.create_string_buffer(_PROPS_BYTES)
        # CUDA 12 headers map the name to the _v2 symbol; older runtimes have only the first
        fn = getattr(self.lib, "cudaGetDeviceProperties_v2", None)
        fn = fn or self.lib.cudaGetDeviceProperties
        self._check(fn(props, ctypes.c_int(index)), "cudaGetDeviceProperties")
        name = props.raw[:256].split(b"\0", 1)[0].decode(errors="replace")
        major = self._int("cudaDeviceGetAttribute", ctypes.c_int(_ATTR_CC_MAJOR), index)
        minor = self._int("cudaDeviceGetAttribute", ctypes.c_int(_ATTR_CC_MINOR), index)
        total = ctypes.c_size_t.from_buffer_copy(props.raw[288:296]).value  # totalGlobalMem
        return GpuInfo(name, f"{major}.{minor}", total // 2**20 or None, index)

    def set_device(self, index: int) -> None:
        self._check(self.lib.cudaSetDevice(ctypes.c_int(index)), f"cudaSetDevice({index})")

    def malloc(self, nbytes: int) -> int:
        ptr = ctypes.c_void_p()
        self._check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(nbytes)), "cudaMalloc")
        return int(ptr.value or 0)

    def free(self, ptr: int) -> None:
        self._check(self.lib.cudaFree(ctypes.c_void_p(ptr)), "cudaFree")

    def host_alloc(self, nbytes: int) -> int:
        """Page-locked host memory (fast, asynchronous copies to and from the GPU)."""
        ptr = ctypes.c_void_p()
        rc = self.lib.cudaMallocHost(ctypes.byref(ptr), ctypes.c_size_t(nbytes))
        self._check(rc, "cudaMallocHost")
        return int(ptr.value or 0)

    def free_host(self, ptr: int) -> None:
        self._check(self.lib.cudaFreeHost(ctypes.c_void_p(ptr)), "cudaFreeHost")

    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> None:
        rc = self.lib.cudaMemcpyAsync(ctypes.c_void_p(dst), ctypes.c_void_p(src),
                                      ctypes.c_size_t(nbytes), ctypes.c_int(kind),
                                      ctypes.c_void_p(stream))  # fmt: skip
        self._check(rc, "cudaMemcpyAsync")

    def stream_create(self) -> int:
        stream = ctypes.c_void_p()
        self._check(self.lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return int(stream.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self._check(self.lib.cudaStreamDestroy(ctypes.c_void_p(stream)), "cudaStreamDestroy")

    def synchronize(self, stream: int) -> None:
        rc = self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream))
        self._check(rc, "cudaStreamSynchronize")


class HostBuffer:
    """Host memory at ``address`` seen by numpy, released by ``free`` once unreferenced.

    ``np.asarray(buffer)`` (and every view of it) keeps the buffer alive, so the
    memory is freed only after the last array using it is gone.
    """

    def __init__(
        self, address: int, shape: tuple[int, ...], dtype: Any, free: Callable[[int], None]
    ) -> None:
        self.address = address
        self._free: Callable[[int], None] | None = free
        self.__array_interface__ = {
            "shape": tuple(shape),
            "typestr": np.dtype(dtype).str,
            "data": (address, False),
            "version": 3,
        }

    def __del__(self) -> None:
        if self._free is not None:
            free, self._free = self._free, None
            try:
                free(self.address)
            except Exception:  # interpreter shutdown: the process frees it anyway
                pass


def pinned_array(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised array in page-locked host memory (needs a CUDA driver)."""
    rt = cudart()
    nbytes = max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)
    return np.asarray(HostBuffer(rt.host_alloc(nbytes), shape, dtype, rt.free_host))
