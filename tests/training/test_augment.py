"""lensfind.training.augment: shapes, bounds, exactness, and no label dependence."""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensfind.training.augment import Augmentation, apply, augment, draw  # noqa: E402

VL = Augmentation(rotation="any", flip=True, shift_px=4.0, zoom_max=1.05, per="sample")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _point(n, side=41, row=20, col=20):
    x = torch.zeros(n, 1, side, side)
    x[:, :, row, col] = 1.0
    return x


@pytest.mark.parametrize(
    "aug",
    [Augmentation(), VL, Augmentation(rotation="none", flip=False, shift_px=2.5),
     Augmentation(rotation="90", per="sample", zoom_max=1.1)],
)  # fmt: skip
def test_shape_dtype_and_values_preserved(aug):
    x = torch.randn(16, 3, 33, 33)
    y = augment(x, aug, _gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    # nearest-pixel sampling only moves pixels: every output value is an input value
    for i in range(16):
        assert torch.isin(y[i], x[i]).all()


def test_parameters_within_bounds():
    p = draw(VL, 4000, _gen(1))
    assert p["shift_px"].abs().max() <= 4.0
    assert p["shift_px"].abs().max() > 3.9  # the range is used
    assert p["zoom"].min() >= 1.0 and p["zoom"].max() <= 1.05 and p["zoom"].max() > 1.049
    assert p["angle_rad"].min() >= 0 and p["angle_rad"].max() < 2 * np.pi
    assert 0.45 < p["flip"].double().mean() < 0.55


def test_shift_moves_a_point_by_the_drawn_amount():
    aug = Augmentation(rotation="none", flip=False, shift_px=4.0, per="sample")
    params = draw(aug, 200, _gen(2))
    y = apply(_point(200), params)
    for i in range(200):
        (r, c) = torch.nonzero(y[i, 0] == 1.0)[0].tolist()
        dx, dy = params["shift_px"][i].tolist()
        # nearest-pixel sampling: within half a pixel (plus rounding) of the exact shift
        assert abs((c - 20) - dx) <= 0.5 + 1e-6 and abs((r - 20) - dy) <= 0.5 + 1e-6
        assert abs(c - 20) <= 4 and abs(r - 20) <= 4


def test_zoom_moves_a_point_outwards_by_at_most_five_percent():
    aug = Augmentation(rotation="none", flip=False, zoom_max=1.05, per="sample")
    params = draw(aug, 100, _gen(3))
    y = apply(_point(100, side=101, row=50, col=90), params)  # 40 px right of the centre
    for i in range(100):
        cols = torch.nonzero(y[i, 0] == 1.0)[:, 1].float()
        # the point grows with the zoom (nearest sampling may duplicate it)
        assert cols.min() >= 90 - 0.5 and cols.max() <= 50 + 40 * 1.05 + 0.5
        expected = 50 + 40 * params["zoom"][i].item()
        assert (cols - expected).abs().min() <= 0.5 + 1e-6


def test_quarter_turns_and_flips_are_exact():
    x = torch.randn(8, 2, 20, 20)
    aug = Augmentation(rotation="90", flip=True, per="sample")
    params = draw(aug, 8, _gen(4))
    y = apply(x, params)
    for i in range(8):
        ref = torch.rot90(x[i : i + 1], int(params["k"][i]), dims=(2, 3))
        if params["flip"][i]:
            ref = torch.flip(ref, dims=(3,))
        assert torch.equal(y[i : i + 1], ref)


def test_batch_mode_is_the_first_training_loop():
    """Default: one quarter turn then one flip per batch, drawn in this order."""
    x = torch.randn(5, 4, 12, 12)
    gen_a, gen_b = _gen(5), _gen(5)
    y = augment(x, Augmentation(), gen_a)
    k = int(torch.randint(0, 4, (1,), generator=gen_b))
    ref = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(0, 2, (1,), generator=gen_b)):
        ref = torch.flip(ref, dims=(3,))
    assert torch.equal(y, ref)
    assert torch.equal(gen_a.get_state(), gen_b.get_state())


def test_lenses_and_non_lenses_are_transformed_alike():
    """No label goes in, and every row of a mixed batch is transformed (Wilde+22 sec. 6)."""
    assert "label" not in " ".join(inspect.signature(augment).parameters)
    base = torch.randn(1, 1, 31, 31)
    x = base.repeat(64, 1, 1, 1)  # say rows 0-31 are lenses, 32-63 non-lenses: same pixels
    y = augment(x, VL, _gen(6))
    changed = [(not torch.equal(y[i], x[i])) for i in range(64)]
    assert sum(changed[:32]) >= 30 and sum(changed[32:]) >= 30
    # the transformation of a row depends only on its position in the batch and the seed
    y2 = augment(x.clone(), VL, _gen(6))
    assert torch.equal(y, y2)


def test_non_square_is_refused():
    with pytest.raises(ValueError, match="square"):
        apply(torch.zeros(1, 1, 4, 5), draw(VL, 1, _gen()))


def test_occlusion_zeroes_one_5px_annulus_and_nothing_else():
    from lensfind.training.augment import OCCLUSION_WIDTH_PX, occlude

    side = 44
    x = torch.rand(3, 2, side, side) + 1.0  # no pixel is zero before
    radius = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)  # r = 0, 5.5 px, none
    y = occlude(x, radius)
    # the probe's own annulus geometry (centre at side // 2)
    from lensfind.probes.kernel_geometry import radial_indices

    for i, r_px in enumerate([0.0, 5.5]):
        ring = np.zeros(side * side, dtype=bool)
        ring[radial_indices((side, side), r_px, r_px + OCCLUSION_WIDTH_PX)] = True
        ring = ring.reshape(side, side)
        assert ring.sum() > 0
        assert (y[i].numpy()[:, ring] == 0).all()
        np.testing.assert_array_equal(y[i].numpy()[:, ~ring], x[i].numpy()[:, ~ring])
    assert torch.equal(y[2], x[2])


def test_occlusion_hits_the_requested_fraction_within_a_quarter_side():
    p = draw(Augmentation(occlusion=0.25), 8000, _gen(3))
    hit = p["occlusion_radius"] >= 0
    assert abs(hit.double().mean().item() - 0.25) < 0.02
    assert (p["occlusion_radius"][hit] < 1).all()


def test_no_occlusion_leaves_every_other_draw_unchanged():
    base, occl = (
        draw(VL, 64, _gen(4)),
        draw(Augmentation(**{**VL.__dict__, "occlusion": 0.5}), 64, _gen(4)),
    )
    assert "occlusion_radius" not in base
    for key, value in base.items():
        assert torch.equal(value, occl[key])
    x = torch.rand(64, 1, 33, 33) + 1.0
    y = apply(x, occl)
    blank = (y == 0).flatten(1).any(1)
    assert torch.equal(blank, occl["occlusion_radius"] >= 0)
