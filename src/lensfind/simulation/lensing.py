"""Pure lensing functions: deflection angles of a singular isothermal ellipsoid
(SIE) and of external shear.

Einstein-radius convention (shared with lenstronomy and caustics): the SIE
convergence is ``kappa = b / (2 sqrt(q^2 x^2 + y^2))`` in the frame of the major
axis (Keeton's notation) with ``b = theta_E * sqrt(q)``, so that the critical
curve encloses an area ``pi * theta_E^2`` for every axis ratio ``q``.
All angles are in arcsec, position angles in radians (counter-clockwise from +x).
"""

import numpy as np

_TINY_ARCSEC = 1e-12


def rotate(x: np.ndarray, y: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(x, y)`` in a frame rotated by ``phi`` radians."""
    c, s = np.cos(phi), np.sin(phi)
    return c * x + s * y, -s * x + c * y


def sie_deflection(
    x: np.ndarray,
    y: np.ndarray,
    theta_e_arcsec: np.ndarray,
    q: np.ndarray,
    phi: np.ndarray,
    center_x: np.ndarray | float = 0.0,
    center_y: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deflection ``(alpha_x, alpha_y)`` of a singular isothermal ellipsoid, arcsec.

    Parameters
    ----------
    x, y : ndarray
        Image-plane positions, arcsec. Parameters broadcast against them.
    theta_e_arcsec : ndarray
        Einstein radius (area convention, see module docstring), arcsec.
    q : ndarray
        Mass axis ratio (minor/major), 0 < q <= 1.
    phi : ndarray
        Position angle of the major axis, radians.
    center_x, center_y : ndarray or float
        Lens centre, arcsec.
    """
    q = np.clip(q, 1e-4, 1.0)
    b = theta_e_arcsec * np.sqrt(q)
    xr, yr = rotate(x - center_x, y - center_y, phi)
    psi = np.maximum(np.sqrt(q**2 * xr**2 + yr**2), _TINY_ARCSEC)
    e = np.sqrt(np.maximum(1.0 - q**2, 0.0))
    round_ = e < 1e-6
    if not round_.any():  # every lens elliptical (the usual case): that branch alone
        ax_r = b / e * np.arctan(e * xr / psi)
        ay_r = b / e * np.arctanh(e * yr / psi)
    else:
        e_safe = np.where(round_, 1.0, e)
        # the elliptical branch is evaluated everywhere: give it 0 where the lens is round
        # (there e_safe * yr / psi reaches +-1 on the x = 0 axis and arctanh diverges)
        ux = np.where(round_, 0.0, e_safe * xr / psi)
        uy = np.where(round_, 0.0, e_safe * yr / psi)
        ax_r = np.where(round_, b * xr / psi, b / e_safe * np.arctan(ux))
        ay_r = np.where(round_, b * yr / psi, b / e_safe * np.arctanh(uy))
    c, s = np.cos(phi), np.sin(phi)
    return c * ax_r - s * ay_r, s * ax_r + c * ay_r


def shear_deflection(
    x: np.ndarray, y: np.ndarray, gamma1: np.ndarray, gamma2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deflection of external shear ``(gamma1, gamma2)`` about the origin, arcsec."""
    return gamma1 * x + gamma2 * y, gamma2 * x - gamma1 * y


def ray_trace(
    x: np.ndarray,
    y: np.ndarray,
    theta_e_arcsec: np.ndarray,
    q: np.ndarray,
    phi: np.ndarray,
    gamma1: np.ndarray,
    gamma2: np.ndarray,
    center_x: np.ndarray | float = 0.0,
    center_y: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane positions ``beta = theta - alpha`` for SIE + external shear, arcsec.

    The shear is centred on the lens.
    """
    ax, ay = sie_deflection(x, y, theta_e_arcsec, q, phi, center_x, center_y)
    sx, sy = shear_deflection(x - center_x, y - center_y, gamma1, gamma2)
    return x - ax - sx, y - ay - sy
