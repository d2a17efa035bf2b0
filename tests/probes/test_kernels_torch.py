"""The torch kernels against the numba kernels, on CPU and (marked gpu) on CUDA.

Products and copies are exact; sums (blur, rotation) agree to ``rtol=1e-5``,
``atol=1e-5 * max|x|``; noise to ``rtol=1e-6`` (its band standard deviation is
summed in a different order).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lensfind.probes import kernels as nk

torch = pytest.importorskip("torch")
tk = pytest.importorskip("lensfind.probes.kernels_torch")

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ],
    ),
]
SKY = np.array([1.5, 0.5, 2.0])


def batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = shape[2:]
    yy, xx = np.mgrid[:h, :w]
    blob = 200.0 * np.exp(-((yy - h // 2) ** 2 + (xx - w // 2) ** 2) / 18.0)
    return (rng.normal(0.0, 3.0, shape) + blob).astype(np.float32)


def close(actual: np.ndarray, desired: np.ndarray) -> None:
    scale = float(np.abs(desired).max()) if desired.size else 1.0
    assert_allclose(actual, desired, rtol=1e-5, atol=1e-5 * scale)


CASES = [  # (name, torch call, numba call, comparison)
    ("colour", lambda k, x: k.colour_jitter(x, 0.4, 3), assert_array_equal),
    ("flux", lambda k, x: k.flux_scale(x, 1.7), assert_array_equal),
    ("blur", lambda k, x: k.gaussian_blur(x, 1.5), close),
    ("blur-wide", lambda k, x: k.gaussian_blur(x, 30.0), close),
    ("noise", lambda k, x: k.gaussian_noise(x, 12.5, 3),
     lambda a, d: assert_allclose(a, d, rtol=1e-6, atol=1e-4)),
    ("annulus", lambda k, x: k.occlude_annulus(x, 4.0, 5.0), assert_array_equal),
    ("annulus-sky", lambda k, x: k.occlude_annulus(x, 4.0, 3.0, "sky", SKY, 3),
     assert_array_equal),
    ("disk", lambda k, x: k.occlude_disk(x, 7.5), assert_array_equal),
    ("disk-sky", lambda k, x: k.occlude_disk(x, 7.5, "sky", SKY, 3), assert_array_equal),
    ("rotation", lambda k, x: k.rotate(x, 33.0), close),
    ("rotation-90", lambda k, x: k.rotate(x, 90.0), close),
]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(3, 3, 24, 21), (1, 3, 100, 100), (0, 3, 9, 9)])
@pytest.mark.parametrize("name, call, compare", CASES, ids=[c[0] for c in CASES])
def test_torch_kernels_match_the_numba_kernels(device, shape, name, call, compare):
    x = batch(shape)
    xt = torch.from_numpy(x.copy()).to(device)
    out = call(tk, xt)
    assert out.device.type == device and out.dtype == torch.float32
    assert tuple(out.shape) == shape
    compare(out.cpu().numpy(), call(nk, x))
    assert_array_equal(xt.cpu().numpy(), x)  # input untouched


@pytest.mark.parametrize("device", DEVICES)
def test_torch_identity_strengths_and_errors(device):
    xt = torch.from_numpy(batch((2, 3, 11, 11))).to(device)
    outs = [tk.colour_jitter(xt, 0.0, 1), tk.gaussian_blur(xt, 0.0), tk.gaussian_noise(xt, 0.0, 1),
            tk.occlude_disk(xt, 0.0), tk.rotate(xt, 360.0)]  # fmt: skip
    for out in outs:
        assert torch.equal(out, xt) and out.data_ptr() != xt.data_ptr()
    with pytest.raises(ValueError, match="'zero', 'sky'"):
        tk.occlude_disk(xt, 3.0, fill="mean")
    with pytest.raises(ValueError, match="needs sky_sigma"):
        tk.occlude_annulus(xt, 3.0, fill="sky")
