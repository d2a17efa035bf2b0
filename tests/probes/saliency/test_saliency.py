"""lensfind.probes.saliency maps: occlusion, Grad-CAM, guided backprop, Guided Grad-CAM.

Tiny hand-built models with known answers; Captum's Occlusion as an independent
reference for the numpy occlusion maps; every method leaves the model unchanged and
gives the same maps batched and one image at a time.
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.testing import assert_allclose  # noqa: E402
from torch import nn  # noqa: E402

from lensfind.errors import ConfigError, ModelError  # noqa: E402
from lensfind.probes import saliency  # noqa: E402
from lensfind.probes.saliency import (  # noqa: E402
    METHODS,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    occlusion_map,
)
from lensfind.probes.saliency.occlusion import patch_starts  # noqa: E402
from lensfind.training.architectures import build_model  # noqa: E402

B, H, W = 3, 12, 12


def _images(n: int, seed: int = 0, shape: tuple[int, ...] = (B, H, W)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


class Linear(nn.Module):
    """z = sum(w * x) + b."""

    def __init__(self, shape: tuple[int, ...] = (B, H, W)) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(1, 2, 3)) + self.b


class TwoLayer(nn.Module):
    """z = v . relu(W x + c) + d, the ReLU a module (optionally in place) or functional."""

    def __init__(self, hidden: int = 16, inplace: bool = False, functional: bool = False):
        super().__init__()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(B * H * W, hidden)
        self.act = nn.ReLU(inplace=inplace)
        self.fc2 = nn.Linear(hidden, 1)
        self.functional = functional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.flat(x))
        h = torch.relu(h) if self.functional else self.act(h)
        return self.fc2(h).squeeze(-1)


class CamNet(nn.Module):
    """1x1 identity conv -> global average pool -> linear: CAM = sum_k w_k x_k / (H W)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(B, B, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(B)[:, :, None, None])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(B, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.conv(x)))).squeeze(-1)


