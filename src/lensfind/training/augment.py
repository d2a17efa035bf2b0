"""Training-time augmentation: rotations, flips, shifts, zooms and occlusions (torch).

Lensing has no preferred orientation, position (within a few pixels) or scale
(within a few per cent), so each cutout may be rotated, flipped, shifted and
magnified. Every transformation is drawn **without looking at the label**:
lenses and non-lenses are transformed alike. Wilde et al. (2022, sec. 6)
augmented only the non-lenses and their CNN learnt to tell the classes apart by
the orientation of the (three-fold symmetric) Euclid PSF; :func:`augment` takes
no labels, so it cannot do that.

vL (sec. 4.2.1) use a zoom in [1.00, 1.05], any rotation, shifts of up to 4 px
and horizontal flips, with nearest-neighbour interpolation; here, ``rotation="90"``
with no shift or zoom is exact (no interpolation), the rest samples the input at
the nearest pixel, and pixels that come from outside the cutout are reflected
back in (noise stays noise, with no empty corners).

``occlusion`` zeroes an annulus (5 px wide, the sensitivity probe's, Jacobs et
al. 2022 sec. 4.5) at a random radius in ``[0, side / 4)`` in a fraction of the
cutouts, lenses and non-lenses alike, so that a network learns that a hole in
a galaxy's light is not an Einstein ring. It acts on the normalised input:
with ``asinh`` (zero-preserving) that is zeroing the counts, as the probe does.
"""

from dataclasses import dataclass
from typing import Literal

from lensfind.training._torch import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class Augmentation:
    """What :func:`augment` does (see :class:`~lensfind.training.config.TrainConfig`).

    Attributes
    ----------
    rotation : {"none", "90", "any"}
        No rotation, multiples of 90 degrees, or any angle in [0, 2 pi).
    flip : bool
        Flip left-right with probability 1/2.
    shift_px : float
        Shifts uniform in ``[-shift_px, shift_px]`` along each axis, in pixels.
    zoom_max : float
        Magnification uniform in ``[1, zoom_max]`` (objects grow by that factor).
    per : {"batch", "sample"}
        One transformation per batch, or one per cutout.
    occlusion : float
        Probability that a cutout gets a zeroed annulus (always drawn per cutout).
    """

    rotation: Literal["none", "90", "any"] = "90"
    flip: bool = True
    shift_px: float = 0.0
    zoom_max: float = 1.0
    per: Literal["batch", "sample"] = "batch"
    occlusion: float = 0.0

    @property
    def resamples(self) -> bool:
        """Whether the pixels are interpolated (anything but 90-degree turns and flips)."""
        return self.rotation == "any" or self.shift_px > 0 or self.zoom_max > 1


def draw(aug: Augmentation, n: int, gen: "torch.Generator") -> dict[str, Tensor]:
    """Random parameters of ``n`` transformations (``per="batch"``: one, repeated).

    Returns ``k`` (quarter turns), ``flip`` (bool), ``angle_rad``, ``shift_px``
    ``(n, 2)`` (x, y) and ``zoom``. The generator is advanced in a fixed order;
    with the defaults this is the order of lensfind's first training loop.
    """
    m = n if aug.per == "sample" else 1
    zeros = torch.zeros(m)
    k = torch.randint(0, 4, (m,), generator=gen) if aug.rotation == "90" else zeros.long()
    flip = torch.randint(0, 2, (m,), generator=gen).bool() if aug.flip else torch.zeros(m).bool()
    angle = (
        torch.rand(m, generator=gen, dtype=torch.float64) * 2 * torch.pi
        if aug.rotation == "any"
        else zeros.double()
    )
    shift = (
        (torch.rand(m, 2, generator=gen, dtype=torch.float64) * 2 - 1) * aug.shift_px
        if aug.shift_px > 0
        else torch.zeros(m, 2, dtype=torch.float64)
    )
    zoom = (
        1 + torch.rand(m, generator=gen, dtype=torch.float64) * (aug.zoom_max - 1)
        if aug.zoom_max > 1
        else torch.ones(m, dtype=torch.float64)
    )
    out = {"k": k, "flip": flip, "angle_rad": angle, "shift_px": shift, "zoom": zoom}
    if m != n:
        out = {key: v.expand(n, *v.shape[1:]) for key, v in out.items()}
    if aug.occlusion > 0:  # drawn last, so that runs without occlusion are unchanged
        hit = torch.rand(n, generator=gen, dtype=torch.float64) < aug.occlusion
        radius = torch.rand(n, generator=gen, dtype=torch.float64)
        out["occlusion_radius"] = torch.where(hit, radius, torch.full_like(radius, -1.0))
    return out


