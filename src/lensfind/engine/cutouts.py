"""Cutting stamps out of tile images (pure functions).

One numba kernel cuts, checks and (for a float16 store) encodes each stamp
while it is in cache: a shard's stamps are a few hundred MB, and every extra
pass over them costs as much as the cutting itself.
"""

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import as_strided

from lensfind.engine.half import encode_row

EDGE = "edge: cutout extends beyond the tile"
INVALID = "invalid: non-finite position"
#: pixel positions beyond this are off any tile (keeps the integer conversion exact)
_FAR = 2.0**40
#: stamps converted together when the tile is not float32 (a few MB: stays in cache)
_BLOCK = 16
_EXP = np.uint32(0x7F800000)


def nan_reason(band: str, n_pixels: int) -> str:
    return f"masked: {n_pixels} non-finite (NaN/inf) pixel(s) in band {band}"


@njit(inline="always")
def _bswap(v):  # type: ignore[no-untyped-def]
    return (
        ((v >> np.uint32(24)) & np.uint32(0xFF))
        | ((v >> np.uint32(8)) & np.uint32(0xFF00))
        | ((v << np.uint32(8)) & np.uint32(0xFF0000))
        | (v << np.uint32(24))
    )


@njit(nogil=True, cache=True)
def _cut(images, swap, x0, y0, first, stamps, to, scale, half, chunk, chunk_step, item_step,  # type: ignore[no-untyped-def]
         nonfinite, encode):  # fmt: skip
    """Cut objects ``first + j`` at corners ``(x0[j], y0[j])`` into ``stamps[to:]``.

    ``images`` are the bands' float32 pixels viewed as uint32 (``swap``: byte
    order not native). A stamp with non-finite pixels records their count per
    band in ``nonfinite[first + j]`` and its slot is reused by the next one.
    With ``encode`` each good stamp's float16 bits (``/ scale``) go to
    ``half[(to // chunk) * chunk_step + (to % chunk) * item_step:]`` and the
    stamp becomes what they decode to. Returns the next free slot and the
    pixels clipped to the float16 range.
    """
    size = stamps.shape[2]
    px = size * size
    clipped = 0
    for j in range(len(x0)):
        bad = 0
        stamp_clipped = 0
        for b in range(len(images)):
            img = images[b]
            bits = stamps[to, b].reshape(px).view(np.uint32)
            for r in range(size):
                src = img[y0[j] + r, x0[j] : x0[j] + size]
                row_start = r * size
                if swap:  # two loops: each one vectorises
                    for k in range(size):
                        bits[row_start + k] = _bswap(src[k])
                else:
                    for k in range(size):
                        bits[row_start + k] = src[k]
            n_bad = 0
            for k in range(px):  # NaN and inf: all exponent bits set
                n_bad += (bits[k] & _EXP) == _EXP
            nonfinite[first + j, b] = n_bad
            bad += n_bad
            if encode and bad == 0:
                flat = stamps[to, b].reshape(px)
                at = (to // chunk) * chunk_step + (to % chunk) * item_step + b * px
                dst = half[at : at + px]  # contiguous: the loop vectorises
                stamp_clipped += encode_row(flat, scale[b], dst, True)
        if bad == 0:
            to += 1
            clipped += stamp_clipped
    return to, clipped


def _as_bits(images: list[np.ndarray]) -> tuple[tuple[np.ndarray, ...], bool] | None:
    """The bands as uint32 views and whether to swap bytes; None unless C-contiguous float32."""
    dtypes = {img.dtype for img in images}
    if len(dtypes) != 1:
        return None
    dtype = dtypes.pop()
    if dtype.kind != "f" or dtype.itemsize != 4 or not all(i.flags.c_contiguous for i in images):
        return None
    return tuple(img.view(np.uint32) for img in images), not dtype.isnative


def cut_stamps(
    images: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    bands: tuple[str, ...],
    out: np.ndarray | None = None,
    encode: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str], int]:
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
    out : ndarray (>= N, bands, size, size) float32, C-contiguous, optional
        Where to cut (a buffer reused from shard to shard saves the kernel
        zeroing fresh pages); the returned stamps are then a view of it.
    encode : (scale, half), optional
        Also round each good stamp to float16 in units of ``scale`` (bands,),
        counts, and replace it by what the float16 value decodes to
        (:mod:`lensfind.engine.half`): the float16 store's encoding, done while
        the stamp is in cache. The bits of the ``i``-th good stamp go to
        ``half[i // chunk, i % chunk]``, ``half`` being float16 or uint16
        (chunks, chunk, bands, size, size) with room for N stamps, such as the
        :attr:`~lensfind.engine.shard_file.ShardFile.chunks` of the store's
        image file (a plain array of N stamps is ``half[None]``).

    Returns
    -------
    stamps : ndarray (M, bands, size, size) float32
        The stamps of the ``M`` objects whose reason is ``""``.
    reasons : list of str (N,)
        ``""`` for a good stamp, else why the object is skipped.
    clipped : int
        With ``encode``, pixels beyond +-65504 units, stored as +-65504; else 0.
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
    shape = (n, len(images), size, size)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape[1:] != shape[1:] or len(out) < n:
        raise ValueError(f"out must be float32 (>= {n}, {shape[1]}, {size}, {size})")
    elif not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if encode is None:
        scale, bits = np.ones(len(images), np.float32), np.empty(0, np.uint16)
        steps = (1, 0, 0)
    else:
        scale = np.asarray(encode[0], dtype=np.float32).ravel()
        half_in = encode[1]
        if (
            half_in.dtype.itemsize != 2
            or half_in.ndim != 5
            or half_in.shape[2:] != shape[1:]
            or half_in.shape[0] * half_in.shape[1] < n
        ):
            raise ValueError(f"half must be 16-bit (chunks, chunk, {shape[1]}, {size}, {size}) "
                             f"with room for {n} stamps")  # fmt: skip
        item = np.empty((1, *shape[1:]), np.uint16).strides[1:]
        if half_in.strides[2:] != item:
            raise ValueError("each stamp's place in half must be C-contiguous")
        steps = (half_in.shape[1], half_in.strides[0] // 2, half_in.strides[1] // 2)
        span = max((half_in.shape[0] - 1) * steps[1] + half_in.shape[1] * steps[2], 0)
        # the memory the chunks lie in, as one contiguous run
        bits = as_strided(half_in.view(np.uint16), shape=(span,), strides=(2,))
    nonfinite = np.zeros((len(idx), len(images)), dtype=np.int64)
    todo = (scale, bits, *steps, nonfinite, encode is not None)
    tiles = _as_bits(images)
    to, clipped = 0, 0
    if tiles is not None:  # float32 tiles (every survey's coadds): straight from the tile
        to, clipped = _cut(tiles[0], tiles[1], x0[idx], y0[idx], 0, out, 0, *todo)
    else:  # other pixel types: converted to float32 a few stamps at a time
        stage = np.empty((len(images), _BLOCK * size, size), dtype=np.float32)
        views = tuple(stage[b].view(np.uint32) for b in range(len(images)))
        zeros = np.zeros(_BLOCK, dtype=np.int64)
        rows = np.arange(_BLOCK, dtype=np.int64) * size
        for start in range(0, len(idx), _BLOCK):
            block = idx[start : start + _BLOCK]
            for j, k in enumerate(block.tolist()):
                for b, img in enumerate(images):
                    ya, xa = y0[k], x0[k]
                    stage[b, j * size : (j + 1) * size] = img[ya : ya + size, xa : xa + size]
            m = len(block)
            to, c = _cut(views, False, zeros[:m], rows[:m], start, out, to, *todo)
            clipped += c
    for j in np.flatnonzero(nonfinite.any(axis=1)).tolist():
        band = int(np.argmax(nonfinite[j] > 0))
        reasons[int(idx[j])] = nan_reason(bands[band], int(nonfinite[j, band]))
    return out[:to], reasons, int(clipped)
