"""Batched perturbation kernels for the sensitivity probe (Jacobs et al. 2022, sect. 4).

Every kernel takes a float32 batch ``(N, bands, H, W)`` in raw image counts and
returns a new float32 array of the same shape; the input is never modified (the
numba cores only ever see a read-only view of it). The object sits on pixel
``(H // 2, W // 2)``, as cut by :func:`lensfind.engine.cutouts.cut_stamps`, and
distances are measured between pixel centres.

Randomness is deterministic given ``seed`` and independent of the thread count:

- colour factors are drawn with ``numpy.random.default_rng(seed)``;
- the bulk Gaussian fields (pixel noise, sky fill) come from
  :func:`standard_normal`, whose value at flat index ``c`` depends only on
  ``(seed, c)``: a SplitMix64 hash of the counter (keyed by
  ``numpy.random.SeedSequence(seed)``) fed to a 256-layer ziggurat
  (Marsaglia & Tsang 2000), generated in parallel inside the kernels. NumPy's
  single-threaded generators are too slow for the required throughput (each
  kernel at least 10x the model's scoring rate).

The same seed gives the same random field at every strength (common random
numbers), and an image's noise depends on its index within the batch.
"""

import numpy as np

from lensfind.probes.kernel_cores import _bilinear, _blur, _noise, _occlude, _scale
from lensfind.probes.kernel_geometry import (
    FILLS,
    bilinear_plan,
    gaussian_kernel,
    radial_indices,
    reflect_index,
)
from lensfind.probes.random_fields import (
    _key,
    colour_factors,
)


# ------------------------------------------------------------------- public kernels
def _batch(images: np.ndarray) -> np.ndarray:
    """C-contiguous float32 read-only view (or converted copy) of a 4-D batch."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"images: expected (N, bands, H, W), got shape {arr.shape}")
    view = np.ascontiguousarray(arr, dtype=np.float32).view()
    view.flags.writeable = False
    return view


def _planes(arr: np.ndarray) -> np.ndarray:
    n, b, h, w = arr.shape
    return arr.reshape(n * b, h * w)


def _strength(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")
    return v


def colour_jitter(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Multiply each band of each image by an independent factor ``~ N(1, sigma)``.

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    sigma : float
        Standard deviation of the factors (dimensionless; the paper uses 0-1).
        Factors can be negative for large sigma, as in the paper.
    seed : int
        Seed of the factors (see :func:`colour_factors`).

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Jittered cutouts in counts.
    """
    sigma = _strength("sigma", sigma)
    x = _batch(images)
    f = colour_factors(x.shape[0], x.shape[1], sigma, seed)
    if sigma == 0.0:
        return x.copy()
    out = np.empty_like(x)
    _scale(_planes(x), f.reshape(-1), _planes(out))
    return out


