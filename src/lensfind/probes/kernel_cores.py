"""The numba cores behind :mod:`lensfind.probes.kernels` (private: use the public kernels).

Each core works on planes ``(planes, P)`` or ``(planes, H, W)`` of float32
and writes into ``out``; ``prange`` runs over images or planes, and the random
fields come from :mod:`lensfind.probes.random_fields` (counter-based, so the
result does not depend on the thread count).
"""

import numpy as np
from numba import njit, prange

from lensfind.probes.random_fields import (
    _fill_normal,
)

_kernel = njit(parallel=True, cache=True, fastmath=False)  # prange over images or planes


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
