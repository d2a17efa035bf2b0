"""Cutting stamps out of tile images (pure functions)."""

import numpy as np

EDGE = "edge: cutout extends beyond the tile"
INVALID = "invalid: non-finite position"


def nan_reason(band: str, n_pixels: int) -> str:
    return f"masked: {n_pixels} non-finite (NaN/inf) pixel(s) in band {band}"


def cut_stamps(
    images: list[np.ndarray], x: np.ndarray, y: np.ndarray, size: int, bands: tuple[str, ...]
) -> tuple[np.ndarray, list[str]]:
    """Cut ``size x size`` stamps centred on pixel positions ``(x, y)`` (0-based).

    The centre pixel is the nearest pixel to ``(x, y)`` and sits at index
    ``size // 2`` of the stamp (numpy convention, as in training).

    Parameters
    ----------
    images : list of ndarray (H, W)
        One image per band.
    x, y : ndarray (N,)
        Column and row positions, pixels.
    size : int
        Stamp side, pixels.
    bands : tuple of str
        Band names, for skip reasons.

    Returns
    -------
    stamps : ndarray (N, bands, size, size) float32
        Cut stamps; rows that are skipped are zero.
    reasons : list of str
        ``""`` for a good stamp, else why it is skipped.
    """
    n = len(x)
    h, w = images[0].shape
    stamps = np.zeros((n, len(images), size, size), dtype=np.float32)
    reasons = [""] * n
    with np.errstate(invalid="ignore"):
        xi = np.floor(np.asarray(x) + 0.5)
        yi = np.floor(np.asarray(y) + 0.5)
    half = size // 2
    for k in range(n):
        if not (np.isfinite(xi[k]) and np.isfinite(yi[k])):
            reasons[k] = INVALID
            continue
        x0, y0 = int(xi[k]) - half, int(yi[k]) - half
        if x0 < 0 or y0 < 0 or x0 + size > w or y0 + size > h:
            reasons[k] = EDGE
            continue
        for b, img in enumerate(images):
            stamps[k, b] = img[y0 : y0 + size, x0 : x0 + size]
        bad = ~np.isfinite(stamps[k])
        if bad.any():
            band = int(np.argmax(bad.any(axis=(1, 2))))
            reasons[k] = nan_reason(bands[band], int(bad[band].sum()))
            stamps[k] = 0.0
    return stamps, reasons
