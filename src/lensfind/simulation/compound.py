"""Compound (double-source-plane) lenses: the parameter distributions of Wilde et al. (2022).

Wilde+22 sec. 2.2 and Table 1: two lens galaxies with magnitudes and redshifts
drawn from the single-lens lens distributions and one source from the source
distributions; Faber-Jackson velocity dispersions; Einstein radii from eq. 1;
the lower-redshift lens is the more massive two thirds of the time; Sersic
light, axis ratios, angles and external shear uniform over Table 1's ranges;
the lens galaxies within +-5 arcsec of the source in x and y for *compound
arcs* and within +-0.25 arcsec for *double rings*.

Here the nearer lens galaxy is the main deflector at the stamp centre (as for
single lenses: a cutout centred on a galaxy); the farther one, at ``z_s1``, is
the first lensed source and itself an SIE deflector for the source at ``z_s2``
(:func:`lensfind.simulation.multiplane.double_source_plane_trace`). Table 1's
source position (+-5 arcsec in the stamp) is dropped: it only moves the system
in Wilde's position-invariant stamps.
"""

from dataclasses import dataclass

import numpy as np

from lensfind.simulation.cosmology import (
    beta_factor,
    distance_modulus_mag,
    faber_jackson_sigma_kms,
    sis_einstein_radius_arcsec,
)

COMPOUND_KINDS = ("compound_arc", "double_ring")


@dataclass(frozen=True)
class CompoundConfig:
    """Parameter ranges of compound lenses (uniform; Wilde+22 Table 1 unless stated).

    Attributes
    ----------
    lens_z_range, source_z_range : (float, float)
        Redshifts of the two lens galaxies (sorted: the nearer is the main
        deflector) and of the final source (not in Table 1: DES-like lenses at
        0.2-0.8 and sources at 1-3).
    sersic_r_range_arcsec, sersic_n_range : (float, float)
        Light of the second lens galaxy: half-light radius (arcsec), Sersic index.
    q_range, angle_range_rad : (float, float)
        Axis ratio and position angle (radians) of the second galaxy (light and mass).
    shear_range : (float, float)
        Each external-shear component of the main deflector ("Gamma").
    arc_offset_arcsec, ring_offset_arcsec : float
        Half-width of the box of lens-galaxy x and y offsets from the source.
    massive_first_fraction : float
        Fraction of systems whose nearer lens has the larger velocity dispersion.
    sigma_range_kms : (float, float)
        Faber-Jackson dispersions are clipped to this range (km/s; not in Wilde+22).
    """

    lens_z_range: tuple[float, float] = (0.2, 0.8)
    source_z_range: tuple[float, float] = (1.0, 3.0)
    sersic_r_range_arcsec: tuple[float, float] = (0.2, 7.0)
    sersic_n_range: tuple[float, float] = (1.5, 20.0)
    q_range: tuple[float, float] = (0.3, 1.0)
    angle_range_rad: tuple[float, float] = (0.0, float(np.pi))
    shear_range: tuple[float, float] = (-0.5, 0.5)
    arc_offset_arcsec: float = 5.0
    ring_offset_arcsec: float = 0.25
    massive_first_fraction: float = 2.0 / 3.0
    sigma_range_kms: tuple[float, float] = (100.0, 400.0)


@dataclass(frozen=True)
class CompoundDraw:
    """Drawn compound-lens parameters, arrays ``(N,)``.

    ``mag_r_main`` / ``mag_r_second``: apparent r magnitudes (AB) of the main
    and second lens galaxies; ``sigma_*_kms`` their dispersions; offsets in
    arcsec relative to the main deflector (the second galaxy on the ``z_s1``
    plane, the source on the ``z_s2`` plane); ``theta_e_main_arcsec`` is for a
    source at ``z_s1`` and ``theta_e_second_arcsec`` for ``z_s2``.
    """

    z_lens: np.ndarray
    z_source1: np.ndarray
    z_source2: np.ndarray
    mag_r_main: np.ndarray
    mag_r_second: np.ndarray
    sigma_main_kms: np.ndarray
    sigma_second_kms: np.ndarray
    theta_e_main_arcsec: np.ndarray
    theta_e_second_arcsec: np.ndarray
    beta12: np.ndarray
    second_dx_arcsec: np.ndarray
    second_dy_arcsec: np.ndarray
    source_dx_arcsec: np.ndarray
    source_dy_arcsec: np.ndarray
    second_r_eff_arcsec: np.ndarray
    second_n: np.ndarray
    second_q: np.ndarray
    second_phi: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray


def draw_compound(
    kinds: np.ndarray,
    lens_mag_r_range: tuple[float, float],
    rng: np.random.Generator,
    config: CompoundConfig,
) -> CompoundDraw:
    """Draw compound-lens parameters for ``kinds`` (``compound_arc`` or ``double_ring``).

    Parameters
    ----------
    kinds : ndarray of str (N,)
        ``compound_arc`` (offsets within ``arc_offset_arcsec``) or ``double_ring``.
    lens_mag_r_range : (float, float)
        Apparent r magnitudes (AB) of both lens galaxies (the single-lens range).
    rng : numpy.random.Generator
        Source of randomness.
    config : CompoundConfig
        Parameter ranges.
    """
    n = len(kinds)
    u = rng.uniform
    z_pair = np.sort(u(*config.lens_z_range, (n, 2)), axis=1)
    z_s2 = u(*config.source_z_range, n)
    mags = u(*lens_mag_r_range, (n, 2))
    sigma = np.clip(
        faber_jackson_sigma_kms(mags - distance_modulus_mag(z_pair)), *config.sigma_range_kms
    )
    # Order the two galaxies so that the nearer one is the heavier with the given odds.
    heavy_first = rng.random(n) < config.massive_first_fraction
    first_is_heavier = sigma[:, 0] >= sigma[:, 1]
    swap = heavy_first != first_is_heavier
    sigma[swap] = sigma[swap][:, ::-1]
    mags[swap] = mags[swap][:, ::-1]
    z_l, z_s1 = z_pair[:, 0], z_pair[:, 1]
    half = np.where(np.asarray(kinds) == "double_ring", config.ring_offset_arcsec,
                    config.arc_offset_arcsec)  # fmt: skip
    d1 = u(-1.0, 1.0, (n, 2)) * half[:, None]  # main lens - source
    d2 = u(-1.0, 1.0, (n, 2)) * half[:, None]  # second lens - source
    return CompoundDraw(
        z_lens=z_l,
        z_source1=z_s1,
        z_source2=z_s2,
        mag_r_main=mags[:, 0],
        mag_r_second=mags[:, 1],
        sigma_main_kms=sigma[:, 0],
        sigma_second_kms=sigma[:, 1],
        theta_e_main_arcsec=sis_einstein_radius_arcsec(sigma[:, 0], z_l, z_s1),
        theta_e_second_arcsec=sis_einstein_radius_arcsec(sigma[:, 1], z_s1, z_s2),
        beta12=beta_factor(z_l, z_s1, z_s2),
        second_dx_arcsec=d2[:, 0] - d1[:, 0],
        second_dy_arcsec=d2[:, 1] - d1[:, 1],
        source_dx_arcsec=-d1[:, 0],
        source_dy_arcsec=-d1[:, 1],
        second_r_eff_arcsec=u(*config.sersic_r_range_arcsec, n),
        second_n=u(*config.sersic_n_range, n),
        second_q=u(*config.q_range, n),
        second_phi=u(*config.angle_range_rad, n),
        gamma1=u(*config.shear_range, n),
        gamma2=u(*config.shear_range, n),
    )
