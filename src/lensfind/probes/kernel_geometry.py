"""Geometry of the perturbations, shared by the numba and torch kernels.

Pure numpy plans computed once per strength: Gaussian weights, reflected
indices, annulus pixel indices and the bilinear sampling plan of a rotation.
The object sits on pixel ``(H // 2, W // 2)``; distances are between pixel
centres.
"""

import numpy as np

#: Gaussian kernel radius in sigma, as scipy.ndimage's default.
TRUNCATE = 4.0
#: Occlusion fills: zeros, or sky noise of the band's sigma.
FILLS = ("zero", "sky")


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """Normalised 1-D Gaussian weights for ``sigma_px`` pixels, as scipy.ndimage.

    Returns
    -------
    ndarray (2 r + 1,) float64
        Weights at offsets ``-r .. r`` pixels, ``r = int(4 sigma_px + 0.5)``.
    """
    radius = int(TRUNCATE * sigma_px + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma_px * sigma_px) * x * x)
    return phi / phi.sum()


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Map indices onto ``0 .. size - 1`` as scipy.ndimage's ``'reflect'`` (dcba|abcd|dcba)."""
    m = np.mod(index, 2 * size)
    return np.where(m >= size, 2 * size - 1 - m, m)


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
