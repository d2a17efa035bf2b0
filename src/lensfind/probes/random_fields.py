"""Counter-based random fields for the perturbation kernels.

The value at flat index ``c`` of :func:`standard_normal` depends only on
``(seed, c)``: a SplitMix64 hash of the counter (keyed by
``numpy.random.SeedSequence(seed)``) fed to a 256-layer ziggurat (Marsaglia &
Tsang 2000), generated in parallel, so fields are identical for any thread
count. NumPy's single-threaded generators are too slow for the kernels'
throughput goal (each at least 10x the model's scoring rate).
"""

import numpy as np
from numba import njit, prange

_kernel = njit(parallel=True, cache=True, fastmath=False)
_CHUNK = 4096  # normals generated per inner block

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD1B54A32D192ED03)
_U1, _U8, _U11 = np.uint64(1), np.uint64(8), np.uint64(11)
_U27, _U30, _U31, _U32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)
_LOW8, _LOW32 = np.uint64(0xFF), np.uint64(0xFFFFFFFF)
_HALF = 1 << 23  # |hz| < 2**23: 24-bit signed ziggurat draws
_ZIG_R, _ZIG_V = 3.6541528853610088, 0.00492867323399  # 256 layers


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kn, wn, fn = np.zeros(256, np.int64), np.zeros(256), np.zeros(256)
    dn = tn = _ZIG_R
    q = _ZIG_V / np.exp(-0.5 * dn * dn)
    kn[0], wn[0], wn[255] = int(dn / q * _HALF), q / _HALF, dn / _HALF
    fn[0], fn[255] = 1.0, np.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = np.sqrt(-2.0 * np.log(_ZIG_V / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1], tn = int(dn / tn * _HALF), dn
        fn[i], wn[i] = np.exp(-0.5 * dn * dn), dn / _HALF
    return kn, wn, fn


_KN, _WN, _FN = _ziggurat_tables()
_WN32 = _WN.astype(np.float32)


@njit(inline="always")
def _mix(z):  # SplitMix64 finaliser
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@njit(inline="always")
def _uniform(h):  # in (0, 1)
    return (np.float64(h >> _U11) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _normal_slow(key, c, iz, hz):  # ziggurat wedge and tail, 1.5 % of draws
    s = _mix((key ^ _SALT) + c * _G)
    while True:
        x = np.float64(np.float32(hz) * _WN32[iz])
        if iz == 0:
            while True:
                s += _G
                xx = -np.log(_uniform(_mix(s))) / _ZIG_R
                s += _G
                yy = -np.log(_uniform(_mix(s)))
                if yy + yy >= xx * xx:
                    return _ZIG_R + xx if hz > 0 else -(_ZIG_R + xx)
        s += _G
        if _FN[iz] + _uniform(_mix(s)) * (_FN[iz - 1] - _FN[iz]) < np.exp(-0.5 * x * x):
            return x
        s += _G
        u = _mix(s) & _LOW32
        iz = np.int64(u & _LOW8)
        hz = np.int64(u >> _U8) - _HALF
        if abs(hz) < _KN[iz]:
            return np.float32(hz) * _WN32[iz]


@njit(cache=True)
def _fill_normal(key, start, out):
    """Standard normals for counters ``start .. start + out.size - 1`` into ``out``.

    Counter ``c`` uses half ``c % 2`` of the hash of ``c // 2``; the fast
    ziggurat path runs branch-free and rejected draws are redone afterwards.
    """
    n = out.size
    halves = np.empty(_CHUNK + 2, np.uint32)
    rejected = np.empty(_CHUNK, np.int64)
    for lo in range(0, n, _CHUNK):
        m = min(_CHUNK, n - lo)
        c0 = start + np.uint64(lo)
        odd = np.int64(c0 & _U1)
        base = key + (c0 >> _U1) * _G
        for i in range((m + odd + 1) // 2):  # vectorised by LLVM
            h = _mix(base + np.uint64(i) * _G)
            halves[2 * i] = np.uint32(h & _LOW32)
            halves[2 * i + 1] = np.uint32(h >> _U32)
        o, draws = out[lo : lo + m], halves[odd : odd + m]
        n_rej = 0
        for i in range(m):
            u = draws[i]
            iz = u & _LOW8
            hz = np.int64(u >> _U8) - _HALF
            o[i] = np.float32(hz) * _WN32[iz]
            rejected[n_rej] = i
            n_rej += abs(hz) >= _KN[iz]
        for r in range(n_rej):
            i = rejected[r]
            u = draws[i]
            o[i] = _normal_slow(key, c0 + np.uint64(i), np.int64(u & _LOW8),
                                np.int64(u >> _U8) - _HALF)  # fmt: skip


@_kernel
def _normal_flat(key, out):  # out (n,): element c gets counter c
    n = out.size
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        lo = c * _CHUNK
        _fill_normal(key, np.uint64(lo), out[lo : min(n, lo + _CHUNK)])


def _key(seed: int) -> np.uint64:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return np.uint64(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0])


def standard_normal(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Standard normal float32 field whose flat element ``c`` depends only on ``(seed, c)``.

    Parameters
    ----------
    shape : tuple of int
        Output shape.
    seed : int
        Non-negative seed.

    Returns
    -------
    ndarray
        float32 array of N(0, 1) draws (dimensionless), C order.
    """
    key = _key(seed)
    out = np.empty(shape, np.float32)
    _normal_flat(key, out.reshape(-1))
    return out


def colour_factors(n_images: int, n_bands: int, sigma: float, seed: int) -> np.ndarray:
    """Per-band colour-jitter factors ``~ N(1, sigma)``, drawn with ``default_rng(seed)``.

    Parameters
    ----------
    n_images, n_bands : int
        Output shape.
    sigma : float
        Standard deviation of the factors (dimensionless).
    seed : int
        Non-negative seed.

    Returns
    -------
    ndarray (n_images, n_bands) float32
        Multiplicative factors (dimensionless).
    """
    _key(seed)
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, float(sigma), size=(n_images, n_bands)).astype(np.float32)
