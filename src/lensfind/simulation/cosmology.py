"""Pure cosmology for lens masses: distances, Faber-Jackson velocity dispersions,
singular-isothermal Einstein radii and the multi-plane distance ratios.

Flat LambdaCDM with ``H0 = 70 km/s/Mpc`` and ``Omega_m = 0.3`` (Wilde et al. 2022,
sec. 1) through :mod:`astropy.cosmology`. Redshifts are dimensionless, distances
in Mpc, velocity dispersions in km/s, angles in arcsec.
"""

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # astropy.cosmology takes 0.5 s to import: only when a distance is asked for
    from astropy.cosmology import FlatLambdaCDM

#: Speed of light, km/s (exact, SI definition).
C_KMS = 299_792.458
#: Radians to arcsec.
ARCSEC_PER_RAD = float(np.degrees(1.0) * 3600.0)
#: Faber-Jackson normalisation: sigma = FJ_SIGMA_STAR_KMS at absolute r magnitude
#: FJ_M_STAR (L proportional to sigma^4, Faber & Jackson 1976); about the SDSS r-band
#: relation of Bernardi et al. (2003) for h = 0.7.
FJ_SIGMA_STAR_KMS = 200.0
FJ_M_STAR = -21.5
FJ_EXPONENT = 4.0


@lru_cache(maxsize=4)
def wilde_cosmology(h0: float = 70.0, omega_m: float = 0.3) -> "FlatLambdaCDM":
    """The flat LambdaCDM of Wilde et al. (2022): ``H0`` in km/s/Mpc, ``Omega_m``."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=h0, Om0=omega_m)


def angular_diameter_distance_mpc(
    z1: np.ndarray | float, z2: np.ndarray | float, cosmo: "FlatLambdaCDM | None" = None
) -> np.ndarray:
    """Angular diameter distance from redshift ``z1`` to ``z2 > z1``, Mpc.

    ``z1 = 0`` gives the distance from the observer.
    """
    cosmo = cosmo or wilde_cosmology()
    z1, z2 = np.broadcast_arrays(np.asarray(z1, dtype=float), np.asarray(z2, dtype=float))
    return np.asarray(cosmo.angular_diameter_distance(z1, z2).to("Mpc").value)


def distance_modulus_mag(z: np.ndarray | float, cosmo: "FlatLambdaCDM | None" = None) -> np.ndarray:
    """Distance modulus ``m - M`` at redshift ``z``, mag (no K-correction)."""
    cosmo = cosmo or wilde_cosmology()
    return np.asarray(cosmo.distmod(np.asarray(z, dtype=float)).value)


def faber_jackson_sigma_kms(abs_mag_r: np.ndarray | float) -> np.ndarray:
    """Velocity dispersion of an elliptical of absolute r magnitude ``abs_mag_r``, km/s.

    ``sigma = 200 km/s * (L / L*)^(1/4)`` with ``L / L* = 10^(-0.4 (M - M*))`` and
    ``M* = -21.5`` (see :data:`FJ_SIGMA_STAR_KMS`).
    """
    lum = 10.0 ** (-0.4 * (np.asarray(abs_mag_r, dtype=float) - FJ_M_STAR))
    return FJ_SIGMA_STAR_KMS * lum ** (1.0 / FJ_EXPONENT)


def sis_einstein_radius_arcsec(
    sigma_kms: np.ndarray | float,
    z_lens: np.ndarray | float,
    z_source: np.ndarray | float,
    cosmo: "FlatLambdaCDM | None" = None,
) -> np.ndarray:
    """Einstein radius ``4 pi (sigma / c)^2 D_ls / D_s`` of a singular isothermal sphere, arcsec.

    Wilde et al. (2022) eq. 1. Parameters: velocity dispersion (km/s), lens and
    source redshifts (``z_source > z_lens``; otherwise the radius is 0).
    """
    z_lens = np.asarray(z_lens, dtype=float)
    z_source = np.asarray(z_source, dtype=float)
    behind = z_source > z_lens
    d_ls = angular_diameter_distance_mpc(z_lens, np.where(behind, z_source, z_lens + 1.0), cosmo)
    d_s = angular_diameter_distance_mpc(0.0, z_source, cosmo)
    theta = 4.0 * np.pi * (np.asarray(sigma_kms, dtype=float) / C_KMS) ** 2 * d_ls / d_s
    return np.where(behind, theta * ARCSEC_PER_RAD, 0.0)


def beta_factor(
    z_i: np.ndarray | float,
    z_j: np.ndarray | float,
    z_s: np.ndarray | float,
    cosmo: "FlatLambdaCDM | None" = None,
) -> np.ndarray:
    """Multi-plane distance ratio ``beta_ij = D_ij D_s / (D_j D_is)`` (dimensionless).

    With deflections of plane ``i`` scaled to the last source plane ``s``, a ray
    reaches plane ``j`` at ``theta_j = theta - sum_{i<j} beta_ij alpha_i(theta_i)``
    (Schneider, Ehlers & Falco 1992, eq. 9.7; Collett et al. 2012). For
    ``z_i < z_j <= z_s``; ``beta_is = 1``.
    """
    d_ij = angular_diameter_distance_mpc(z_i, z_j, cosmo)
    d_s = angular_diameter_distance_mpc(0.0, z_s, cosmo)
    d_j = angular_diameter_distance_mpc(0.0, z_j, cosmo)
    d_is = angular_diameter_distance_mpc(z_i, z_s, cosmo)
    return np.asarray(d_ij * d_s / (d_j * d_is))
