"""Cutting stamps out of tile images (pure functions)."""

import numpy as np

EDGE = "edge: cutout extends beyond the tile"
INVALID = "invalid: non-finite position"
#: pixel positions beyond this are off any tile (keeps the integer conversion exact)
_FAR = 2.0**40
#: stamps cut and checked together (a few MB: the check reads them from cache)
_BLOCK = 32


def nan_reason(band: str, n_pixels: int) -> str:
    return f"masked: {n_pixels} non-finite (NaN/inf) pixel(s) in band {band}"


def cut_stamps(
    images: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    bands: tuple[str, ...],
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Cut ``size x size`` stamps centred on pixel positions ``(x, y)`` (0-based).

    The centre pixel is the nearest pixel to ``(x, y)`` (halves round up) and
    sits at index ``size // 2`` of the stamp (numpy convention, as in training).
    Only the good stamps are returned, in input order, so that the store and
    the model take them without another copy.

    Parameters
    ----------
    images : list of ndarray (H, W)
        One image per band, any float or integer type and byte order (FITS
        memory maps are read only where stamps fall).
    x, y : ndarray (N,)
        Column and row positions, pixels.
    size : int
        Stamp side, pixels.
    bands : tuple of str
        Band names, for skip reasons.
    out : ndarray (>= N, bands, size, size) float32, optional
        Where to cut (a buffer reused from shard to shard saves the kernel
        zeroing fresh pages); the returned stamps are then a view of it.

    Returns
    -------
    stamps : ndarray (M, bands, size, size) float32
        The stamps of the ``M`` objects whose reason is ``""``.
    reasons : list of str (N,)
        ``""`` for a good stamp, else why the object is skipped.
    """
    n = len(x)
    h, w = images[0].shape
    half = size // 2
    with np.errstate(invalid="ignore"):
        xi = np.floor(np.asarray(x, dtype=np.float64) + 0.5)
        yi = np.floor(np.asarray(y, dtype=np.float64) + 0.5)
    finite = np.isfinite(xi) & np.isfinite(yi)
    x0 = np.clip(np.where(finite, xi, 0.0), -_FAR, _FAR).astype(np.int64) - half
    y0 = np.clip(np.where(finite, yi, 0.0), -_FAR, _FAR).astype(np.int64) - half
    inside = finite & (x0 >= 0) & (y0 >= 0) & (x0 + size <= w) & (y0 + size <= h)
    reasons = [""] * n
    for k in np.flatnonzero(~inside).tolist():
        reasons[k] = EDGE if finite[k] else INVALID
    idx = np.flatnonzero(inside)
    shape = (len(idx), len(images), size, size)
    if out is None:
        stamps = np.empty(shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape[1:] != shape[1:] or len(out) < n:
        raise ValueError(f"out must be float32 (>= {n}, {shape[1]}, {size}, {size})")
    else:
        stamps = out[: len(idx)]
    sums = np.empty(shape[:2], dtype=np.float32)
    ys, xs = y0[idx].tolist(), x0[idx].tolist()
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(idx), _BLOCK):
            block = stamps[start : start + _BLOCK]
            for j in range(len(block)):
                ya, xa = ys[start + j], xs[start + j]
                for b, img in enumerate(images):
                    # straight into the buffer (converting type and byte order): no
                    # temporary array, which a Dask worker (malloc trim threshold set)
                    # would map and fault in page by page
                    block[j, b] = img[ya : ya + size, xa : xa + size]
            block.sum(axis=(2, 3), dtype=np.float32, out=sums[start : start + _BLOCK])
    # a stamp with a non-finite pixel has a non-finite sum (a finite sum can overflow:
    # those are checked pixel by pixel and kept)
    suspect = np.flatnonzero(~np.isfinite(sums).all(axis=1))
    masked = set()
    for j in suspect.tolist():
        bad = ~np.isfinite(stamps[j])
        if bad.any():
            band = int(np.argmax(bad.any(axis=(1, 2))))
            reasons[int(idx[j])] = nan_reason(bands[band], int(bad[band].sum()))
            masked.add(j)
    if masked:  # rare: close the gaps in place (no copy of the whole buffer)
        to = min(masked)
        for j in range(to + 1, len(idx)):
            if j not in masked:
                stamps[to] = stamps[j]
                to += 1
        stamps = stamps[:to]
    return stamps, reasons
