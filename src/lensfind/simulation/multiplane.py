"""Pure multi-plane ray tracing, and the double-source-plane (compound) lens.

With ``P`` deflecting planes at increasing redshift and the last source plane
``s``, a ray seen at ``theta`` reaches plane ``j`` at

    theta_j = theta - sum_{i<j} beta_ij alpha_i(theta_i)

where ``alpha_i`` is the deflection of plane ``i`` scaled to ``s`` (its Einstein
radius is the one for a source at ``z_s``) and ``beta_ij = D_ij D_s / (D_j D_is)``
(:func:`lensfind.simulation.cosmology.beta_factor`; ``beta_is = 1``). Schneider,
Ehlers & Falco (1992) ch. 9; Collett et al. (2012). All angles in arcsec.
"""

from collections.abc import Callable, Sequence

import numpy as np

from lensfind.simulation.lensing import shear_deflection, sie_deflection

Deflection = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def multi_plane_trace(
    x: np.ndarray,
    y: np.ndarray,
    deflections: Sequence[Deflection],
    beta: Sequence[Sequence[float | np.ndarray]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Positions of rays ``(x, y)`` on every plane behind the first deflector, arcsec.

    Parameters
    ----------
    x, y : ndarray
        Image-plane (observed) positions, arcsec.
    deflections : sequence of callables
        ``alpha_i(x_i, y_i) -> (ax, ay)`` of each deflecting plane in redshift order,
        scaled to the last source plane, arcsec.
    beta : sequence of sequences
        ``beta[j - 1][i]`` is ``beta_ij`` for plane ``j = 1 .. P`` (plane ``P`` is the
        last source, all its entries 1) and ``i < j``; arrays broadcast against ``x``.

    Returns
    -------
    list of (ndarray, ndarray)
        ``theta_j`` for ``j = 1 .. P``: the positions on the plane behind each
        deflector, the last one on the final source plane.
    """
    n = len(deflections)
    if len(beta) != n or any(len(beta[j]) != j + 1 for j in range(n)):
        raise ValueError(f"beta must be triangular with {n} rows (row j has j + 1 entries)")
    pos = [(x, y)]
    alphas: list[tuple[np.ndarray, np.ndarray]] = []
    for j in range(1, n + 1):
        xi, yi = pos[j - 1]
        alphas.append(deflections[j - 1](xi, yi))
        bx, by = x, y
        for i in range(j):
            b = beta[j - 1][i]
            bx = bx - b * alphas[i][0]
            by = by - b * alphas[i][1]
        pos.append((bx, by))
    return pos[1:]


def double_source_plane_trace(
    x: np.ndarray,
    y: np.ndarray,
    theta_e1_arcsec: np.ndarray,
    q1: np.ndarray,
    phi1: np.ndarray,
    gamma1: np.ndarray,
    gamma2: np.ndarray,
    theta_e2_arcsec: np.ndarray,
    q2: np.ndarray,
    phi2: np.ndarray,
    center2_x: np.ndarray,
    center2_y: np.ndarray,
    beta12: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rays on both source planes of a compound lens, arcsec.

    The main deflector (SIE + external shear, centred at the origin) lies at
    ``z_l``; the first source, at ``z_s1``, is itself an SIE deflector centred at
    ``(center2_x, center2_y)`` (unlensed position on its own plane) for the
    second source at ``z_s2``.

    Parameters
    ----------
    x, y : ndarray
        Image-plane positions relative to the main deflector, arcsec.
    theta_e1_arcsec, q1, phi1, gamma1, gamma2 : ndarray
        Main deflector for a source at ``z_s1`` (the single-lens convention of
        :func:`lensfind.simulation.lensing.ray_trace`): Einstein radius (arcsec),
        axis ratio, position angle (rad), shear.
    theta_e2_arcsec, q2, phi2 : ndarray
        The first source's SIE for a source at ``z_s2``: arcsec, -, rad.
    center2_x, center2_y : ndarray
        Its centre on the ``z_s1`` plane, arcsec.
    beta12 : ndarray
        ``D_{l,s1} D_{s2} / (D_{s1} D_{l,s2})`` in (0, 1]: the main deflector's
        Einstein radius for ``z_s2`` is ``theta_e1 / beta12``.

    Returns
    -------
    x1, y1, x2, y2 : ndarray
        Positions on the first and the second source plane, arcsec.
    """
    beta12 = np.asarray(beta12, dtype=float)

    def main(xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # scaled to z_s2: the z_s1 deflection over beta12
        ax, ay = sie_deflection(xx, yy, theta_e1_arcsec, q1, phi1)
        sx, sy = shear_deflection(xx, yy, gamma1, gamma2)
        return (ax + sx) / beta12, (ay + sy) / beta12

    def second(xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return sie_deflection(xx, yy, theta_e2_arcsec, q2, phi2, center2_x, center2_y)

    (x1, y1), (x2, y2) = multi_plane_trace(x, y, [main, second], [[beta12], [1.0, 1.0]])
    return x1, y1, x2, y2