OCCLUSION_WIDTH_PX = 5.0  # the probe's annulus width (Jacobs et al. 2022)


def occlude(x: Tensor, radius: Tensor) -> Tensor:
    """Zero an annulus ``[r, r + 5 px)`` about the object of each cutout of ``x``.

    The object sits at pixel ``(side // 2, side // 2)``, as cut by the engine and
    as the probe's annulus is centred. ``radius`` ``(N,)`` is a fraction of
    ``side / 4`` (``r`` in pixels is ``radius * side / 4``); a negative value
    leaves that cutout as it is.
    """
    side = x.shape[-1]
    r = (radius * side / 4).to(x.dtype).view(-1, 1, 1)
    c = torch.arange(side, dtype=x.dtype, device=x.device) - side // 2
    dist = torch.sqrt(c.view(1, -1, 1) ** 2 + c.view(1, 1, -1) ** 2)
    keep = ~((dist >= r) & (dist < r + OCCLUSION_WIDTH_PX) & (r >= 0))
    return x * keep.unsqueeze(1).to(x.device)


def apply(x: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Transform a batch ``(N, bands, H, W)`` (square cutouts) with :func:`draw`'s ``params``.

    Order: quarter turns, flip, then rotation by ``angle_rad``, magnification by
    ``zoom`` about the centre and shift by ``shift_px`` (output pixels), sampled
    at the nearest input pixel; last, the occlusion, if drawn.
    """
    if "occlusion_radius" in params:
        rest = {k: v for k, v in params.items() if k != "occlusion_radius"}
        return occlude(apply(x, rest), params["occlusion_radius"].to(x.device))
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"augmentation needs square cutouts, got {tuple(x.shape)}")
    k, flip = params["k"], params["flip"]
    if bool((k != 0).any()) or bool(flip.any()):
        x = x.clone()
        for q in range(1, 4):
            sel = k == q
            if bool(sel.all()):
                x = torch.rot90(x, q, dims=(2, 3))
            elif bool(sel.any()):
                x[sel] = torch.rot90(x[sel], q, dims=(2, 3))
        if bool(flip.all()):
            x = torch.flip(x, dims=(3,))
        elif bool(flip.any()):
            x[flip] = torch.flip(x[flip], dims=(3,))
    angle, shift, zoom = params["angle_rad"], params["shift_px"], params["zoom"]
    if not (bool((angle != 0).any()) or bool((shift != 0).any()) or bool((zoom != 1).any())):
        return x
    side = x.shape[-1]
    # affine_grid maps output to input in coordinates where the cutout spans [-1, 1]:
    # input = R(-angle) (output - shift) / zoom.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    t = -(a @ (shift * 2 / side).unsqueeze(-1))
    theta = torch.cat([a, t], dim=2).to(x.dtype)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        x, grid.to(x.device), mode="nearest", padding_mode="reflection", align_corners=False
    )


def augment(x: Tensor, aug: Augmentation, gen: "torch.Generator") -> Tensor:
    """Randomly transform a batch ``(N, bands, H, W)``; labels are not an input.

    The parameters come from ``gen`` (a CPU generator, so runs are reproducible
    on any device).
    """
    return apply(x, draw(aug, x.shape[0], gen))
