"""lensfind.runtime.scorer: execution-provider choice, session settings and IO binding."""

import gc

import numpy as np
import onnxruntime
import pytest

from lensfind.engine.config import build_config
from lensfind.errors import ConfigError
from lensfind.runtime.card import load_card
from lensfind.runtime.cuda import GpuInfo, HostBuffer, parse_nvidia_smi
from lensfind.runtime.scorer import (
    EXECUTION_PROVIDERS,
    OnnxScorer,
    ProviderError,
    SessionSettings,
    provider_chain,
    resolve_provider,
)

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
HAS_CUDA = CUDA in onnxruntime.get_available_providers()


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ([CPU], "cpu"),
        (["AzureExecutionProvider", CPU], "cpu"),
        ([CUDA, CPU], "cuda"),
        ([TRT, CUDA, CPU], "tensorrt"),
        ([CPU, CUDA, TRT], "tensorrt"),  # order of the list does not matter
    ],
)
def test_auto_picks_the_best_available(available, expected):
    assert resolve_provider("auto", available) == expected


@pytest.mark.parametrize("requested", ["cpu", "cuda", "tensorrt"])
def test_a_named_available_provider_is_itself(requested):
    assert resolve_provider(requested, [TRT, CUDA, CPU]) == requested


def test_cuda_on_a_cpu_only_onnxruntime_is_one_line_naming_both():
    with pytest.raises(ProviderError) as info:
        resolve_provider("cuda", [CPU])
    assert str(info.value) == (
        "provider 'cuda' requested but onnxruntime has ['CPUExecutionProvider']; "
        "install lensfind[gpu]"
    )


def test_tensorrt_without_its_provider_is_an_error_even_with_cuda():
    with pytest.raises(ProviderError, match=r"provider 'tensorrt' requested .*'CUDAExecution"):
        resolve_provider("tensorrt", [CUDA, CPU])


def test_unknown_provider_is_a_config_error():
    with pytest.raises(ConfigError, match="auto, cpu, cuda, tensorrt"):
        resolve_provider("gpu", [CPU])


def test_provider_chain_falls_back_only_node_by_node():
    assert provider_chain("cpu") == [CPU]
    assert provider_chain("cuda") == [CUDA, CPU]
    assert provider_chain("tensorrt") == [TRT, CUDA, CPU]
    assert set(EXECUTION_PROVIDERS.values()) == {CPU, CUDA, TRT}


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA")
def test_scorer_refuses_cuda_here(model_dir):
    with pytest.raises(ProviderError, match="provider 'cuda' requested but onnxruntime has"):
        OnnxScorer(model_dir, provider="cuda")


def test_scorer_refuses_a_session_that_did_not_get_the_provider(model_dir, monkeypatch):
    """onnxruntime may create a session on the CPU when the CUDA libraries fail to load."""
    real = onnxruntime.InferenceSession

    def cpu_only_session(path, sess_options=None, providers=None, provider_options=None):
        assert providers == [CUDA, CPU]
        return real(path, sess_options=sess_options, providers=[CPU])

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(onnxruntime, "InferenceSession", cpu_only_session)
    with pytest.raises(ProviderError, match=r"session for model.onnx runs on \['CPUExec"):
        OnnxScorer(model_dir, provider="cuda")


def test_auto_on_this_machine_scores_like_cpu(model_dir):
    x = np.random.default_rng(0).normal(0, 10, (5, 4, 100, 100)).astype(np.float32)
    auto = OnnxScorer(model_dir, provider="auto")
    assert auto.provider == resolve_provider("auto")
    np.testing.assert_allclose(auto(x), OnnxScorer(model_dir, provider="cpu")(x), atol=1e-6)


