"""bench_kernels: the structure of its result and its ratios, with a fake scorer."""

import numba
import numpy as np
import pytest

from lensfind.bench.kernels import bench_kernels
from lensfind.errors import ConfigError
from lensfind.probes.perturbations import PERTURBATIONS


class FakeScorer:
    """Records the batch sizes it is called with."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, cutouts: np.ndarray) -> np.ndarray:
        self.batches.append(len(cutouts))
        return np.zeros(len(cutouts), np.float32)


def test_bench_kernels_reports_medians_spreads_and_ratios_over_the_model():
    images = np.random.default_rng(0).normal(size=(300, 2, 64, 64)).astype(np.float32)
    scorer = FakeScorer()
    r = bench_kernels(images, scorer, repeats=3, names=["flux", "blur", "noise"], settle_s=0)
    assert scorer.batches == [256, 44] * 4  # warm-up + 3 rounds, batches of 256
    assert r["n"] == 300 and r["repeats"] == 3 and r["threads"] == numba.get_num_threads()
    assert r["model_min"] <= r["model_cutouts_per_s"] <= r["model_max"]
    assert list(r["kernels"]) == ["flux", "blur", "noise"]
    for name, k in r["kernels"].items():
        grid = PERTURBATIONS[name].strengths
        assert k["strength"] == grid[len(grid) // 2]
        assert 0 < k["min"] <= k["cutouts_per_s"] <= k["max"]
        assert k["over_model"] == k["cutouts_per_s"] / r["model_cutouts_per_s"]


def test_bench_kernels_times_every_registered_kernel_by_default():
    images = np.ones((4, 1, 16, 16), np.float32)
    r = bench_kernels(images, FakeScorer(), repeats=1, settle_s=0)
    assert set(r["kernels"]) == set(PERTURBATIONS)


def test_bench_kernels_rejects_bad_input():
    images = np.ones((4, 1, 8, 8), np.float32)
    with pytest.raises(ConfigError, match="unknown perturbation 'jpeg'"):
        bench_kernels(images, FakeScorer(), names=["jpeg"])
    with pytest.raises(ValueError, match="repeats"):
        bench_kernels(images, FakeScorer(), repeats=0)
    with pytest.raises(ValueError, match="N >= 1"):
        bench_kernels(images[:0], FakeScorer())
