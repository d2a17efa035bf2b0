"""Populations of lenses and look-alike non-lenses: parameter distributions.

Kinds
-----
``lens``        red elliptical deflector (SIE + shear) with a blue lensed Sersic source
``elliptical``  the same ellipticals without a source (the hardest negatives)
``spiral``      blue disc with two logarithmic spiral arms and a red bulge
``edge_on``     thin edge-on disc with a small bulge
``star``        point source with stellar colours
``pair``        elliptical with a close companion (often blue and elongated)

Rare lenses (:data:`RARE_KINDS`, never drawn unless ``PopulationConfig.lens_mix``
asks for them; Wilde et al. 2022):

``compound_arc``  double-source-plane lens, galaxies within +-5 arcsec of the source
``double_ring``   the same within +-0.25 arcsec: mostly two concentric rings
``red_source``    a ``lens`` whose source has the colours of a dusty / high-redshift
                  galaxy (``dusty_red``) at the same r magnitude

Colours are magnitude offsets from the r band per band name, so the same
population serves DES griz, KiDS r and Euclid VIS/YJH.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from lensfind.simulation.colours import COLOURS, STAR_SLOPE, fluxes
from lensfind.simulation.compound import COMPOUND_KINDS, CompoundConfig, draw_compound
from lensfind.simulation.scene import Scene, SecondPlane, SersicComponents
from lensfind.surveys.spec import SurveySpec

KINDS = ("lens", "elliptical", "spiral", "edge_on", "star", "pair")
NONLENS_KINDS = KINDS[1:]
RARE_KINDS = (*COMPOUND_KINDS, "red_source")
#: Every kind; sets holding rare lenses encode kinds by their index here.
ALL_KINDS = (*KINDS, *RARE_KINDS)
#: Kinds that are lenses (label 1).
LENS_KINDS = ("lens", *RARE_KINDS)


@dataclass(frozen=True)
class PopulationConfig:
    """Parameter ranges of the simulated populations (uniform unless stated).

    Magnitudes are AB; ``source_mag_g_range`` is the *unlensed* source magnitude.
    Lenses fainter than ``min_source_snr`` (matched-filter S/N of the lensed
    source against sky noise, all bands) are brightened to it, the detectability
    cut of LensPop-style training sets (Collett 2015); 0 disables it.
    ``lens_mix`` splits the lenses over :data:`LENS_KINDS` (default: all
    ``lens``); ``compound`` holds the compound-lens ranges (Wilde+22 Table 1).
    """

    lens_fraction: float = 0.5
    theta_e_range_arcsec: tuple[float, float] = (0.8, 3.0)
    lens_mag_r_range: tuple[float, float] = (17.0, 20.5)
    lens_r_eff_range_arcsec: tuple[float, float] = (0.6, 2.0)
    source_mag_g_range: tuple[float, float] = (21.5, 25.0)
    source_r_eff_range_arcsec: tuple[float, float] = (0.1, 0.6)
    shear_sigma: float = 0.05
    min_source_snr: float = 20.0
    seeing_sigma_ln: float = 0.12
    center_jitter_px: float = 1.0
    colour_scatter_mag: float = 0.1
    psf: str = "gaussian"
    nonlens_mix: Mapping[str, float] = field(
        default_factory=lambda: {
            "elliptical": 0.35,
            "spiral": 0.2,
            "edge_on": 0.1,
            "star": 0.1,
            "pair": 0.25,
        }
    )
    lens_mix: Mapping[str, float] = field(default_factory=lambda: {"lens": 1.0})
    compound: CompoundConfig = field(default_factory=CompoundConfig)

    @property
    def has_rare_kinds(self) -> bool:
        """Whether ``lens_mix`` draws any of :data:`RARE_KINDS`."""
        return any(k != "lens" and w > 0 for k, w in self.lens_mix.items())

    def draw_kinds(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` object kinds: lenses with ``lens_fraction``, the rest by ``nonlens_mix``.

        Lenses are split over ``lens_mix`` (one more draw, only when it holds
        rare kinds, so default sets are unchanged).
        """
        names = list(self.nonlens_mix)
        w = np.array([self.nonlens_mix[k] for k in names], dtype=float)
        kinds = rng.choice(np.array(names, dtype=object), size=n, p=w / w.sum())
        lens = rng.random(n) < self.lens_fraction
        kinds[lens] = "lens"
        if self.has_rare_kinds:
            bad = set(self.lens_mix) - set(LENS_KINDS)
            if bad:
                raise ValueError(
                    f"lens_mix: unknown lens kinds {sorted(bad)} (known: {LENS_KINDS})"
                )
            lk = list(self.lens_mix)
            lw = np.array([self.lens_mix[k] for k in lk], dtype=float)
            kinds[lens] = rng.choice(
                np.array(lk, dtype=object), size=int(lens.sum()), p=lw / lw.sum()
            )
        return kinds.astype(str)


