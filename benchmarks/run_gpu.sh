#!/usr/bin/env bash
# The GPU benchmarks and GPU tests in one command, from the repository root on a machine with
# an NVIDIA GPU and driver (no internet needed beyond the package index):
#   bash benchmarks/run_gpu.sh [RESULTS_DIR]
# Installs lensfind with the gpu, train (torch eager, onnx) and test extras into the current
# Python environment, makes onnxruntime-gpu own the `onnxruntime` module (the CPU wheel that
# lensfind depends on installs the same module), then runs doctor, the model and data-path
# benchmarks and the `gpu`-marked tests. Results go to RESULTS_DIR (default benchmarks/results).
set -euo pipefail
cd "$(dirname "$0")/.."
results="${1:-benchmarks/results}"
python -m pip install -q -e '.[gpu,train,test]'
ort_gpu="$(python -c 'from importlib.metadata import version; print(version("onnxruntime-gpu"))')"
python -m pip uninstall -y -q onnxruntime
python -m pip install -q --no-deps --force-reinstall "onnxruntime-gpu==${ort_gpu}"
# onnxruntime's TensorRT provider loads libnvinfer from the library path (the tensorrt wheel's)
trt_libs="$(python -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))' \
  2>/dev/null || true)"
export LD_LIBRARY_PATH="${trt_libs}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
engine doctor
engine bench models --provider all --quiet --results "$results"
engine bench models --provider cuda,tensorrt --quiet --arch ou66 --arch ou200 --arch jacobs_des \
  --arch resnet18_1band --model des_y3 --results "$results/seed-archs"
engine bench datapath --quiet --results "$results"
# the 10^9 projection with GPU-hours from the model rates just measured
models_json="$(ls -t "$results"/*-models.json | head -n 1)"
engine bench score --sizes 10000,100000 --gpu-rates "$models_json" --quiet --results "$results"
python -m pytest -m gpu -q tests/export tests/engine/test_bench_models.py