def test_io_binding_gives_the_plain_results_and_fresh_arrays(model_dir):
    rng = np.random.default_rng(1)
    plain = OnnxScorer(model_dir, settings=SessionSettings(io_binding=False))
    bound = OnnxScorer(model_dir, settings=SessionSettings(io_binding=True))
    assert bound.io_binding and not plain.io_binding
    for n in (7, 3, 7, 1):  # reused and new buffer sizes
        x = rng.normal(0, 10, (n, 4, 100, 100)).astype(np.float32)
        first = bound(x)
        np.testing.assert_allclose(first, plain(x), rtol=1e-6, atol=1e-7)
        kept = first.copy()
        bound(rng.normal(0, 10, (n, 4, 100, 100)).astype(np.float32))
        np.testing.assert_array_equal(first, kept)  # not a view of a reused buffer


def test_session_settings_apply_and_validate(model_dir):
    x = np.random.default_rng(2).normal(0, 10, (4, 4, 100, 100)).astype(np.float32)
    none = OnnxScorer(model_dir, settings=SessionSettings(graph_optimization="disable"))
    np.testing.assert_allclose(none(x), OnnxScorer(model_dir)(x), rtol=1e-5, atol=1e-6)
    two = OnnxScorer(model_dir, threads=2, settings=SessionSettings(threads=1))
    assert two.settings.threads == 2
    with pytest.raises(ConfigError, match="graph_optimization"):
        SessionSettings(graph_optimization="max")
    with pytest.raises(ConfigError, match="batch_size"):
        SessionSettings(batch_size=0)


def test_session_settings_from_the_environment():
    env = {"LENSFIND_ORT__THREADS": "3", "LENSFIND_ORT__IO_BINDING": "on"}
    settings = build_config(SessionSettings, {"batch_size": 64}, env)
    assert settings == SessionSettings(threads=3, io_binding=True, batch_size=64)
    with pytest.raises(ConfigError, match="LENSFIND_ORT__THREAD: unknown setting"):
        build_config(SessionSettings, {}, {"LENSFIND_ORT__THREAD": "3"})


def test_scorer_card_is_the_loaded_card(model_dir):
    assert OnnxScorer(load_card(model_dir)).card.sha256 == load_card(model_dir).sha256


def test_host_buffer_is_freed_after_its_last_view():
    import ctypes

    memory = (ctypes.c_float * 12)()
    freed: list[int] = []
    buf = HostBuffer(ctypes.addressof(memory), (3, 4), np.float32, freed.append)
    arr = np.asarray(buf)
    view = arr[1:]
    arr[...] = 5.0
    assert memory[11] == 5.0  # the array is that memory
    del buf, arr
    gc.collect()
    assert freed == []
    del view
    gc.collect()
    assert freed == [ctypes.addressof(memory)]


def test_parse_nvidia_smi():
    text = "0, NVIDIA H100 80GB HBM3, 9.0, 81559\n1, NVIDIA A100-SXM4-40GB, 8.0, [N/A]\n\n"
    gpus = parse_nvidia_smi(text)
    assert gpus == [
        GpuInfo("NVIDIA H100 80GB HBM3", "9.0", 81559, 0),
        GpuInfo("NVIDIA A100-SXM4-40GB", "8.0", None, 1),
    ]
    assert gpus[0].slug == "nvidia-h100-80gb-hbm3"
    assert parse_nvidia_smi("No devices were found") == []


@pytest.mark.gpu
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_matches_cpu(model_dir, provider):
    x = np.random.default_rng(3).normal(0, 10, (300, 4, 100, 100)).astype(np.float32)
    gpu = OnnxScorer(model_dir, provider=provider, settings=SessionSettings(batch_size=128))
    assert gpu.io_binding
    assert gpu.session.get_providers()[0] == EXECUTION_PROVIDERS[provider]
    np.testing.assert_allclose(gpu(x), OnnxScorer(model_dir)(x), atol=1e-4)


@pytest.mark.gpu
def test_gpu_provider_on_the_shipped_model():
    from lensfind.runtime.shipped import resolve_model

    card = resolve_model("des_y3", "des_y3")
    x = np.random.default_rng(4).normal(0, 20, (64, 4, 100, 100)).astype(np.float32)
    np.testing.assert_allclose(OnnxScorer(card, provider="cuda")(x), OnnxScorer(card)(x), atol=1e-4)