class _Mass(NamedTuple):
    """SIE + shear, (N,) each: theta_E (arcsec; 0 off lenses), q, angle (rad), shear."""

    theta_e: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray


def _draw_main(
    spec: SurveySpec, is_kind: dict[str, np.ndarray], n: int, rng: np.random.Generator,
    scat: float, config: PopulationConfig,
) -> tuple[SersicComponents, np.ndarray, np.ndarray]:  # fmt: skip
    """Main light (counts, arcsec, rad): a red elliptical, or a disc for spirals / edge-on
    (flux 0 for stars); also its r magnitudes (AB) and the disc mask (N,)."""
    u = rng.uniform
    mag_r = u(*config.lens_mag_r_range, n)
    r_eff = u(*config.lens_r_eff_range_arcsec, n)
    sersic_n = u(3.0, 5.0, n)
    q = u(0.6, 1.0, n)
    phi = u(0, np.pi, n)
    disc = is_kind["spiral"] | is_kind["edge_on"]
    mag_r[disc] = u(16.5, 20.5, disc.sum())
    r_eff[disc] = u(1.2, 3.5, disc.sum())
    sersic_n[disc] = u(0.8, 1.2, disc.sum())
    q[is_kind["spiral"]] = u(0.35, 1.0, is_kind["spiral"].sum())
    q[is_kind["edge_on"]] = u(0.08, 0.22, is_kind["edge_on"].sum())
    main_flux = np.where(disc[:, None], fluxes(spec, mag_r, "disc", rng, scat),
                         fluxes(spec, mag_r, "red", rng, scat))  # fmt: skip
    main_flux[is_kind["star"]] = 0.0
    main = SersicComponents(main_flux, r_eff, sersic_n, q, phi, np.zeros(n), np.zeros(n))
    return main, mag_r, disc


def _draw_companion(
    spec: SurveySpec, is_kind: dict[str, np.ndarray], disc: np.ndarray, main: SersicComponents,
    mag_r: np.ndarray, rng: np.random.Generator, scat: float,
) -> SersicComponents:  # fmt: skip
    """Companion (counts, arcsec, rad): the red bulge of discs (1-3 mag fainter in r), or
    a neighbour 1.5-4.5 arcsec from pairs (60% blue); flux 0 for other kinds."""
    u, n, nb = rng.uniform, disc.size, len(spec.bands)
    c_flux, c_phi, c_dx, c_dy = np.zeros((n, nb)), np.zeros(n), np.zeros(n), np.zeros(n)
    c_reff, c_n, c_q = np.full(n, 0.5), np.ones(n), np.ones(n)  # off: flux 0
    if disc.any():
        c_flux[disc] = fluxes(spec, mag_r[disc] + u(1.0, 3.0, disc.sum()), "red", rng, scat)
        c_reff[disc] = u(0.3, 0.8, disc.sum())
        c_n[disc] = 4.0
        c_q[disc] = u(0.7, 1.0, disc.sum())
        c_phi[disc] = main.phi[disc]
    pair = is_kind["pair"]
    if pair.any():
        k = pair.sum()
        blue = rng.random(k) < 0.6
        cmag = mag_r[pair] + u(0.5, 3.5, k)
        c_flux[pair] = np.where(blue[:, None], fluxes(spec, cmag, "blue", rng, scat),
                                fluxes(spec, cmag, "red", rng, scat))  # fmt: skip
        sep, ang = u(1.5, 4.5, k), u(0, 2 * np.pi, k)
        c_dx[pair], c_dy[pair] = sep * np.cos(ang), sep * np.sin(ang)
        c_reff[pair] = u(0.2, 1.0, k)
        c_n[pair] = u(0.7, 4.0, k)
        c_q[pair] = u(0.2, 1.0, k)
        # half the companions are tangentially elongated: arc-like but unlensed
        tangential = rng.random(k) < 0.5
        c_phi[pair] = np.where(tangential, ang + np.pi / 2, u(0, np.pi, k))
    return SersicComponents(c_flux, c_reff, c_n, c_q, c_phi, c_dx, c_dy)


