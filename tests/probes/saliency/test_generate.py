"""lensfind.probes.saliency generated images, kernel activations and PNG figures.

Gradient ascent is checked against closed forms on linear objectives (plain SGD and
Adam), for monotone growth on a small CNN, and for determinism.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.testing import assert_allclose  # noqa: E402
from torch import nn  # noqa: E402

from lensfind.errors import ConfigError  # noqa: E402
from lensfind.probes.saliency import (  # noqa: E402
    asinh_display,
    class_dream,
    class_image,
    deep_dream,
    kernel_activation_maps,
    kernel_activation_values,
    kernel_activations,
    kernel_patterns,
    save_saliency_png,
)
from lensfind.training.architectures import build_model  # noqa: E402

B, H, W = 3, 10, 10
D = B * H * W


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(B, H, W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(1, 2, 3))


class Identity1x1(nn.Module):
    """1x1 identity conv then a linear head: the conv's feature maps are the bands."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(B, B, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(B)[:, :, None, None])
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(D, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x)).squeeze(-1)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(B, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 4, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


def _noise(seed: int) -> np.ndarray:
    plane = np.random.default_rng(seed).uniform(0.0, 1.0, (H, W)).astype(np.float32)
    return np.broadcast_to(plane, (B, H, W))


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, B, H, W)).astype(np.float32)


@pytest.fixture
def linear() -> Linear:
    torch.manual_seed(0)
    return Linear()


@pytest.fixture
def small() -> SmallCNN:
    torch.manual_seed(2)
    return SmallCNN()


# --- class-generated images -----------------------------------------------------


def test_class_image_starts_from_the_papers_seeded_noise(linear):
    x0 = class_image(linear, (B, H, W), iterations=0, seed=7)
    assert_allclose(x0, _noise(7))  # one uniform [0, 1) plane in every band
    assert np.array_equal(
        class_image(linear, (B, H, W), iterations=3, seed=7),
        class_image(linear, (B, H, W), iterations=3, seed=7),
    )
    assert not np.allclose(x0, class_image(linear, (B, H, W), iterations=0, seed=8))


@pytest.mark.parametrize("target", ["lens", "non-lens"])
def test_class_image_of_a_linear_model_has_closed_form(linear, target):
    w = linear.w.detach().numpy()
    sign = 1.0 if target == "lens" else -1.0
    for k in (1, 5):
        sgd = class_image(linear, (B, H, W), target, lr=0.1, iterations=k, optimizer="sgd")
        assert_allclose(sgd, _noise(0) + sign * k * 0.1 * w, rtol=1e-5, atol=1e-6)
        # Adam on a constant gradient steps lr * sign(gradient) every time
        adam = class_image(linear, (B, H, W), target, lr=0.1, iterations=k)
        assert_allclose(adam, _noise(0) + sign * k * 0.1 * np.sign(w), rtol=1e-5, atol=1e-5)


def test_l2_penalty_follows_its_recursion(linear):
    w = linear.w.detach().numpy().astype(np.float64)
    x = _noise(0).astype(np.float64)
    for _ in range(6):
        x = x + 0.5 * (w - 3.0 * 2.0 * x / D)  # d/dx [w.x - l2 mean(x^2)]
    got = class_image(linear, (B, H, W), lr=0.5, iterations=6, l2=3.0, optimizer="sgd")
    assert_allclose(got, x, rtol=1e-5, atol=1e-5)


