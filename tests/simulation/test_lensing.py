"""SIE + external shear lensing against lenstronomy, and convention checks."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lenstronomy.LensModel.lens_model import LensModel
from numpy.testing import assert_allclose

from lensfind.simulation.lensing import ray_trace, rotate, shear_deflection, sie_deflection

HYP = settings(max_examples=60, deadline=None, database=None)

_LENSTRONOMY = LensModel(["SIE", "SHEAR"])
_RNG = np.random.default_rng(20240601)
_X = _RNG.uniform(-4.0, 4.0, 400)
_Y = _RNG.uniform(-4.0, 4.0, 400)


def _lenstronomy_kwargs(theta_e, q, phi, cx, cy, g1, g2):
    ellip = (1.0 - q) / (1.0 + q)
    return [
        {
            "theta_E": theta_e,
            "e1": ellip * np.cos(2 * phi),
            "e2": ellip * np.sin(2 * phi),
            "center_x": cx,
            "center_y": cy,
        },
        {"gamma1": g1, "gamma2": g2, "ra_0": cx, "dec_0": cy},
    ]


_CONFIGS = list(
    itertools.product(
        [0.5, 1.3, 2.7],  # theta_E
        [0.3, 0.6, 0.95, 1.0],  # q
        [0.0, 0.4, 1.9, -0.7],  # phi
        [(0.0, 0.0), (0.31, -0.22)],  # centre
        [(0.0, 0.0), (0.05, -0.03), (-0.12, 0.08)],  # shear
    )
)


@pytest.mark.parametrize("theta_e", [0.5, 1.3, 2.7])
def test_ray_trace_matches_lenstronomy(theta_e):
    worst = 0.0
    for te, q, phi, (cx, cy), (g1, g2) in _CONFIGS:
        if te != theta_e:
            continue
        kw = _lenstronomy_kwargs(te, q, phi, cx, cy, g1, g2)
        bx_ref, by_ref = _LENSTRONOMY.ray_shooting(_X, _Y, kw)
        bx, by = ray_trace(_X, _Y, te, q, phi, g1, g2, cx, cy)
        err = f"theta_E={te} q={q} phi={phi} c=({cx},{cy}) g=({g1},{g2})"
        assert_allclose(bx, bx_ref, rtol=0, atol=1e-7, err_msg=err)
        assert_allclose(by, by_ref, rtol=0, atol=1e-7, err_msg=err)
        worst = max(worst, np.abs(bx - bx_ref).max(), np.abs(by - by_ref).max())
    assert worst < 1e-7


def test_ray_trace_broadcasts_per_object_parameters():
    """Parameters of shape (N, 1, 1) against an (N, H, W) grid, as render uses them."""
    te = np.array([0.9, 1.6, 2.2])
    q = np.array([0.45, 0.8, 1.0])
    phi = np.array([0.3, 2.0, -1.0])
    g1 = np.array([0.02, -0.04, 0.0])
    g2 = np.array([0.01, 0.03, -0.06])
    e = (slice(None), None, None)
    gx, gy = np.meshgrid(np.linspace(-3, 3, 7), np.linspace(-2.5, 3.5, 5))
    x = np.broadcast_to(gx, (3, *gx.shape))
    y = np.broadcast_to(gy, (3, *gy.shape))
    bx, by = ray_trace(x, y, te[e], q[e], phi[e], g1[e], g2[e])
    assert bx.shape == (3, 5, 7)
    for i in range(3):
        kw = _lenstronomy_kwargs(te[i], q[i], phi[i], 0.0, 0.0, g1[i], g2[i])
        rx, ry = _LENSTRONOMY.ray_shooting(gx, gy, kw)
        assert_allclose(bx[i], rx, rtol=0, atol=1e-7)
        assert_allclose(by[i], ry, rtol=0, atol=1e-7)


def test_shear_deflection_against_lenstronomy():
    shear = LensModel(["SHEAR"])
    ax, ay = shear_deflection(_X, _Y, 0.07, -0.04)
    rx, ry = shear.alpha(_X, _Y, [{"gamma1": 0.07, "gamma2": -0.04}])
    assert_allclose(ax, rx, rtol=0, atol=1e-12)
    assert_allclose(ay, ry, rtol=0, atol=1e-12)


def _det_jacobian(theta_e, q, phi, half, n, h=1e-5):
    """det(d beta / d theta) of the SIE on an n x n pixel-centre grid, central differences."""
    c = (np.arange(n) + 0.5) / n * 2 * half - half
    x, y = np.meshgrid(c, c)

    def alpha(xx, yy):
        return sie_deflection(xx, yy, theta_e, q, phi)

    axp, ayp = alpha(x + h, y)
    axm, aym = alpha(x - h, y)
    bxp, byp = alpha(x, y + h)
    bxm, bym = alpha(x, y - h)
    a11 = 1 - (axp - axm) / (2 * h)
    a21 = -(ayp - aym) / (2 * h)
    a12 = -(bxp - bxm) / (2 * h)
    a22 = 1 - (byp - bym) / (2 * h)
    pixel_area = (2 * half / n) ** 2
    return a11 * a22 - a12 * a21, a12, a21, pixel_area


@pytest.mark.parametrize("q", [0.3, 0.6, 0.95, 1.0])
@pytest.mark.parametrize("phi", [0.0, 0.7])
def test_critical_curve_area_is_pi_theta_e_squared(q, phi):
    theta_e = 1.2
    # for q = 0.3 the curve reaches theta_E / sqrt(q) = 1.83 theta_E on the major axis
    det, a12, a21, pixel_area = _det_jacobian(theta_e, q, phi, half=2.3 * theta_e, n=500)
    # SIE: det A = 1 - 2 kappa, negative inside the (only, tangential) critical curve
    # and positive everywhere outside it
    inside = det < 0
    area = inside.sum() * pixel_area
    # tolerance: pixel counting of the curve on a 500^2 grid (measured < 0.1%)
    assert_allclose(area, np.pi * theta_e**2, rtol=5e-3)
    # the region is a single blob around the centre: the centre pixel is inside,
    # the corners outside
    n = det.shape[0]
    assert inside[n // 2, n // 2]
    assert not inside[0, 0] and not inside[-1, -1]
    # a deflection field from a potential has a symmetric Jacobian
    # (finite-difference truncation error grows near the centre: relative tolerance)
    assert_allclose(a12, a21, rtol=1e-5, atol=1e-6)


@HYP
@given(
    theta_e=st.floats(0.1, 5.0),
    r=st.floats(1e-4, 20.0),
    ang=st.floats(-np.pi, np.pi),
    phi=st.floats(-np.pi, np.pi),
    cx=st.floats(-2.0, 2.0),
    cy=st.floats(-2.0, 2.0),
)
def test_round_sie_deflection_has_magnitude_theta_e(theta_e, r, ang, phi, cx, cy):
    x = cx + r * np.cos(ang)
    y = cy + r * np.sin(ang)
    ax, ay = sie_deflection(np.array(x), np.array(y), theta_e, 1.0, phi, cx, cy)
    assert_allclose(np.hypot(ax, ay), theta_e, rtol=1e-9)
    # and it points from the centre to the position (radial, attractive)
    assert_allclose(np.arctan2(ay, ax), np.arctan2(y - cy, x - cx), rtol=0, atol=1e-6)


@HYP
@given(
    theta_e=st.floats(0.2, 4.0),
    q=st.floats(0.2, 1.0),
    phi=st.floats(-np.pi, np.pi),
    t=st.floats(-np.pi, np.pi),
    seed=st.integers(0, 2**16),
)
def test_sie_deflection_rotation_covariance(theta_e, q, phi, t, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-5, 5, (2, 32))
    cx, cy = rng.uniform(-1, 1, 2)
    ax, ay = sie_deflection(x, y, theta_e, q, phi, cx, cy)
    # rotate everything (positions, centre, mass position angle) counter-clockwise by t
    c, s = np.cos(t), np.sin(t)
    xr, yr = c * x - s * y, s * x + c * y
    cxr, cyr = c * cx - s * cy, s * cx + c * cy
    axr, ayr = sie_deflection(xr, yr, theta_e, q, phi + t, cxr, cyr)
    assert_allclose(axr, c * ax - s * ay, rtol=0, atol=1e-9 * theta_e * 10)
    assert_allclose(ayr, s * ax + c * ay, rtol=0, atol=1e-9 * theta_e * 10)


@HYP
@given(phi=st.floats(-np.pi, np.pi), x=st.floats(-10, 10), y=st.floats(-10, 10))
def test_rotate_is_inverse_of_rotation(phi, x, y):
    xr, yr = rotate(np.array(x), np.array(y), phi)
    # the frame rotated by phi: rotating back by -phi recovers the coordinates
    xb, yb = rotate(xr, yr, -phi)
    assert_allclose([xb, yb], [x, y], rtol=0, atol=1e-12)
    # a point on the frame's +x axis has y' = 0
    xa, ya = rotate(np.cos(phi), np.sin(phi), phi)
    assert_allclose([xa, ya], [1.0, 0.0], rtol=0, atol=1e-12)


def test_sie_is_finite_at_centre():
    ax, ay = sie_deflection(np.array([0.0, 0.5]), np.array([0.0, 0.0]), 1.0, 0.5, 0.3, 0.5, 0.0)
    assert np.all(np.isfinite(ax)) and np.all(np.isfinite(ay))


@pytest.mark.parametrize("dq", [1e-12, 1e-9, 1e-6])
def test_sie_continuous_at_round_limit(dq):
    """The elliptical formula joins the round branch smoothly as q -> 1."""
    x = np.linspace(-3, 3, 41)
    y = np.linspace(-2, 2.5, 41)
    ax1, ay1 = sie_deflection(x, y, 1.3, 1.0, 0.4)
    axq, ayq = sie_deflection(x, y, 1.3, 1.0 - dq, 0.4)
    # the deflection changes by O(dq) (measured ~4 theta_E dq / 1.3)
    assert_allclose(axq, ax1, rtol=0, atol=10 * dq + 1e-13)
    assert_allclose(ayq, ay1, rtol=0, atol=10 * dq + 1e-13)


def test_round_lens_on_its_minor_axis_gives_finite_deflection():
    """q = 1 on the line x = 0: the unused elliptical branch must not reach arctanh(+-1)."""
    y = np.array([-2.0, -0.5, 0.5, 2.0])
    with np.errstate(all="raise"):
        ax, ay = sie_deflection(np.zeros(4), y, np.array(1.2), np.array(1.0), np.array(0.0))
    np.testing.assert_allclose(ax, 0.0, atol=1e-15)
    np.testing.assert_allclose(ay, 1.2 * np.sign(y))