def _draw_mass(
    lens: np.ndarray, main: SersicComponents, rng: np.random.Generator, config: PopulationConfig
) -> _Mass:
    """SIE + shear following the light (axis ratio +-0.1, angle +-10 deg), lenses only."""
    u, n = rng.uniform, lens.size
    theta_e = np.where(lens, u(*config.theta_e_range_arcsec, n), 0.0)
    mass_q = np.clip(main.q + 0.1 * rng.standard_normal(n), 0.4, 1.0)
    mass_phi = main.phi + np.deg2rad(10.0) * rng.standard_normal(n)
    g_amp = np.abs(config.shear_sigma * rng.standard_normal(n))
    g_ang = u(0, np.pi, n)
    gamma1 = np.where(lens, g_amp * np.cos(2 * g_ang), 0.0)
    gamma2 = np.where(lens, g_amp * np.sin(2 * g_ang), 0.0)
    return _Mass(theta_e, mass_q, mass_phi, gamma1, gamma2)


def _draw_source(
    spec: SurveySpec, lens: np.ndarray, theta_e: np.ndarray, rng: np.random.Generator,
    scat: float, config: PopulationConfig,
) -> tuple[SersicComponents, np.ndarray, np.ndarray]:  # fmt: skip
    """Blue lensed source (counts, arcsec, rad; flux 0 off lenses) within 0.6 theta_E of the
    caustic centre (arcs / rings), and its unlensed g and r magnitudes (AB, every row)."""
    u, n = rng.uniform, lens.size
    src_mag_g = u(*config.source_mag_g_range, n)
    src_mag_r = src_mag_g - COLOURS["blue"]["g"]
    src_flux = fluxes(spec, src_mag_r, "blue", rng, scat) * lens[:, None]
    s_rad = 0.6 * theta_e * np.sqrt(u(0, 1, n))
    s_ang = u(0, 2 * np.pi, n)
    source = SersicComponents(src_flux, u(*config.source_r_eff_range_arcsec, n), u(0.7, 2.5, n),
                              u(0.4, 1.0, n), u(0, np.pi, n), s_rad * np.cos(s_ang),
                              s_rad * np.sin(s_ang))  # fmt: skip
    return source, src_mag_g, src_mag_r


