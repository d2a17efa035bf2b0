"""The perturbation kernels on torch tensors, on any device (GPU engine path).

Same definitions, conventions and signatures as :mod:`lensfind.probes.kernels`,
with float32 tensors ``(N, bands, H, W)`` in counts in place of arrays. The
random numbers are drawn on the host by that module (:func:`colour_factors`,
:func:`standard_normal`) and moved to the tensor's device, and the geometry
(reflect indices, radial masks, bilinear plans) is shared, so a seed gives the
same perturbation on every device as the numba kernels, up to float32 rounding
of the sums. Inputs are never modified.
"""

import numpy as np

from lensfind.probes.kernel_geometry import (
    FILLS,
    bilinear_plan,
    gaussian_kernel,
    radial_indices,
    reflect_index,
)
from lensfind.probes.random_fields import colour_factors, standard_normal
from lensfind.training._torch import torch


def _batch(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4:
        raise ValueError(f"images: expected (N, bands, H, W), got shape {tuple(images.shape)}")
    return images.to(torch.float32)


def _nonneg(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
    return v


def _on(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(like.device)


def colour_jitter(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Multiply each band by a factor ``~ N(1, sigma)``.

    See :func:`lensfind.probes.kernels.colour_jitter`.
    """
    x = _batch(images)
    sigma = _nonneg("sigma", sigma)
    f = colour_factors(x.shape[0], x.shape[1], sigma, seed)
    if sigma == 0.0:
        return x.clone()
    return x * _on(f, x)[:, :, None, None]


def flux_scale(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply every pixel by ``factor`` (float32).

    See :func:`lensfind.probes.kernels.flux_scale`.
    """
    if not np.isfinite(float(factor)):
        raise ValueError(f"factor: expected a finite number, got {factor!r}")
    x = _batch(images)
    return x * torch.tensor(np.float32(factor), device=x.device)


def _blur_axis(x: torch.Tensor, w: torch.Tensor, axis: int) -> torch.Tensor:
    r, n = w.numel() - 1, x.shape[axis]
    idx = _on(reflect_index(np.arange(-r, n + r), n).astype(np.int64), x)
    xp = x.index_select(axis, idx)
    out = w[0] * xp.narrow(axis, r, n)
    for d in range(1, r + 1):
        out = out + w[d] * (xp.narrow(axis, r - d, n) + xp.narrow(axis, r + d, n))
    return out


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur, scipy ``'reflect'`` boundaries.

    See :func:`lensfind.probes.kernels.gaussian_blur`.
    """
    x = _batch(images)
    sigma_px = _nonneg("sigma_px", sigma_px)
    if sigma_px == 0.0 or x.numel() == 0:
        return x.clone()
    phi = gaussian_kernel(sigma_px)
    w = _on(phi[phi.size // 2 :].astype(np.float32), x)
    return _blur_axis(_blur_axis(x, w, 2), w, 3)


def gaussian_noise(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Add ``sigma`` band standard deviations of noise.

    See :func:`lensfind.probes.kernels.gaussian_noise`.
    """
    x = _batch(images)
    sigma = _nonneg("sigma", sigma)
    if sigma == 0.0 or x.numel() == 0:
        standard_normal((0,), seed)  # validates the seed
        return x.clone()
    z = standard_normal(tuple(x.shape), seed)
    wide = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    var = torch.var(x.to(wide), dim=(2, 3), correction=0)
    a = (sigma * torch.sqrt(var)).to(torch.float32)
    return x + a[:, :, None, None] * _on(z, x)


def _occlusion(
    images: torch.Tensor,
    r_in: float,
    r_out: float,
    fill: str,
    sky_sigma: np.ndarray | None,
    seed: int,
) -> torch.Tensor:
    x = _batch(images)
    if fill not in FILLS:
        raise ValueError(f"fill: expected one of {', '.join(map(repr, FILLS))}, got {fill!r}")
    n, b, h, w = x.shape
    idx = radial_indices((h, w), r_in, r_out)
    out = x.clone()
    if fill == "sky":
        if sky_sigma is None:
            raise ValueError("fill='sky' needs sky_sigma, the per-band sky noise in counts")
        sky = np.asarray(sky_sigma, dtype=np.float32).reshape(-1)
        if sky.shape != (b,) or not np.all(np.isfinite(sky)) or np.any(sky < 0):
            raise ValueError(f"sky_sigma: expected {b} finite values >= 0 (counts), got {sky!r}")
        z = standard_normal((n * b, idx.size), seed).reshape(n, b, idx.size)
        values = _on(sky, x)[None, :, None] * _on(z, x)
    else:
        values = torch.zeros((), dtype=torch.float32, device=x.device)
    if idx.size and n:
        out.view(n, b, h * w)[:, :, _on(idx, x)] = values
    return out


def occlude_annulus(
    images: torch.Tensor,
    radius_px: float,
    width_px: float = 5.0,
    fill: str = "zero",
    sky_sigma: np.ndarray | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Replace an annulus [radius, radius + width) pixels.

    See :func:`lensfind.probes.kernels.occlude_annulus`.
    """
    r = _nonneg("radius_px", radius_px)
    return _occlusion(images, r, r + _nonneg("width_px", width_px), fill, sky_sigma, seed)


def occlude_disk(
    images: torch.Tensor,
    radius_px: float,
    fill: str = "zero",
    sky_sigma: np.ndarray | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Replace the pixels closer than ``radius_px``.

    See :func:`lensfind.probes.kernels.occlude_disk`.
    """
    return _occlusion(images, 0.0, _nonneg("radius_px", radius_px), fill, sky_sigma, seed)


def rotate(images: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """Bilinear rotation about ``(H // 2, W // 2)``.

    See :func:`lensfind.probes.kernels.rotate`.
    """
    angle = float(angle_deg)
    if not np.isfinite(angle):
        raise ValueError(f"angle_deg: expected a finite angle, got {angle_deg!r}")
    x = _batch(images)
    if angle % 360.0 == 0.0 or x.numel() == 0:
        return x.clone()
    n, b, h, w = x.shape
    idx, wts = bilinear_plan((h, w), angle)
    flat = x.reshape(n, b, h * w)
    g = [flat.index_select(2, _on(idx[:, k].astype(np.int64), x)) for k in range(4)]
    wt = _on(wts, x)
    value = (wt[:, 0] * g[0] + wt[:, 1] * g[1]) + (wt[:, 2] * g[2] + wt[:, 3] * g[3])
    inside = _on(np.any(wts != 0, axis=1), x)
    return torch.where(inside, value, torch.zeros((), device=x.device)).reshape(n, b, h, w)
