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
from numba import njit, prange

from lensfind.probes.random_fields import (
    _fill_normal,
    _key,
    colour_factors,
)

_kernel = njit(parallel=True, cache=True, fastmath=False)  # prange over images or planes
_TRUNCATE = 4.0  # Gaussian kernel radius in sigma, as scipy.ndimage's default
FILLS = ("zero", "sky")


# ---------------------------------------------------------------------- numba cores
@_kernel
def _scale(x, f, out):  # x, out (planes, P); f (planes,)
    for k in prange(x.shape[0]):
        fk, xs, os = f[k], x[k], out[k]
        for p in range(xs.size):
            os[p] = xs[p] * fk


@njit(inline="always")
def _scal(t, a, w, n):  # t = w a
    for j in range(n):
        t[j] = w * a[j]


@njit(inline="always")
def _axpy2(t, a, b, w, n):  # t += w (a + b)
    for j in range(n):
        t[j] += w * (a[j] + b[j])


@njit(inline="always")
def _axpy4(t, a, b, c, d, wa, wc, n):  # t += w_a (a + b) + w_c (c + d)
    for j in range(n):
        t[j] += wa * (a[j] + b[j]) + wc * (c[j] + d[j])


@njit(inline="always")
def _acc_row(acc, row, shift, n):  # acc += row - shift, acc2 += (row - shift)^2
    for j in range(n):
        d = np.float64(row[j]) - shift
        acc[0, j] += d
        acc[1, j] += d * d


@_kernel
def _noise(x, sigma, key, out):  # x, out (planes, H, W)
    n_planes, h, w = x.shape
    n_pix = h * w
    for k in prange(n_planes):
        xs, os = x[k], out[k]
        shift = np.float64(xs[0, 0])  # shifted sums: no cancellation for bright bands
        acc = np.zeros((2, w))
        for i in range(h):
            _acc_row(acc, xs[i], shift, w)
        s1 = s2 = 0.0
        for j in range(w):
            s1 += acc[0, j]
            s2 += acc[1, j]
        mean = s1 / n_pix
        a = np.float32(sigma * np.sqrt(max(s2 / n_pix - mean * mean, 0.0)))
        flat = os.reshape(n_pix)
        _fill_normal(key, np.uint64(k) * np.uint64(n_pix), flat)
        for i in range(h):
            o, r = os[i], xs[i]
            for j in range(w):
                o[j] = r[j] + a * o[j]


@_kernel
def _occlude(x, idx, sky, use_sky, key, out):  # x, out (planes, P); sky (planes,)
    n_planes, m = x.shape[0], idx.size
    for k in prange(n_planes):
        xs, os = x[k], out[k]
        for p in range(xs.size):
            os[p] = xs[p]
        if use_sky:
            z = np.empty(m, np.float32)
            _fill_normal(key, np.uint64(k) * np.uint64(m), z)
            s = sky[k]
            for q in range(m):
                os[idx[q]] = s * z[q]
        else:
            for q in range(m):
                os[idx[q]] = 0.0


@njit(inline="always")
def _blur_line(t, src, w, r, n):  # t = sum_d w_d (src[r - d:] + src[r + d:]) over a row
    _scal(t, src[r:], w[0], n)
    d = 1
    while d < r:
        _axpy4(t, src[r - d :], src[r + d :], src[r - d - 1 :], src[r + d + 1 :], w[d], w[d + 1], n)
        d += 2
    if d == r:
        _axpy2(t, src[r - d :], src[r + d :], w[d], n)


@_kernel
def _blur(x, w, rows, cols, out):  # x, out (planes, H, W); w (r + 1,) centre first
    n_planes, h, wd = x.shape
    r = w.size - 1
    for k in prange(n_planes):
        xs, os = x[k], out[k]
        tmp = np.empty((h, wd), np.float32)
        pad = np.empty(wd + 2 * r, np.float32)
        for i in range(h):  # axis H first, as scipy; rows[i + r +- d] reflects
            t = tmp[i]
            _scal(t, xs[rows[i + r]], w[0], wd)
            d = 1
            while d < r:
                _axpy4(t, xs[rows[i + r - d]], xs[rows[i + r + d]], xs[rows[i + r - d - 1]],
                       xs[rows[i + r + d + 1]], w[d], w[d + 1], wd)  # fmt: skip
                d += 2
            if d == r:
                _axpy2(t, xs[rows[i + r - d]], xs[rows[i + r + d]], w[d], wd)
        for i in range(h):  # then axis W on a reflect-padded copy of each row
            t = tmp[i]
            mid = pad[r : r + wd]
            for j in range(wd):
                mid[j] = t[j]
            for j in range(r):
                pad[j] = t[cols[j]]
                pad[wd + r + j] = t[cols[wd + r + j]]
            _blur_line(os[i], pad, w, r, wd)