def _draw_stars(
    spec: SurveySpec, star: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Point-source fluxes (N, bands) in counts (0 off stars) and the stars' r
    magnitudes (AB, r = 15.5-21, g - r = 0.2-1.5; one per star)."""
    point_flux = np.zeros((star.size, len(spec.bands)))
    smag = np.empty(0)
    if star.any():
        k = star.sum()
        smag = rng.uniform(15.5, 21.0, k)
        gr = rng.uniform(0.2, 1.5, k)
        for j, band in enumerate(spec.bands):
            point_flux[star, j] = 10 ** (
                -0.4 * (smag + STAR_SLOPE[band.name] * gr - band.zero_point_mag)
            )
    return point_flux, smag


def _draw_observing(
    spec: SurveySpec, seeing_factor: np.ndarray | None, pix: float, n: int,
    rng: np.random.Generator, config: PopulationConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Seeing factors (N,; log-normal in 0.6-1.8 unless given), PSF FWHM (N, bands) in
    arcsec, and centres x, y (N,) in arcsec within +-``center_jitter_px`` of ``pix``
    arcsec (no draws when the jitter is 0)."""
    if seeing_factor is None:
        seeing_factor = np.clip(np.exp(config.seeing_sigma_ln * rng.standard_normal(n)), 0.6, 1.8)
    fwhm = seeing_factor[:, None] * np.array([b.psf_fwhm_arcsec for b in spec.bands])[None, :]
    jitter = config.center_jitter_px * pix
    center_x = rng.uniform(-jitter, jitter, n) if jitter else np.zeros(n)
    center_y = rng.uniform(-jitter, jitter, n) if jitter else np.zeros(n)
    return seeing_factor, fwhm, center_x, center_y


def _add_rare_kinds(
    spec: SurveySpec, kinds: np.ndarray, rng: np.random.Generator, config: PopulationConfig,
    scat: float, main: SersicComponents, source: SersicComponents, mag_r: np.ndarray,
    mass: _Mass, src_mag_g: np.ndarray, src_mag_r: np.ndarray, truth: dict[str, np.ndarray],
) -> tuple[SersicComponents, SersicComponents, SecondPlane | None]:  # fmt: skip
    """Rare lenses, drawn last so that sets without them draw exactly what they always did.

    ``red_source``: ``dusty_red`` colours at the same source r magnitude (AB; fluxes in
    counts set in place). Compound kinds (:func:`_compound`): main r magnitude (AB),
    Einstein radius (arcsec) and shear set in place in ``mag_r`` and ``mass``. ``truth``
    gets their intrinsic source g (AB; both sources for compounds) and compound columns.
    """
    second = None
    red = kinds == "red_source"
    if red.any():
        src_flux = source.flux
        src_flux[red] = fluxes(spec, src_mag_r[red], "dusty_red", rng, scat)
        source = replace(source, flux=src_flux)
        truth["mag_g_source_intrinsic"][red] = src_mag_r[red] + COLOURS["dusty_red"]["g"]
    k = np.isin(kinds, COMPOUND_KINDS)
    if k.any():
        main, source, second, extra = _compound(spec, kinds, rng, config, main, source, scat)
        mag_r[k] = extra.pop("mag_r_main")[k]
        mass.theta_e[k] = extra.pop("theta_e_main_arcsec")[k]
        mass.gamma1[k], mass.gamma2[k] = extra.pop("gamma1")[k], extra.pop("gamma2")[k]
        # both sources together (intrinsic g, AB)
        g_first = extra.pop("mag_g_first")[k]
        truth["mag_g_source_intrinsic"][k] = -2.5 * np.log10(
            10 ** (-0.4 * g_first) + 10 ** (-0.4 * src_mag_g[k])
        )
        truth.update(extra)
    return main, source, second


def sample_scene(
    spec: SurveySpec,
    kinds: np.ndarray,
    rng: np.random.Generator,
    config: PopulationConfig,
    seeing_factor: np.ndarray | None = None,
    deflector_shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Scene, dict[str, np.ndarray]]:
    """Draw render parameters and truth for objects of the given ``kinds``.

    Parameters
    ----------
    spec : SurveySpec
        Survey (bands on one pixel grid).
    kinds : ndarray of str (N,)
        Kind of each object (see module docstring).
    rng : numpy.random.Generator
        Source of randomness.
    config : PopulationConfig
        Parameter distributions.
    seeing_factor : ndarray (N,), optional
        PSF FWHM as a multiple of the survey median; drawn (log-normal) if None.
    deflector_shape : (ndarray (N,), ndarray (N,)), optional
        Axis ratio and angle (rad) of each deflector's light, e.g. measured on the
        host of an injection: they replace the drawn ones (the draws still happen,
        so the other parameters are unchanged), and the mass follows them.

    Returns
    -------
    scene : Scene
    truth : dict of ndarray
        ``mag_r_lens``, ``mag_g_source_intrinsic`` and ``seeing_factor`` (the
        remaining truth needs the rendered images).
    """
    n = kinds.size
    is_kind = {k: kinds == k for k in ALL_KINDS}
    unknown = set(np.unique(kinds)) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown object kinds {sorted(unknown)} (known: {ALL_KINDS})")
    pix = spec.pixel_scale_arcsec
    scat = config.colour_scatter_mag
    # The steps draw in this order; it fixes the bytes of every seeded set.
    main, mag_r, disc = _draw_main(spec, is_kind, n, rng, scat, config)
    if deflector_shape is not None:
        q, phi = (np.asarray(a, dtype=float).reshape(n) for a in deflector_shape)
        main = replace(main, q=q, phi=phi)
    companion = _draw_companion(spec, is_kind, disc, main, mag_r, rng, scat)
    arm_amp = np.where(is_kind["spiral"], rng.uniform(0.3, 0.9, n), 0.0)  # spiral arms
    arm_pitch = np.deg2rad(rng.uniform(10.0, 30.0, n))
    arm_phase = rng.uniform(0, 2 * np.pi, n)
    lens = np.isin(kinds, LENS_KINDS)
    mass = _draw_mass(lens, main, rng, config)
    source, src_mag_g, src_mag_r = _draw_source(spec, lens, mass.theta_e, rng, scat, config)
    point_flux, star_mag_r = _draw_stars(spec, is_kind["star"], rng)
    mag_r[is_kind["star"]] = star_mag_r
    seeing_factor, fwhm, center_x, center_y = _draw_observing(spec, seeing_factor, pix, n,
                                                              rng, config)  # fmt: skip
    truth = {
        "mag_r_lens": mag_r,
        "mag_g_source_intrinsic": np.where(lens, src_mag_g, np.nan),
        "seeing_factor": seeing_factor,
    }
    main, source, second = _add_rare_kinds(spec, kinds, rng, config, scat, main, source, mag_r,
                                           mass, src_mag_g, src_mag_r, truth)  # fmt: skip
    scene = Scene(
        center_x_arcsec=center_x, center_y_arcsec=center_y, main=main, companion=companion,
        source=source, arm_amplitude=arm_amp, arm_pitch_rad=arm_pitch, arm_phase_rad=arm_phase,
        theta_e_arcsec=mass.theta_e, mass_q=mass.q, mass_phi=mass.phi, gamma1=mass.gamma1,
        gamma2=mass.gamma2, point_flux=point_flux, psf_fwhm_arcsec=fwhm, second=second,
    )  # fmt: skip
    return scene, truth


#: Truth columns of compound lenses (NaN for other kinds).
COMPOUND_TRUTH = ("z_lens", "z_source1", "z_source2", "sigma_lens_kms", "sigma_source1_kms",
                  "theta_e_source1_arcsec", "beta12")  # fmt: skip


def _compound(
    spec: SurveySpec,
    kinds: np.ndarray,
    rng: np.random.Generator,
    config: PopulationConfig,
    main: SersicComponents,
    source: SersicComponents,
    scat: float,
) -> tuple[SersicComponents, SersicComponents, SecondPlane, dict[str, np.ndarray]]:
    """Turn the compound rows into double-source-plane lenses (Wilde+22 sec. 2.2).

    The main deflector gets the nearer lens galaxy's magnitude; the first source
    becomes the farther lens galaxy (red elliptical light, Table 1 shape); the
    drawn blue source moves behind it to the second source plane.
    """
    n, nb = kinds.size, len(spec.bands)
    k = np.isin(kinds, COMPOUND_KINDS)
    d = draw_compound(kinds[k], config.lens_mag_r_range, rng, config.compound)

    def put(fill: float, values: np.ndarray) -> np.ndarray:
        out = np.full(n, fill)
        out[k] = values
        return out

    main_flux = main.flux.copy()
    main_flux[k] = fluxes(spec, d.mag_r_main, "red", rng, scat)
    s1_flux = source.flux.copy()
    s1_flux[k] = fluxes(spec, d.mag_r_second, "red", rng, scat)
    first = SersicComponents(
        s1_flux,
        np.where(k, put(1.0, d.second_r_eff_arcsec), source.r_eff_arcsec),
        np.where(k, put(1.0, d.second_n), source.n),
        np.where(k, put(1.0, d.second_q), source.q),
        np.where(k, put(0.0, d.second_phi), source.phi),
        np.where(k, put(0.0, d.second_dx_arcsec), source.dx_arcsec),
        np.where(k, put(0.0, d.second_dy_arcsec), source.dy_arcsec),
    )
    s2_flux = np.zeros((n, nb))
    s2_flux[k] = source.flux[k]
    s2 = replace(source, flux=s2_flux, dx_arcsec=put(0.0, d.source_dx_arcsec),
                 dy_arcsec=put(0.0, d.source_dy_arcsec))  # fmt: skip
    second = SecondPlane(s2, put(0.0, d.theta_e_second_arcsec), put(1.0, d.second_q),
                         put(0.0, d.second_phi), put(1.0, d.beta12))  # fmt: skip
    extra = {
        "mag_r_main": put(np.nan, d.mag_r_main),
        "theta_e_main_arcsec": put(np.nan, d.theta_e_main_arcsec),
        "gamma1": put(0.0, d.gamma1),
        "gamma2": put(0.0, d.gamma2),
        "mag_g_first": put(np.nan, d.mag_r_second + COLOURS["red"]["g"]),
        "z_lens": put(np.nan, d.z_lens),
        "z_source1": put(np.nan, d.z_source1),
        "z_source2": put(np.nan, d.z_source2),
        "sigma_lens_kms": put(np.nan, d.sigma_main_kms),
        "sigma_source1_kms": put(np.nan, d.sigma_second_kms),
        "theta_e_source1_arcsec": put(np.nan, d.theta_e_second_arcsec),
        "beta12": put(np.nan, d.beta12),
    }
    return replace(main, flux=main_flux), first, second, extra