class SmallCNN(nn.Module):
    """conv-BN-ReLU-pool-conv-ReLU-dropout-linear: a model with every kind of state."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(B, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 5, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(5 * 6 * 6, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


@pytest.fixture
def small() -> SmallCNN:
    torch.manual_seed(1)
    model = SmallCNN()
    with torch.no_grad():  # non-trivial batch-norm statistics
        model.features[1].running_mean.uniform_(-0.5, 0.5)
        model.features[1].running_var.uniform_(0.5, 2.0)
    return model


# --- occlusion -----------------------------------------------------------------


def _region_score(x: np.ndarray) -> np.ndarray:
    """A 'probability' that looks only at band 0, rows 4-5, columns 4-5."""
    return 0.5 + 0.01 * x[:, 0, 4:6, 4:6].sum(axis=(1, 2))


def _brute_occlusion(score, x, patch, stride, fill=0.0):
    """One forward pass per object and position: the definition, written plainly."""
    n, _, h, w = x.shape
    total, count = np.zeros((n, h, w)), np.zeros((h, w))
    for y0 in patch_starts(h, patch, stride):
        for x0 in patch_starts(w, patch, stride):
            occluded = x.copy()
            occluded[:, :, y0 : y0 + patch, x0 : x0 + patch] = fill
            drop = score(x) - score(occluded)
            total[:, y0 : y0 + patch, x0 : x0 + patch] += drop[:, None, None]
            count[y0 : y0 + patch, x0 : x0 + patch] += 1
    return total / count


def test_patch_starts_cover_every_pixel():
    assert patch_starts(12, 4, 4) == [0, 4, 8]
    assert patch_starts(10, 4, 4) == [0, 4, 6]
    assert patch_starts(5, 1, 1) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="patch_px"):
        patch_starts(3, 4, 4)
    with pytest.raises(ConfigError):
        patch_starts(8, 4, 0)


def test_occlusion_of_a_one_region_model_is_exact():
    x = np.abs(_images(2))
    m = occlusion_map(_region_score, x)  # paper default: 4x4 patches every 4 px
    assert m.shape == (2, H, W) and m.dtype == np.float32
    expected = 0.01 * x[:, 0, 4:6, 4:6].sum(axis=(1, 2))
    # exact up to the float32 rounding of scores near 0.5 (ulp 6e-8)
    assert_allclose(m[:, 4:8, 4:8], np.broadcast_to(expected[:, None, None], (2, 4, 4)), atol=1e-7)
    outside = np.ones((H, W), bool)
    outside[4:8, 4:8] = False
    assert np.all(m[:, outside] == 0.0)


@pytest.mark.parametrize(("patch", "stride"), [(4, 2), (4, 4), (1, 1), (5, 3)])
def test_occlusion_matches_brute_force(patch, stride):
    x = _images(3)
    m = occlusion_map(_region_score, x, patch_px=patch, stride_px=stride, fill=0.7)
    ref = _brute_occlusion(_region_score, x, patch, stride, fill=0.7)
    assert_allclose(m, ref, rtol=1e-5, atol=1e-7)
    assert np.all(m[:, 10:, :] == 0.0)  # no patch covering rows >= 10 touches the region


def test_pixels_between_sparse_patches_are_nan():
    x = _images(1)
    m = occlusion_map(_region_score, x, patch_px=3, stride_px=4)  # rows 3, 7 never occluded
    assert np.isnan(m[0, [3, 7], :]).all() and np.isnan(m[0, :, [3, 7]]).all()
    assert np.isfinite(m[0, [0, 4, 8, 11], :][:, [0, 4, 8, 11]]).all()


def test_occlusion_is_batched_not_per_position():
    x = _images(5)
    sizes: list[int] = []

    def score(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return _region_score(batch)

    m = occlusion_map(score, x, patch_px=2, stride_px=2, batch_size=64)
    positions = 6 * 6
    assert max(sizes) <= 64
    assert len(sizes) == 1 + -(-5 * positions // 64)  # unoccluded + occluded batches
    assert sum(sizes) == 5 + 5 * positions
    for bs in (1, 7):
        assert_allclose(occlusion_map(_region_score, x, 2, 2, batch_size=bs), m, rtol=1e-6)
    single = np.concatenate([occlusion_map(_region_score, x[i : i + 1], 2, 2) for i in range(5)])
    assert_allclose(single, m, rtol=1e-6)


def test_occlusion_of_torch_model_matches_captum_occlusion(small):
    from captum.attr import Occlusion

    x = _images(2, seed=3)
    m = occlusion_map(small, x, patch_px=4, stride_px=2, batch_size=16)
    small.eval()
    ref = Occlusion(lambda t: torch.sigmoid(small(t))).attribute(
        torch.from_numpy(x), sliding_window_shapes=(B, 4, 4), strides=(B, 2, 2), baselines=0.0
    )
    assert_allclose(m, ref[:, 0].detach().numpy(), rtol=1e-4, atol=1e-7)


def test_occlusion_of_the_shipped_onnx_scorer():
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.runtime.shipped import resolve_model

    scorer = OnnxScorer(resolve_model(None, "des_y3"))
    cutouts = np.random.default_rng(0).normal(0, 10, (1, 4, 100, 100)).astype(np.float32)
    m = occlusion_map(scorer, cutouts, patch_px=50, stride_px=50)
    occluded = cutouts.copy()
    occluded[:, :, 50:, :50] = 0.0
    drop = scorer(cutouts)[0] - scorer(occluded)[0]
    assert m.shape == (1, 100, 100)
    assert_allclose(m[0, 50:, :50], drop, rtol=1e-5, atol=1e-7)


def test_import_and_occlusion_need_no_torch():
    code = (
        "import sys, numpy as np\n"
        "from lensfind.probes.saliency import occlusion_map\n"
        "m = occlusion_map(lambda b: b.mean(axis=(1, 2, 3)), np.ones((1, 2, 8, 8), 'f4'))\n"
        "assert m.shape == (1, 8, 8)\n"
        "heavy = {'torch', 'captum', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_occlusion_rejects_bad_inputs():
    with pytest.raises(ConfigError, match="images"):
        occlusion_map(_region_score, np.zeros((H, W), np.float32))
    with pytest.raises(ConfigError, match="scores"):
        occlusion_map(lambda b: np.zeros(len(b) + 1), _images(1))
    with pytest.raises(ConfigError, match="callable"):
        occlusion_map(42, _images(1))


# --- gradient methods ------------------------------------------------------------


def test_guided_backprop_of_a_linear_model_is_its_weights():
    torch.manual_seed(0)
    model = Linear()
    x = _images(2)
    w = model.w.detach().numpy()
    assert_allclose(guided_backprop(model, x), np.broadcast_to(w, x.shape), rtol=1e-6)
    assert_allclose(guided_backprop(model, x, target="non-lens"), -np.broadcast_to(w, x.shape))


@pytest.mark.parametrize("inplace", [False, True])
def test_guided_backprop_of_a_relu_net_is_known(inplace):
    torch.manual_seed(0)
    model = TwoLayer(inplace=inplace)
    x = _images(4)
    gb = guided_backprop(model, x)
    w1 = model.fc1.weight.detach().numpy()
    v = model.fc2.weight.detach().numpy()[0]
    h = x.reshape(4, -1) @ w1.T + model.fc1.bias.detach().numpy()
    # backward through ReLU: gradient kept where the unit is on AND the gradient is > 0
    expected = ((h > 0) * np.maximum(v, 0.0)) @ w1
    assert_allclose(gb, expected.reshape(x.shape), rtol=1e-5, atol=1e-6)
    plain = ((h > 0) * v) @ w1  # the ordinary gradient differs where v < 0
    assert not np.allclose(gb, plain.reshape(x.shape))


def test_guided_backprop_refuses_functional_relu():
    model = TwoLayer(functional=True)
    with pytest.raises(ModelError, match=r"nn\.ReLU"):
        guided_backprop(model, _images(1))
    with pytest.raises(ModelError, match=r"nn\.ReLU"):
        guided_grad_cam(nn.Sequential(nn.Conv2d(B, 2, 1), _FunctionalHead()), _images(1))


class _FunctionalHead(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(x).mean(dim=(1, 2, 3))


def test_grad_cam_of_a_class_activation_net_is_known():
    torch.manual_seed(0)
    model = CamNet()
    x = _images(3)
    w = model.fc.weight.detach().numpy()[0]
    weighted = np.einsum("k,nkhw->nhw", w, x) / (H * W)
    assert_allclose(grad_cam(model, x), np.maximum(weighted, 0), rtol=1e-5, atol=1e-8)
    assert_allclose(grad_cam(model, x, target="non-lens"), np.maximum(-weighted, 0), atol=1e-8)
    assert_allclose(grad_cam(model, x, layer="conv"), grad_cam(model, x, layer=model.conv))


def test_grad_cam_uses_the_last_conv_relu_then_upsamples(small):
    x = _images(2)
    cam = grad_cam(small, x)
    assert cam.shape == (2, H, W)
    small.eval()
    t = torch.from_numpy(x)
    a = small.features[:5](t).detach().requires_grad_(True)  # output of the last Conv2d
    z = small.head(small.features[5](a)).squeeze(-1)
    (g,) = torch.autograd.grad(z.sum(), a)
    low = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True))
    ref = torch.nn.functional.interpolate(low, size=(H, W), mode="bilinear")[:, 0]
    assert_allclose(cam, ref.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert_allclose(grad_cam(small, x, layer="features.4"), cam)
    assert not np.allclose(grad_cam(small, x, layer="features.0"), cam)


def test_guided_grad_cam_is_guided_backprop_times_grad_cam(small):
    x = _images(2)
    ggc = guided_grad_cam(small, x)
    expected = guided_backprop(small, x) * grad_cam(small, x)[:, None]
    assert ggc.shape == x.shape
    assert_allclose(ggc, expected, rtol=1e-5, atol=1e-9)


def test_layer_and_target_errors_name_the_problem(small):
    x = _images(1)
    with pytest.raises(ConfigError, match=r"features\.0, features\.4"):
        grad_cam(small, x, layer="features.99")
    with pytest.raises(ConfigError, match="not a module of the model"):
        grad_cam(small, x, layer=nn.Conv2d(B, 2, 1))
    with pytest.raises(ConfigError, match="no Conv2d"):
        grad_cam(Linear(), x)
    with pytest.raises(ConfigError, match=r"\(N, C, h, w\)"):
        grad_cam(small, x, layer="head.2")
    with pytest.raises(ConfigError, match="unknown class 'quasar'"):
        guided_backprop(small, x, target="quasar")


def test_gradient_methods_need_a_torch_model():
    for method in (grad_cam, guided_backprop, saliency.class_dream, saliency.kernel_activations):
        with pytest.raises(ConfigError, match=r"needs a torch\.nn\.Module, got function"):
            method(
                _region_score,
                _images(1)[0] if method is saliency.kernel_activations else _images(1),
            )


def test_a_model_with_more_than_one_output_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(B * H * W, 2))
    with pytest.raises(ModelError, match="one lens logit"):
        guided_backprop(model, _images(2))


# --- contracts shared by every method -------------------------------------------

MAP_METHODS = {
    "occlusion": lambda m, x: occlusion_map(m, x, patch_px=4, stride_px=4),
    "gradcam": grad_cam,
    "guided_backprop": guided_backprop,
    "guided_gradcam": guided_grad_cam,
    "deep_dream": lambda m, x: saliency.deep_dream(m, x, iterations=4, lr=0.05),
    "class_dream": lambda m, x: saliency.class_dream(m, x, "non-lens", iterations=4, lr=0.05),
    "kernels": saliency.kernel_activation_maps,
}


@pytest.mark.parametrize("name", list(MAP_METHODS))
def test_batched_equals_one_by_one(small, name):
    x = _images(3, seed=5)
    whole = MAP_METHODS[name](small, x)
    single = np.concatenate([MAP_METHODS[name](small, x[i : i + 1]) for i in range(3)])
    assert whole.shape[0] == 3
    assert_allclose(whole, single, rtol=1e-4, atol=1e-6)


def _state(model: nn.Module) -> dict:
    return {
        "params": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [
            (
                list(m._forward_hooks),
                list(m._forward_pre_hooks),
                list(m._backward_hooks),
                list(m._backward_pre_hooks),
            )
            for m in model.modules()
        ],
    }


ALL_METHODS = {
    **MAP_METHODS,
    "class_image": lambda m, x: saliency.class_image(m, x.shape[1:], iterations=3),
    "kernel_patterns": lambda m, x: saliency.kernel_patterns(
        m, x.shape[1:], channels=[0, 2], iterations=3
    ),
}


@pytest.mark.parametrize("name", list(ALL_METHODS))
def test_model_and_inputs_are_left_unchanged(small, name):
    small.train()
    small.features[0].weight.requires_grad_(False)  # a partly frozen model
    small.head[2].eval()  # a module whose mode differs from its parent's
    small.features[2].register_forward_hook(lambda *args: None)  # the user's own hook
    before = _state(small)
    x = _images(2)
    ALL_METHODS[name](small, x)
    after = _state(small)
    assert np.array_equal(x, _images(2)), "the input images were modified"
    for key, value in before["params"].items():
        assert torch.equal(value, after["params"][key]), key
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["hooks"] == before["hooks"]
    assert all(p.grad is None for p in small.parameters())


def test_methods_registry():
    assert set(METHODS) == {
        "occlusion",
        "gradcam",
        "guided_backprop",
        "guided_gradcam",
        "deep_dream",
        "class_dream",
        "class_image",
        "kernels",
    }
    assert METHODS["gradcam"] is grad_cam
    assert saliency.get_method("occlusion") is occlusion_map
    with pytest.raises(ConfigError, match=r"unknown saliency method 'lime' \(known: occlusion"):
        METHODS["lime"]
    with pytest.raises(ConfigError, match="'lime'"):
        saliency.get_method("lime")
    assert METHODS.get("lime") is None and "lime" not in METHODS


# --- the project's architecture -------------------------------------------------


@pytest.fixture(scope="module")
def compact() -> nn.Module:
    torch.manual_seed(0)
    return build_model("lensfind_des_compact", bands=4, size_px=100)


def test_every_method_runs_on_the_compact_model(compact):
    x = _images(2, shape=(4, 100, 100))
    with torch.no_grad():
        z = compact.eval()(torch.from_numpy(x)).numpy()
    occ = occlusion_map(compact, x, patch_px=25, stride_px=25)
    assert occ.shape == (2, 100, 100)
    occluded = x.copy()
    occluded[:, :, :25, :25] = 0.0
    with torch.no_grad():
        zo = compact(torch.from_numpy(occluded)).numpy()
    sig = 1.0 / (1.0 + np.exp(-np.float64(z)))
    assert_allclose(occ[:, 0, 0], sig - 1.0 / (1.0 + np.exp(-np.float64(zo))), atol=1e-6)
    for f in (grad_cam, guided_backprop, guided_grad_cam):
        m = f(compact, x)
        assert m.shape[0] == 2 and m.shape[-2:] == (100, 100) and np.isfinite(m).all()
    assert grad_cam(compact, x).min() >= 0.0
    assert guided_backprop(compact, x).shape == (2, 4, 100, 100)


@pytest.mark.gpu
def test_maps_on_cuda_match_cpu(small, monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare float32 with float32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    x = _images(2)
    names = ["occlusion", "gradcam", "guided_backprop", "guided_gradcam", "kernels"]
    on_cpu = {name: MAP_METHODS[name](small, x) for name in names}
    small.cuda()
    for name in names:
        assert_allclose(MAP_METHODS[name](small, x), on_cpu[name], rtol=1e-3, atol=1e-6)