@_kernel
def _bilinear(x, q, wts, w, out):  # x, out (N, B, P); q top-left source pixel, -1 = outside
    n_img, n_band, n_pix = x.shape
    u1, uw, uw1 = np.uint64(1), np.uint64(w), np.uint64(w + 1)
    for n in prange(n_img):
        for b in range(n_band):
            s, o = x[n, b], out[n, b]
            for p in range(n_pix):
                if q[p] < 0:
                    o[p] = 0.0
                else:
                    u = np.uint64(q[p])
                    o[p] = (wts[p, 0] * s[u] + wts[p, 1] * s[u + u1]) + (
                        wts[p, 2] * s[u + uw] + wts[p, 3] * s[u + uw1]
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


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """Normalised 1-D Gaussian weights for ``sigma_px`` pixels, as scipy.ndimage.

    Returns
    -------
    ndarray (2 r + 1,) float64
        Weights at offsets ``-r .. r`` pixels, ``r = int(4 sigma_px + 0.5)``.
    """
    radius = int(_TRUNCATE * sigma_px + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma_px * sigma_px) * x * x)
    return phi / phi.sum()


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Map indices onto ``0 .. size - 1`` as scipy.ndimage's ``'reflect'`` (dcba|abcd|dcba)."""
    m = np.mod(index, 2 * size)
    return np.where(m >= size, 2 * size - 1 - m, m)


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


def radial_indices(shape: tuple[int, int], r_in_px: float, r_out_px: float) -> np.ndarray:
    """Flat indices of the pixels at distance [r_in, r_out) from ``(H // 2, W // 2)``.

    Parameters
    ----------
    shape : (int, int)
        Stamp shape ``(H, W)``, pixels.
    r_in_px, r_out_px : float
        Inner (included) and outer (excluded) radius, pixels, between pixel centres.

    Returns
    -------
    ndarray (M,) int64
        Indices into the flattened ``(H, W)`` stamp, ascending.
    """
    h, w = shape
    di = (np.arange(h) - h // 2).astype(np.float64)
    dj = (np.arange(w) - w // 2).astype(np.float64)
    d = np.sqrt(di[:, None] ** 2 + dj[None, :] ** 2)
    return np.flatnonzero((d >= r_in_px) & (d < r_out_px))


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


def rotation_matrix(angle_deg: float) -> np.ndarray:
    """Matrix mapping output ``(row, col)`` offsets to input offsets for a rotation.

    Counter-clockwise by ``angle_deg`` as displayed with the origin at the lower
    left; multiples of 90 degrees are exact.
    """
    a = float(angle_deg) % 360.0
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    c, s = exact.get(a, (np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))))
    return np.array([[c, -s], [s, c]])


def bilinear_plan(shape: tuple[int, int], angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Source pixels and bilinear weights of a rotation about ``(H // 2, W // 2)``.

    The source of output pixel ``o`` is ``M @ (o - c) + c`` (``M`` from
    :func:`rotation_matrix`, evaluated as scipy's ``M @ o + offset``); sources
    outside ``[0, H - 1] x [0, W - 1]`` get zero weights.

    Returns
    -------
    idx : ndarray (H * W, 4) intp
        Flat input indices of the neighbours (top-left, top-right, bottom-left,
        bottom-right); for ``H, W >= 2`` always ``q, q + 1, q + W, q + W + 1``.
    weights : ndarray (H * W, 4) float32
        Bilinear weights of those neighbours, all zero outside.
    """
    h, w = shape
    m = rotation_matrix(angle_deg)
    centre = np.array([h // 2, w // 2], dtype=np.float64)
    off = centre - m @ centre
    ii, jj = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")  # fmt: skip
    si = (ii * m[0, 0] + jj * m[0, 1] + off[0]).ravel()
    sj = (ii * m[1, 0] + jj * m[1, 1] + off[1]).ravel()
    inside = (si >= 0) & (si <= h - 1) & (sj >= 0) & (sj <= w - 1)
    i0 = np.clip(np.floor(si), 0, max(h - 2, 0)).astype(np.intp)
    j0 = np.clip(np.floor(sj), 0, max(w - 2, 0)).astype(np.intp)
    ti, tj = np.where(inside, si - i0, 0.0), np.where(inside, sj - j0, 0.0)
    i1, j1 = np.minimum(i0 + 1, h - 1), np.minimum(j0 + 1, w - 1)
    idx = np.stack([i0 * w + j0, i0 * w + j1, i1 * w + j0, i1 * w + j1], axis=1)
    wts = np.stack([(1 - ti) * (1 - tj), (1 - ti) * tj, ti * (1 - tj), ti * tj], axis=1)
    wts[~inside] = 0.0
    return idx, wts.astype(np.float32)


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
