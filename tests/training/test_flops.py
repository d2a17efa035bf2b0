"""The multiply-accumulate counter against hand computations."""

import pytest

from lensfind.errors import ConfigError
from lensfind.training._torch import nn
from lensfind.training.flops import count_macs, count_parameters, gflop_per_cutout


def test_conv_pool_dense_by_hand() -> None:
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1),  # 10x10 out: 8*10*10 * 4*3*3 = 28,800
        nn.ReLU(),
        nn.MaxPool2d(2),  # not counted
        nn.Conv2d(8, 16, 3, stride=1, groups=2),  # 3x3 out: 16*3*3 * 4*3*3 = 5,184
        nn.Flatten(),
        nn.Linear(16 * 9, 10),  # 1,440
    )
    assert count_macs(model, (4, 10, 10)) == 28_800 + 5_184 + 1_440
    assert gflop_per_cutout(model, (4, 10, 10)) == pytest.approx(2 * 35_424 / 1e9)
    weights = 8 * 4 * 9 + 8 + 16 * 4 * 9 + 16 + 144 * 10 + 10
    assert count_parameters(model) == weights


def test_mode_restored_and_bad_shape() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5))
    model.train()
    assert count_macs(model, (1, 5, 5)) == 2 * 3 * 3 * 9
    assert model.training
    with pytest.raises(ConfigError, match="bands, H, W"):
        count_macs(model, (5, 5))
