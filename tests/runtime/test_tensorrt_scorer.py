"""lensfind.runtime.tensorrt_scorer: engine cache keys, stale-engine refusal, batch padding.

The key, cache and padding logic is pure and tested here on the CPU with a fake
GPU description; building and running engines needs a GPU (``pytest -m gpu``).
"""

import importlib.util
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lensfind.errors import MissingExtraError, ModelError
from lensfind.runtime.card import load_card
from lensfind.runtime.cuda import GpuInfo
from lensfind.runtime.tensorrt_scorer import (
    Profile,
    StaleEngineError,
    TensorRTScorer,
    check_cached_engine,
    engine_key,
    engine_paths,
    graph_for_precision,
    pad_batch,
    write_cached_engine,
)

H100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
A100 = GpuInfo("NVIDIA A100-SXM4-40GB", "8.0")
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _key(**change):
    args = {"model_sha256": "ab" * 32, "graph_sha256": "cd" * 32, "tensorrt_version": "10.13.0",
            "gpu": H100, "precision": "fp16", "profile": Profile.for_batch(256),
            "input_shape": (4, 100, 100)}  # fmt: skip
    args.update(change)
    return engine_key(**args)


def test_key_holds_everything_an_engine_depends_on():
    key = _key()
    assert key == {
        "model_sha256": "ab" * 32, "graph_sha256": "cd" * 32, "tensorrt_version": "10.13.0",
        "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "precision": "fp16",
        "profile": {"min": 1, "opt": 256, "max": 256}, "input_shape": [4, 100, 100],
    }  # fmt: skip
    json.dumps(key)  # the sidecar stores it as JSON


def test_profile_is_one_to_batch():
    assert Profile.for_batch(64) == Profile(1, 64, 64)
    with pytest.raises(ValueError, match="batch_size"):
        Profile.for_batch(0)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        _key(precision="int4")


def test_paths_separate_models_precisions_batches_and_gpus(tmp_path):
    engine, sidecar = engine_paths(tmp_path, _key())
    assert engine.parent == tmp_path and engine.suffix == ".engine"
    assert sidecar == engine.with_suffix(".json")
    assert "fp16" in engine.name and "b256" in engine.name and "sm90" in engine.name
    others = [_key(precision="fp32"), _key(profile=Profile.for_batch(64)), _key(gpu=A100),
              _key(model_sha256="ef" * 32)]  # fmt: skip
    assert len({engine_paths(tmp_path, k)[0] for k in [_key(), *others]}) == 5
    # a TensorRT upgrade maps to the same file: found, then refused as stale
    assert engine_paths(tmp_path, _key(tensorrt_version="11.4.0"))[0] == engine


def test_cache_round_trip(tmp_path):
    key = _key()
    engine, sidecar = engine_paths(tmp_path / "tensorrt", key)
    assert check_cached_engine(engine, sidecar, key) is False  # nothing cached
    write_cached_engine(engine, sidecar, key, b"serialized engine")
    assert engine.read_bytes() == b"serialized engine"
    assert json.loads(sidecar.read_text())["key"] == key
    assert check_cached_engine(engine, sidecar, key) is True
    assert sorted(p.name for p in engine.parent.iterdir()) == sorted([engine.name, sidecar.name])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"tensorrt_version": "11.4.0"}, "tensorrt_version '10.13.0' != '11.4.0'"),
        ({"graph_sha256": "00" * 32}, "graph_sha256"),
        ({"gpu": GpuInfo("NVIDIA H100 80GB HBM3", "9.1")}, None),  # another file
        ({"gpu": GpuInfo("NVIDIA H100 PCIe", "9.0")}, None),
    ],
)
def test_a_stale_entry_is_refused_naming_what_changed(tmp_path, change, named):
    old = _key()
    engine, sidecar = engine_paths(tmp_path, old)
    write_cached_engine(engine, sidecar, old, b"old engine")
    new = _key(**change)
    new_engine, new_sidecar = engine_paths(tmp_path, new)
    if named is None:  # another GPU: its own file, never the other GPU's engine
        assert new_engine != engine
        assert check_cached_engine(new_engine, new_sidecar, new) is False
        return
    with pytest.raises(StaleEngineError, match="stale TensorRT engine") as info:
        check_cached_engine(new_engine, new_sidecar, new)
    assert named in str(info.value)


