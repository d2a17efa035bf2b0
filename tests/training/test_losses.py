"""lensfind.training.losses: hand-computed values, torch references, gradcheck, registry."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensfind.errors import ConfigError  # noqa: E402
from lensfind.training.losses import (  # noqa: E402
    DEFAULT_BETA,
    LOSSES,
    balanced_class_weights,
    binary_cross_entropy,
    double_soft_f1_loss,
    get_loss,
    soft_counts,
    soft_f1_loss,
    soft_fbeta_loss,
    weighted_cross_entropy,
)

# A small batch given as probabilities; the losses take logits = logit(p).
P = np.array([0.9, 0.2, 0.6, 0.3, 0.1])
Y = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
# soft counts (vL eqs. 3.9-3.12), by hand:
# TP = 0.9 + 0.3 = 1.2; FP = 0.2 + 0.6 + 0.1 = 0.9; FN = 0.1 + 0.7 = 0.8
# TN = 0.8 + 0.4 + 0.9 = 2.1
TP, FP, FN, TN = 1.2, 0.9, 0.8, 2.1


def _logits(p=P):
    return torch.logit(torch.tensor(p, dtype=torch.float64))


def _targets(y=Y):
    return torch.tensor(y, dtype=torch.float64)


def test_soft_counts_by_hand():
    got = [float(c) for c in soft_counts(_logits(), _targets())]
    assert got == pytest.approx([TP, FP, FN, TN], abs=1e-12)


def test_soft_f1_by_hand():
    # 1 - 2TP / (2TP + FN + FP) = 1 - 2.4 / 4.1 = 17/41
    assert float(soft_f1_loss(_logits(), _targets())) == pytest.approx(17 / 41, abs=1e-12)


def test_double_soft_f1_by_hand():
    # lens: 17/41; non-lens: 1 - 2TN / (2TN + FN + FP) = 1 - 4.2 / 5.9 = 17/59
    expected = (17 / 41 + 17 / 59) / 2
    assert float(double_soft_f1_loss(_logits(), _targets())) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("beta", [DEFAULT_BETA, 0.5, 1.0, 2.0])
def test_soft_fbeta_by_hand(beta):
    # eq. 3.19 with soft precision and recall: Pr = 1.2 / 2.1, Re = 1.2 / 2.0
    pr, re = TP / (TP + FP), TP / (TP + FN)
    expected = 1 - (1 + beta**2) * pr * re / (beta**2 * pr + re)
    got = float(soft_fbeta_loss(_logits(), _targets(), beta=beta))
    assert got == pytest.approx(expected, abs=1e-12)


def test_soft_fbeta_default_beta_and_f1_limit():
    assert DEFAULT_BETA == 0.17
    x, y = _logits(), _targets()
    assert float(soft_fbeta_loss(x, y)) == float(soft_fbeta_loss(x, y, beta=0.17))
    assert float(soft_fbeta_loss(x, y, beta=1.0)) == pytest.approx(float(soft_f1_loss(x, y)))


def test_soft_losses_limits():
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    right = 40 * (2 * y - 1)  # confident and correct
    for fn in (soft_f1_loss, double_soft_f1_loss, soft_fbeta_loss):
        assert float(fn(right, y)) == pytest.approx(0.0, abs=1e-6)
        assert float(fn(-right, y)) == pytest.approx(1.0, abs=1e-6)
    # no lenses and no lens calls: the eps keeps it finite (vL eq. 3.13)
    none = torch.full((3,), -200.0)
    assert float(soft_f1_loss(none, torch.zeros(3))) == pytest.approx(1.0)


def test_bce_by_hand():
    p, y = P, Y
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert float(binary_cross_entropy(_logits(), _targets())) == pytest.approx(expected, rel=1e-12)
    # pos_weight multiplies the lens terms
    w = 3.0
    expected_w = -np.mean(w * y * np.log(p) + (1 - y) * np.log(1 - p))
    got = float(binary_cross_entropy(_logits(), _targets(), pos_weight=w))
    assert got == pytest.approx(expected_w, rel=1e-12)


def test_weighted_cross_entropy_by_hand():
    z = np.array([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.4], [1.1, 1.0]])
    y = np.array([1, 0, 0, 1])
    w = (0.4, 2.5)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    wi = np.array([w[c] for c in y])
    expected = -(wi * logp[np.arange(4), y]).sum() / wi.sum()
    zt, yt = torch.tensor(z), torch.tensor(y)
    got = weighted_cross_entropy(zt, yt, class_weights=w)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # a lens logit d is read as the class logits (0, d): z1 - z0 gives the same loss
    got_1d = weighted_cross_entropy(zt[:, 1] - zt[:, 0], yt, class_weights=w)
    assert float(got_1d) == pytest.approx(expected, rel=1e-12)
    # with equal weights it is the binary cross-entropy of the lens logit
    bce = binary_cross_entropy(zt[:, 1] - zt[:, 0], yt.double())
    assert float(weighted_cross_entropy(zt, yt)) == pytest.approx(float(bce), rel=1e-12)


def test_balanced_class_weights():
    y = torch.tensor([1, 0, 0, 0, 0, 0, 0, 1])
    w0, w1 = balanced_class_weights(y)
    assert (w0, w1) == pytest.approx((8 / 12, 8 / 4))
    assert w0 * 6 == pytest.approx(w1 * 2)  # both classes weigh the same in total
    with pytest.raises(ValueError, match="both lenses and non-lenses"):
        balanced_class_weights(torch.zeros(4))


GRAD_CASES = [
    ("bce", {}),
    ("bce", {"pos_weight": 2.5}),
    ("soft_f1", {}),
    ("double_soft_f1", {}),
    ("soft_fbeta", {}),
    ("soft_fbeta", {"beta": 2.0}),
]


@pytest.mark.parametrize(("name", "options"), GRAD_CASES)
def test_gradcheck_binary_losses(name, options):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, dtype=torch.float64, generator=g).requires_grad_(True)
    y = torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.float64)
    fn = get_loss(name, **options)
    assert torch.autograd.gradcheck(lambda t: fn(t, y), (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(6, 2), (6,)])
def test_gradcheck_weighted_cross_entropy(shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, dtype=torch.float64, generator=g).requires_grad_(True)
    y = torch.tensor([1, 0, 1, 0, 0, 1])
    fn = get_loss("weighted_ce", class_weights=(0.7, 1.9))
    assert torch.autograd.gradcheck(lambda t: fn(t, y), (x,), eps=1e-6, atol=1e-7)


def test_soft_losses_decrease_along_the_negative_gradient():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, generator=g, dtype=torch.float64)
    y = (torch.rand(32, generator=g) < 0.3).double()
    for name in ("soft_f1", "double_soft_f1", "soft_fbeta", "bce"):
        fn = get_loss(name)
        t = x.clone().requires_grad_(True)
        loss = fn(t, y)
        (grad,) = torch.autograd.grad(loss, t)
        assert float(fn(x - 1e-2 * grad / grad.norm(), y)) < float(loss.detach()), name


def test_registry_and_get_loss():
    assert set(LOSSES) == {"bce", "weighted_ce", "soft_f1", "double_soft_f1", "soft_fbeta"}
    x, y = _logits(), _targets()
    f = get_loss("soft_fbeta", beta=0.5)
    assert float(f(x, y)) == float(soft_fbeta_loss(x, y, beta=0.5))
    assert float(get_loss("soft_f1")(x, y)) == float(soft_f1_loss(x, y))
    with pytest.raises(ConfigError) as info:
        get_loss("focal")
    assert "'focal'" in str(info.value)
    for name in LOSSES:
        assert name in str(info.value)
    with pytest.raises(ConfigError, match="gamma"):
        get_loss("soft_f1", gamma=2.0)
    with pytest.raises(TypeError):
        LOSSES["new"] = soft_f1_loss  # read-only


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        soft_f1_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        binary_cross_entropy(torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        weighted_cross_entropy(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="beta"):
        soft_fbeta_loss(torch.zeros(2), torch.zeros(2), beta=0.0)


def test_losses_run_in_float32_on_a_model_output():
    y = torch.tensor([1.0, 0.0])
    logits = torch.tensor([0.3, -0.2], requires_grad=True)
    for name in LOSSES:
        loss = get_loss(name)(logits, y)
        assert loss.dtype == torch.float32 and loss.ndim == 0
        assert math.isfinite(float(loss.detach()))