def _tv_gradient(x: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    dy, dx = np.diff(x, axis=1), np.diff(x, axis=2)
    g[:, 1:, :] += 2 * dy / dy.size
    g[:, :-1, :] -= 2 * dy / dy.size
    g[:, :, 1:] += 2 * dx / dx.size
    g[:, :, :-1] -= 2 * dx / dx.size
    return g


def test_tv_penalty_smooths_by_its_gradient(linear):
    with torch.no_grad():
        linear.w.zero_()  # the penalty alone
    x0 = _noise(0).astype(np.float64)
    got = class_image(linear, (B, H, W), lr=2.0, iterations=1, tv=5.0, optimizer="sgd")
    assert_allclose(got, x0 - 2.0 * 5.0 * _tv_gradient(x0), rtol=1e-5, atol=1e-6)
    smoother = class_image(linear, (B, H, W), lr=2.0, iterations=20, tv=5.0, optimizer="sgd")
    assert np.abs(np.diff(smoother, axis=1)).sum() < np.abs(np.diff(x0, axis=1)).sum()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_class_score_grows_monotonically(small, optimizer):
    lr = 0.01 if optimizer == "adam" else 0.5
    scores = []
    for k in range(8):
        img = class_image(small, (B, H, W), "non-lens", lr=lr, iterations=k, optimizer=optimizer)
        with torch.no_grad():
            scores.append(-float(small(torch.from_numpy(img[None]))[0]))
    assert np.all(np.diff(scores) > 0), scores


# --- deep dream ----------------------------------------------------------------


def test_deep_dream_on_identity_feature_maps_has_closed_form():
    torch.manual_seed(0)
    model = Identity1x1()
    x = _images(2)
    got = deep_dream(model, x, lr=0.3, iterations=4, optimizer="sgd")  # layer: the conv
    assert_allclose(got, x + 4 * 0.3 / D, rtol=1e-5, atol=1e-6)
    one = deep_dream(model, x, channel=1, lr=0.3, iterations=4, optimizer="sgd")
    expected = x.copy()
    expected[:, 1] += 4 * 0.3 / (H * W)
    assert_allclose(one, expected, rtol=1e-5, atol=1e-6)
    l2 = deep_dream(model, x, objective="l2", lr=0.3, iterations=4, optimizer="sgd")
    assert_allclose(l2, x * (1 + 2 * 0.3 / D) ** 4, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("objective", ["mean", "l2"])
def test_deep_dream_objective_grows_monotonically(small, objective):
    x = _images(2, seed=1)
    values = []
    for k in range(8):
        dream = deep_dream(small, x, layer="features.3", objective=objective, lr=0.01, iterations=k)
        a = kernel_activation_maps(small, dream, "features.3").reshape(2, -1)
        values.append(a.mean(axis=1) if objective == "mean" else (a**2).mean(axis=1))
    assert np.all(np.diff(np.array(values), axis=0) > 0)


def test_class_dream_moves_the_logit_towards_the_target(small):
    x = _images(3, seed=4)
    with torch.no_grad():  # the ascent enables gradients for itself
        z0 = small(torch.from_numpy(x)).numpy()
        z_lens = small(torch.from_numpy(class_dream(small, x, lr=0.01, iterations=20))).numpy()
        z_non = small(torch.from_numpy(class_dream(small, x, "non-lens", lr=0.01, iterations=20)))
    assert np.all(z_lens > z0) and np.all(z_non.numpy() < z0)
    assert_allclose(class_dream(small, x, iterations=0), x)


def test_ascent_arguments_are_checked(small):
    x = _images(1)
    with pytest.raises(ConfigError, match="objective"):
        deep_dream(small, x, objective="max")
    with pytest.raises(ConfigError, match="optimizer"):
        class_image(small, (B, H, W), optimizer="lbfgs")
    with pytest.raises(ConfigError, match="lr"):
        class_dream(small, x, lr=0.0)
    with pytest.raises(ConfigError, match="iterations"):
        class_image(small, (B, H, W), iterations=-1)
    with pytest.raises(ConfigError, match="shape"):
        class_image(small, (H, W))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="channel"):
        deep_dream(small, x, channel=4, iterations=1)
    with pytest.raises(ConfigError, match="target"):
        class_dream(small, x, target="lenses")


# --- kernels -------------------------------------------------------------------


def test_kernel_activations_are_the_layers_feature_maps(small):
    torch.manual_seed(0)
    x = _images(3)
    assert_allclose(kernel_activations(Identity1x1(), x[0]), x[0], rtol=1e-6)
    maps = kernel_activations(small, x[1], layer="features.0")
    with torch.no_grad():
        ref = small.features[0](torch.from_numpy(x[1:2]))[0].numpy()
    assert_allclose(maps, ref, rtol=1e-5, atol=1e-6)
    assert kernel_activations(small, x[1:2]).shape == (4, 5, 5)  # last Conv2d
    kav = kernel_activation_values(small, x, batch_size=2)
    assert kav.shape == (3, 4)
    assert_allclose(kav, kernel_activation_maps(small, x).mean(axis=(2, 3)), rtol=1e-5)
    with pytest.raises(ConfigError, match="image"):
        kernel_activations(small, x)


def test_kernel_patterns_raise_their_own_kernel_only():
    torch.manual_seed(0)
    model = Identity1x1()
    pats = kernel_patterns(model, (B, H, W), lr=0.2, iterations=3, optimizer="sgd", batch_size=2)
    assert pats.shape == (B, B, H, W)
    for c in range(B):
        expected = _noise(0).copy()
        expected[c] += 3 * 0.2 / (H * W)
        assert_allclose(pats[c], expected, rtol=1e-5, atol=1e-6)
    two = kernel_patterns(model, (B, H, W), channels=[2, 0], lr=0.2, iterations=3, optimizer="sgd")
    assert_allclose(two, pats[[2, 0]], rtol=1e-6)
    with pytest.raises(ConfigError, match="channels"):
        kernel_patterns(model, (B, H, W), channels=[3], iterations=1)


# --- the project's architecture -------------------------------------------------


def test_generators_run_on_the_compact_model():
    torch.manual_seed(0)
    model = build_model("lensfind_des_compact", bands=4, size_px=100)
    x = np.random.default_rng(0).normal(size=(2, 4, 100, 100)).astype(np.float32)
    assert deep_dream(model, x, iterations=2).shape == (2, 4, 100, 100)
    assert class_dream(model, x, iterations=2).shape == (2, 4, 100, 100)
    img = class_image(model, (4, 100, 100), iterations=2)
    assert img.shape == (4, 100, 100) and np.isfinite(img).all()
    assert kernel_activations(model, x[0]).shape == (64, 6, 6)
    assert kernel_activations(model, x[0], layer="features.0").shape == (16, 50, 50)
    assert kernel_patterns(model, (4, 100, 100), channels=[0, 63], iterations=1).shape == (
        2,
        4,
        100,
        100,
    )


# --- figures -------------------------------------------------------------------


def test_asinh_display():
    x = _images(1)[0]
    rgb = asinh_display(x)
    assert rgb.shape == (H, W, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert_allclose(asinh_display(x, rgb_bands=(0, 1, 2))[..., 0], rgb[..., 2])
    grey = asinh_display(x[:1])
    assert grey.shape == (H, W) and grey.max() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="rgb_bands"):
        asinh_display(x, rgb_bands=(0, 1, 5))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_png_is_written_and_valid(tmp_path):
    from matplotlib.image import imread

    x = _images(2)
    maps = {"occlusion": np.random.default_rng(1).normal(size=(2, H, W)), "guided": x * 0.1}
    path = save_saliency_png(x, maps, tmp_path / "saliency.png", titles=["A 0.93", "B 0.12"])
    assert path == tmp_path / "saliency.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    single = save_saliency_png(x[:1, :1], np.zeros((1, H, W)), tmp_path / "one.png")
    assert single.read_bytes()[:8] == PNG_SIGNATURE


def test_png_arguments_are_checked(tmp_path):
    x = _images(2)
    with pytest.raises(ConfigError, match="maps"):
        save_saliency_png(x, np.zeros((2, H, W + 1)), tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="titles"):
        save_saliency_png(x, np.zeros((2, H, W)), tmp_path / "bad.png", titles=["only one"])
    assert not (tmp_path / "bad.png").exists()
