"""Every registry architecture exports to ONNX and scores like torch on fixed inputs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lensfind.export.onnx_export import export_probability_graph  # noqa: E402
from lensfind.training.architectures import ARCHITECTURES, build_model  # noqa: E402

#: fp32 torch CPU vs ONNX Runtime CPU, in probability
ATOL = 1e-5


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_onnx_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    info = ARCHITECTURES[name]
    shape = (len(info.bands), info.size_px, info.size_px)
    model = build_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    wrapped = export_probability_graph(model, shape, path)
    x = np.random.default_rng(1).normal(0, 1, (3, *shape)).astype(np.float32)
    with torch.inference_mode():
        ref = wrapped(torch.from_numpy(x)).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"cutouts": x})
    assert got.shape == (3,)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=ATOL)
