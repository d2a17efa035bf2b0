"""float16 cutout encoding: scale and round to IEEE half precision, and back, in one pass.

numpy converts float32 <-> float16 one element at a time (about 2.5 ns per
pixel here, more than writing the bytes saves). These numba kernels do the
same conversion with integer arithmetic that the compiler vectorises. For
float32 ``x`` and ``s`` the results are bit-identical to
``np.clip(x / s, -65504, 65504).astype(np.float16)`` and ``h.astype(np.float32) * s``
(round to nearest even, subnormals included; checked over every half value by the tests).

The float -> half rounding is F. Giesen's ``float_to_half_fast3_rtne``, the
half -> float expansion his ``half_to_float_fast5`` (public domain).
"""

import numpy as np
from numba import njit

from lensfind.engine.buffers import scratch

#: largest finite float16
F16_MAX = np.float32(65504.0)
_SIGN = np.uint32(0x80000000)
#: ((15 - 127) << 23) + 0xfff, modulo 2^32: rebias the exponent, round half up
_REBIAS_ROUND = np.uint32(0xC8000FFF)
#: (126 << 23), the float 0.5: adding it aligns a subnormal half's mantissa
_DENORM_MAGIC = np.uint32(0x3F000000)
_DENORM_MAGIC_F = np.float32(0.5)
#: float32 bits of the smallest normal float16 (2^-14)
_MIN_NORMAL = np.uint32(113 << 23)
#: (127 - 15) << 23: half exponent bias -> float exponent bias
_EXP_ADJUST = np.uint32((127 - 15) << 23)
#: exponent bits of a half (all set: inf or nan)
_HALF_EXP = np.uint32(0x7C00)
#: round half up at, and drop, the 13 mantissa bits a half does not have
_ROUND = np.uint32(0xFFF)
_KEEP = np.uint32(0xFFFFE000)
#: float 2^-14 (bits 113 << 23): subtracted to renormalise a subnormal half
_SUBNORMAL_F = np.float32(2.0**-14)


@njit(inline="always")
def _bits(x):  # type: ignore[no-untyped-def]
    return np.float32(x).view(np.uint32)


@njit(inline="always")
def _float(b):  # type: ignore[no-untyped-def]
    return np.uint32(b).view(np.float32)


@njit(inline="always")
def encode_row(src, s, dst, write_back):  # type: ignore[no-untyped-def]
    """float16 bits of ``src / s`` (clipped) into ``dst``; returns the clipped count.

    With ``write_back``, ``src`` becomes what the bits decode to (times ``s``),
    computed from the rounding itself rather than by decoding ``dst``. One
    loop of selects without branches, which the compiler vectorises.
    """
    clipped = 0
    for k in range(len(src)):
        v = src[k] / s
        c = min(max(v, -F16_MAX), F16_MAX)
        clipped += c != v
        f = _bits(c)
        sign = f & _SIGN
        f ^= sign
        odd = (f >> np.uint32(13)) & np.uint32(1)
        normal = (f + _REBIAS_ROUND + odd) >> np.uint32(13)
        aligned = abs(c) + _DENORM_MAGIC_F  # a subnormal half's bits in the low mantissa
        tiny = f < _MIN_NORMAL
        half = _bits(aligned) - _DENORM_MAGIC if tiny else normal
        dst[k] = np.uint16(half | (sign >> np.uint32(16)))
        if write_back:  # the float32 value of the half: the same rounding, exponent kept
            # (a subnormal: exact, a multiple of 2^-24 below 2^-14)
            value = _bits(aligned - _DENORM_MAGIC_F) if tiny else (f + _ROUND + odd) & _KEEP
            src[k] = _float(value | sign) * s
    return clipped


@njit(inline="always")
def decode_row(bits, s, dst):  # type: ignore[no-untyped-def]
    """float32 ``half * s`` of the float16 ``bits`` into ``dst``."""
    for k in range(len(bits)):
        h = np.uint32(bits[k])
        o = ((h & np.uint32(0x7FFF)) << np.uint32(13)) + _EXP_ADJUST
        exp = h & _HALF_EXP
        # zero / subnormal: renormalised by a float subtraction
        sub = _bits(_float(o + np.uint32(1 << 23)) - _SUBNORMAL_F)
        o = o + _EXP_ADJUST if exp == _HALF_EXP else (sub if exp == 0 else o)
        dst[k] = _float(o | ((h & np.uint32(0x8000)) << np.uint32(16))) * s


@njit(nogil=True, cache=True)
def _encode(images, scale, out):  # type: ignore[no-untyped-def]
    n, bands = images.shape[:2]
    clipped = 0
    for i in range(n):
        for b in range(bands):
            clipped += encode_row(images[i, b], scale[b], out[i, b], False)
    return clipped


@njit(nogil=True, cache=True)
def _decode(bits, scale, out):  # type: ignore[no-untyped-def]
    n, bands = bits.shape[:2]
    for i in range(n):
        for b in range(bands):
            decode_row(bits[i, b], scale[b], out[i, b])
    return out


def encode_float16(images: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, int]:
    """``images / scale`` rounded to float16, clipped to its finite range.

    Parameters
    ----------
    images : ndarray (N, bands, H, W) float32
        Finite cutouts, counts.
    scale : ndarray (bands,)
        Counts per stored unit, per band.

    Returns
    -------
    half : ndarray (N, bands, H, W) float16
        This thread's scratch array: valid until its next call.
    clipped : int
        Pixels beyond +-65504 units, stored as +-65504.
    """
    n, bands = images.shape[:2]
    src = np.ascontiguousarray(images, dtype=np.float32).reshape(
        n, bands, int(np.prod(images.shape[2:]))
    )
    out = scratch("float16", src.shape, np.uint16)
    scale32 = np.asarray(scale, dtype=np.float32)
    clipped = int(_encode(src, scale32, out)) if out.size else 0
    return out.view(np.float16).reshape(images.shape), clipped


def decode_float16(half: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 ``half * scale`` (counts) of float16 cutouts ``(N, bands, H, W)``."""
    n, bands = half.shape[:2]
    bits = (
        np.ascontiguousarray(half).view(np.uint16).reshape(n, bands, int(np.prod(half.shape[2:])))
    )
    out = np.empty(bits.shape, dtype=np.float32)
    if out.size:
        _decode(bits, np.asarray(scale, dtype=np.float32), out)
    return out.reshape(half.shape)
