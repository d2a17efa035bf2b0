"""Pure light profiles. Surface brightness in flux per arcsec^2 for unit total flux.

Elliptical radii follow lenstronomy's product-average convention
``R = sqrt(q x'^2 + y'^2 / q)`` (``x'`` along the major axis), so an elliptical
profile has the same total flux as the round profile with the same ``r_eff``.
"""

import numpy as np
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincinv

from lensfind.simulation.lensing import rotate


def sersic_b(n: np.ndarray | float) -> np.ndarray:
    """The Sersic ``b_n`` for which ``r_eff`` encloses half the light."""
    return np.asarray(gammaincinv(2.0 * np.asarray(n, dtype=float), 0.5))


def elliptical_radius(x: np.ndarray, y: np.ndarray, q: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Product-average elliptical radius of ``(x, y)``, arcsec."""
    xr, yr = rotate(x, y, phi)
    q = np.clip(q, 1e-3, 1.0)
    return np.sqrt(q * xr**2 + yr**2 / q)


def sersic(
    x: np.ndarray,
    y: np.ndarray,
    r_eff_arcsec: np.ndarray,
    n: np.ndarray,
    q: np.ndarray,
    phi: np.ndarray,
) -> np.ndarray:
    """Elliptical Sersic surface brightness with unit total flux, per arcsec^2.

    Parameters
    ----------
    x, y : ndarray
        Positions relative to the profile centre, arcsec.
    r_eff_arcsec : ndarray
        Half-light radius (product-average convention), arcsec.
    n : ndarray
        Sersic index.
    q, phi : ndarray
        Axis ratio and major-axis position angle (radians).
    """
    b = sersic_b(n)
    r_eff = np.maximum(r_eff_arcsec, 1e-4)
    norm = 2.0 * np.pi * n * r_eff**2 * np.exp(b) * b ** (-2.0 * n) * gamma_fn(2.0 * n)
    r = elliptical_radius(x, y, q, phi)
    return np.exp(-b * ((r / r_eff) ** (1.0 / n) - 1.0)) / norm


def spiral_modulation(
    x: np.ndarray,
    y: np.ndarray,
    amplitude: np.ndarray,
    pitch_rad: np.ndarray,
    phase_rad: np.ndarray,
    n_arms: int = 2,
) -> np.ndarray:
    """Multiplicative logarithmic-spiral arm pattern ``1 + A cos(m(theta - ln r / tan p) + phase)``.

    Returns a non-negative factor; ``amplitude = 0`` gives exactly 1.
    """
    r = np.maximum(np.hypot(x, y), 1e-3)
    theta = np.arctan2(y, x)
    wind = np.log(r) / np.tan(np.maximum(pitch_rad, 1e-2))
    return np.maximum(1.0 + amplitude * np.cos(n_arms * (theta - wind) + phase_rad), 0.0)


def gaussian_otf(fwhm_px: np.ndarray, freq_y: np.ndarray, freq_x: np.ndarray) -> np.ndarray:
    """Fourier transform of a unit-flux circular Gaussian PSF.

    Parameters
    ----------
    fwhm_px : ndarray
        PSF FWHM in pixels, broadcastable against the frequency grids.
    freq_y, freq_x : ndarray
        Spatial frequencies, cycles per pixel (``numpy.fft.fftfreq``).
    """
    sigma = fwhm_px / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return np.exp(-2.0 * np.pi**2 * sigma**2 * (freq_x**2 + freq_y**2))


def moffat_kernel(fwhm_px: np.ndarray, size: int, beta: float = 4.765) -> np.ndarray:
    """Unit-sum circular Moffat kernels, centred on pixel ``(0, 0)`` for FFT use.

    Parameters
    ----------
    fwhm_px : ndarray
        FWHM in pixels, any shape ``S``; returns ``S + (size, size)``.
    size : int
        Kernel side in pixels (the stamp side).
    beta : float
        Moffat power index (4.765 matches atmospheric turbulence theory).
    """
    f = np.fft.fftfreq(size) * size  # pixel offsets with wrap-around
    r2 = f[:, None] ** 2 + f[None, :] ** 2
    alpha = np.asarray(fwhm_px)[..., None, None] / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    k = (1.0 + r2 / alpha**2) ** (-beta)
    return k / k.sum(axis=(-2, -1), keepdims=True)
