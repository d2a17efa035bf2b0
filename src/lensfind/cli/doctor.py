"""``engine doctor``: versions, execution providers, GPUs and shipped models."""

import argparse
from typing import Any

from lensfind import __version__
from lensfind.cli.flags import add_command


def _cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    import onnxruntime

    from lensfind.runtime.cuda import CudaError, cudart, list_gpus
    from lensfind.runtime.scorer import EXECUTION_PROVIDERS, resolve_provider
    from lensfind.runtime.shipped import shipped_models
    from lensfind.versions import package_version, versions

    print(f"lensfind {__version__}, Python {platform.python_version()} on {platform.platform()}")
    for pkg, version in versions().items():
        if pkg not in ("lensfind", "python"):
            print(f"  {pkg:12s} {version}")
    gpu_wheel = package_version("onnxruntime-gpu")
    print(f"  {'':12s} onnxruntime build: {onnxruntime.get_device()}"
          f"{f' (onnxruntime-gpu {gpu_wheel})' if gpu_wheel else ''}")  # fmt: skip
    try:
        from lensfind.training._torch import torch

        print(f"  {'':12s} torch CUDA build: {torch.version.cuda or 'none'}, "
              f"devices visible to torch: {torch.cuda.device_count()}")  # fmt: skip
    except ImportError:
        pass
    try:
        rt = cudart()
        driver = rt.driver_version()
        print(f"CUDA: runtime {rt.runtime_version()} ({rt.path}), driver {driver or 'none'}")
    except CudaError:
        print("CUDA: no CUDA runtime library (libcudart) found")
    providers = onnxruntime.get_available_providers()
    print(f"ONNX Runtime providers: {', '.join(providers)}")
    gpus = list_gpus()
    print("GPUs: " + ("; ".join(f"{g.index}: {g.name} (compute capability "
                               f"{g.compute_capability}, {g.memory_mib} MiB)" for g in gpus)
                     or "none found"))  # fmt: skip
    auto = resolve_provider("auto", providers)
    if auto == "cpu":
        missing = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                   if p not in providers]  # fmt: skip
        print(f"GPU scoring path: not used; --provider auto -> cpu (onnxruntime lacks "
              f"{', '.join(missing)}; install lensfind[gpu])")  # fmt: skip
    else:
        note = "" if gpus else "; WARNING: no GPU found, sessions will fail to start on it"
        print(f"GPU scoring path: used; --provider auto -> {auto} "
              f"({EXECUTION_PROVIDERS[auto]}){note}")  # fmt: skip
    trt = package_version("tensorrt") or package_version("tensorrt-cu12")
    native = "available" if trt and gpus else "not available"
    why = "" if trt and gpus else (" (no GPU)" if trt else " (tensorrt not installed)")
    print(f"native TensorRT scorer: {native}{why}")
    print(f"shipped models: {', '.join(shipped_models()) or 'none'}")
    return 0


def add_doctor_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the doctor command(s) to the ``engine`` subparsers."""
    s = add_command(sub, "doctor", common, "versions, providers, GPU",
                    examples=["engine doctor"])  # fmt: skip
    s.set_defaults(func=_cmd_doctor)