def flux_scale(images: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every pixel by ``factor`` (float32 arithmetic).

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    factor : float
        Flux scale factor (dimensionless).

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Scaled cutouts in counts.
    """
    if not np.isfinite(float(factor)):
        raise ValueError(f"factor: expected a finite number, got {factor!r}")
    x = _batch(images)
    f = np.full(x.shape[0] * x.shape[1], factor, dtype=np.float32)
    out = np.empty_like(x)
    _scale(_planes(x), f, _planes(out))
    return out


def gaussian_blur(images: np.ndarray, sigma_px: float) -> np.ndarray:
    """Convolve each band with a circular Gaussian (separable, truncated at 4 sigma).

    Equal to ``scipy.ndimage.gaussian_filter(x, (0, 0, s, s), mode='reflect',
    truncate=4.0)`` up to float32 rounding, for any kernel radius, including
    radii larger than the stamp (the reflection repeats with period ``2 n``).

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    sigma_px : float
        Standard deviation of the Gaussian, pixels; 0 returns a copy.

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Blurred cutouts in counts.
    """
    sigma_px = _strength("sigma_px", sigma_px)
    x = _batch(images)
    if sigma_px == 0.0 or x.size == 0:
        return x.copy()
    phi = gaussian_kernel(sigma_px)
    r = phi.size // 2
    n, b, h, w = x.shape
    rows = reflect_index(np.arange(-r, h + r), h).astype(np.int64)
    cols = reflect_index(np.arange(-r, w + r), w).astype(np.int64)
    out = np.empty_like(x)
    _blur(x.reshape(n * b, h, w), phi[r:].astype(np.float32), rows, cols, out.reshape(n * b, h, w))
    return out


def gaussian_noise(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add Gaussian noise of ``sigma`` per-band standard deviations (Jacobs et al. 2022, 4.6).

    The paper standardises each (image, band) to zero mean and unit standard
    deviation, ``X' = (X - mu) / s``, and adds N(0, sigma^2) per pixel; mapped back to
    counts this is ``X + sigma * s * Z``, with ``s`` the population (ddof 0)
    standard deviation of the band and ``Z = standard_normal(images.shape, seed)``.
    A constant band (``s = 0``) gets no noise.

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    sigma : float
        Noise standard deviation in units of each band's standard deviation
        (the paper uses 0-30).
    seed : int
        Seed of the noise field.

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Noisy cutouts in counts.
    """
    sigma = _strength("sigma", sigma)
    x = _batch(images)
    key = _key(seed)
    if sigma == 0.0 or x.size == 0:
        return x.copy()
    n, b, h, w = x.shape
    out = np.empty_like(x)
    _noise(x.reshape(n * b, h, w), sigma, key, out.reshape(n * b, h, w))
    return out


def _sky(fill: str, sky_sigma: np.ndarray | None, n_bands: int) -> np.ndarray:
    if fill not in FILLS:
        raise ValueError(f"fill: expected one of {', '.join(map(repr, FILLS))}, got {fill!r}")
    if fill == "zero":
        return np.zeros(n_bands, np.float32)
    if sky_sigma is None:
        raise ValueError("fill='sky' needs sky_sigma, the per-band sky noise in counts")
    sky = np.asarray(sky_sigma, dtype=np.float32).reshape(-1)
    if sky.shape != (n_bands,) or not np.all(np.isfinite(sky)) or np.any(sky < 0):
        raise ValueError(
            f"sky_sigma: expected {n_bands} finite values >= 0 (counts), got {sky_sigma!r}"
        )
    return sky


def _occlusion(
    images: np.ndarray,
    r_in: float,
    r_out: float,
    fill: str,
    sky_sigma: np.ndarray | None,
    seed: int,
) -> np.ndarray:
    x = _batch(images)
    sky = _sky(fill, sky_sigma, x.shape[1])
    key = _key(seed)
    idx = radial_indices(x.shape[2:], r_in, r_out)
    if idx.size == 0 or x.shape[0] == 0:
        return x.copy()
    out = np.empty_like(x)
    _occlude(_planes(x), idx.astype(np.int64), np.tile(sky, x.shape[0]), fill == "sky", key,
             _planes(out))  # fmt: skip
    return out


def occlude_annulus(
    images: np.ndarray,
    radius_px: float,
    width_px: float = 5.0,
    fill: str = "zero",
    sky_sigma: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Replace pixels at distance [radius, radius + width) from the stamp centre.

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    radius_px : float
        Inner radius of the annulus, pixels.
    width_px : float
        Width of the annulus, pixels (the paper: 5).
    fill : {'zero', 'sky'}
        ``'zero'`` as the paper, or ``'sky'``: N(0, sky_sigma[band]^2) counts,
        ``sky_sigma[band] * standard_normal((N * bands, M), seed)`` over the M
        masked pixels in flat order.
    sky_sigma : array (bands,), optional
        Per-band sky noise, counts; required for ``fill='sky'``.
    seed : int
        Seed of the sky fill.

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Occluded cutouts in counts.
    """
    r = _strength("radius_px", radius_px)
    return _occlusion(images, r, r + _strength("width_px", width_px), fill, sky_sigma, seed)


def occlude_disk(
    images: np.ndarray,
    radius_px: float,
    fill: str = "zero",
    sky_sigma: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Replace pixels at distance < radius from the stamp centre (see :func:`occlude_annulus`).

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    radius_px : float
        Disk radius, pixels; 0 returns a copy.
    fill, sky_sigma, seed
        As :func:`occlude_annulus`.

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Occluded cutouts in counts.
    """
    r = _strength("radius_px", radius_px)
    return _occlusion(images, 0.0, r, fill, sky_sigma, seed)


def rotate(images: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate each stamp about its object pixel ``(H // 2, W // 2)``, bilinear.

    Counter-clockwise for positive angles as displayed with the origin at the
    lower left (``imshow(origin='lower')``): ``rotate(x, 90)`` equals
    ``np.rot90(x, -1, axes=(2, 3))`` for odd square stamps. The centre is the
    object pixel, not the array centre ``(H - 1) / 2`` of scipy.ndimage.rotate;
    for odd sizes, where they agree, ``rotate(x, a)`` equals
    ``scipy.ndimage.rotate(x, -a, axes=(3, 2), reshape=False, order=1)``.
    Source positions outside the stamp give 0, as
    ``scipy.ndimage.affine_transform(..., order=1, mode='constant', cval=0)``.

    Parameters
    ----------
    images : ndarray (N, bands, H, W)
        Cutouts in counts.
    angle_deg : float
        Rotation angle, degrees; multiples of 360 return a copy.

    Returns
    -------
    ndarray (N, bands, H, W) float32
        Rotated cutouts in counts.
    """
    angle = float(angle_deg)
    if not np.isfinite(angle):
        raise ValueError(f"angle_deg: expected a finite angle, got {angle_deg!r}")
    x = _batch(images)
    if angle % 360.0 == 0.0 or x.size == 0:
        return x.copy()
    n, b, h, w = x.shape
    idx, wts = bilinear_plan((h, w), angle)
    flat = x.reshape(n, b, h * w)
    if h < 2 or w < 2:  # degenerate stamps: neighbours are not q, q + 1, q + W, q + W + 1
        return np.einsum("nbpk,pk->nbp", flat[:, :, idx], wts).reshape(x.shape)
    q = np.where(wts.any(axis=1), idx[:, 0], -1)
    out = np.empty_like(x)
    _bilinear(flat, q, wts, w, out.reshape(n, b, h * w))
    return out