def test_a_sidecar_whose_gpu_differs_is_refused(tmp_path):
    """Same file name, other GPU in the sidecar (e.g. copied between nodes): refused."""
    key = _key()
    engine, sidecar = engine_paths(tmp_path, key)
    write_cached_engine(engine, sidecar, _key(gpu=GpuInfo("NVIDIA H100 80GB HBM3", "8.0")), b"x")
    with pytest.raises(StaleEngineError, match=r"compute_capability '8\.0' != '9\.0'"):
        check_cached_engine(engine, sidecar, key)


def test_a_changed_engine_or_missing_sidecar_is_refused(tmp_path):
    key = _key()
    engine, sidecar = engine_paths(tmp_path, key)
    write_cached_engine(engine, sidecar, key, b"engine bytes")
    engine.write_bytes(b"engine byte")  # truncated
    with pytest.raises(StaleEngineError, match="do not match"):
        check_cached_engine(engine, sidecar, key)
    sidecar.unlink()
    with pytest.raises(StaleEngineError, match="no readable sidecar"):
        check_cached_engine(engine, sidecar, key)
    sidecar.write_text("{not json")
    with pytest.raises(StaleEngineError, match="no readable sidecar"):
        check_cached_engine(engine, sidecar, key)


def test_partial_batch_is_padded_to_the_profile_batch():
    x = np.arange(3 * 2 * 2 * 2, dtype=np.float32).reshape(3, 2, 2, 2) + 1
    padded, n = pad_batch(x, 8)
    assert n == 3 and padded.shape == (8, 2, 2, 2) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:3], x)
    assert not padded[3:].any()
    full, n = pad_batch(x, 3)
    assert full is x and n == 3  # a full batch is not copied
    with pytest.raises(ValueError, match="4 rows do not fit a batch of 3"):
        pad_batch(np.zeros((4, 1), np.float32), 3)


@given(n=st.integers(0, 40), batch=st.integers(1, 40))
def test_padding_keeps_rows_and_order(n, batch):
    if n > batch:
        return
    x = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
    padded, k = pad_batch(x, batch)
    assert k == n and len(padded) == batch
    np.testing.assert_array_equal(padded[:n], x)


def test_graph_for_precision(model_dir):
    import onnx

    card = load_card(model_dir)
    assert graph_for_precision(card, "fp32") == card.onnx_path.read_bytes()
    fp16 = onnx.load_from_string(graph_for_precision(card, "fp16"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16.graph.initializer)
    with pytest.raises(ModelError, match="int8 engine needs a model directory in int8"):
        graph_for_precision(card, "int8")


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed")
def test_missing_tensorrt_names_the_extra(model_dir):
    with pytest.raises(MissingExtraError, match=r"pip install 'lensfind\[gpu\]'"):
        TensorRTScorer(model_dir)


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("fp16", 1e-2)])
def test_tensorrt_matches_onnxruntime_and_reuses_its_engine(tmp_path, precision, atol):
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.runtime.shipped import resolve_model

    card = resolve_model("des_y3", "des_y3")
    x = np.random.default_rng(0).normal(0, 20, (70, 4, 100, 100)).astype(np.float32)
    first = TensorRTScorer(card, precision, batch_size=32, cache_root=tmp_path)
    assert first.built
    p = first(x)  # 32 + 32 + a padded 6
    assert p.shape == (70,)
    np.testing.assert_allclose(p, OnnxScorer(card)(x), atol=atol)
    again = TensorRTScorer(card, precision, batch_size=32, cache_root=tmp_path)
    assert not again.built and again.engine_path == first.engine_path
    np.testing.assert_array_equal(again(x), p)
    first.close()
    again.close()


@pytest.mark.gpu
def test_tensorrt_rebuilds_or_refuses_a_stale_engine(tmp_path):
    from lensfind.runtime.shipped import resolve_model

    card = resolve_model("des_y3", "des_y3")
    scorer = TensorRTScorer(card, "fp32", batch_size=8, cache_root=tmp_path)
    sidecar = scorer.engine_path.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["key"]["tensorrt_version"] = "0.0.0"
    sidecar.write_text(json.dumps(record))
    with pytest.raises(StaleEngineError, match=r"tensorrt_version '0\.0\.0'"):
        TensorRTScorer(card, "fp32", batch_size=8, cache_root=tmp_path, rebuild_stale=False)
    assert TensorRTScorer(card, "fp32", batch_size=8, cache_root=tmp_path).built
