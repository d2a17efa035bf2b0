"""Colours of the simulated spectral types, and the band fluxes they give (AB, counts)."""

import numpy as np

from lensfind.surveys.spec import SurveySpec

#: Magnitude offsets m_band - m_r of typical spectral types (observed frame).
COLOURS: dict[str, dict[str, float]] = {
    # red early-type galaxy at z ~ 0.4-0.6
    "red": {"g": 1.45, "r": 0.0, "i": -0.55, "z": -0.90,
            "VIS": -0.45, "Y": -1.20, "J": -1.60, "H": -2.00},
    # blue star-forming galaxy at z ~ 1-2 (lensed sources)
    "blue": {"g": 0.25, "r": 0.0, "i": -0.15, "z": -0.25,
             "VIS": -0.15, "Y": -0.35, "J": -0.50, "H": -0.65},
    # Dust-reddened star-forming galaxy at z ~ 1.5-3 (red lensed sources): the red
    # ring of Geach et al. (2015; source at z = 2.2) and the lensed dusty galaxies of
    # Negrello et al. (2017), as Wilde+22 sec. 6 discuss. r - H = 2.8 gives
    # r - K_AB ~ 3.3, the extremely-red-object cut R - K_Vega > 5 (Elston et al.
    # 1988; McCarthy 2004); g - r = 1.3 and r - z = 1.3 against 0.25 for "blue".
    "dusty_red": {"g": 1.30, "r": 0.0, "i": -0.70, "z": -1.30,
                  "VIS": -0.40, "Y": -1.80, "J": -2.30, "H": -2.80},
    # nearby disc galaxy, z ~ 0.1-0.3
    "disc": {"g": 0.60, "r": 0.0, "i": -0.30, "z": -0.45,
             "VIS": -0.25, "Y": -0.60, "J": -0.85, "H": -1.10},
}  # fmt: skip
#: Stars: offsets scale with the g-r colour.
STAR_SLOPE = {"g": 1.0, "r": 0.0, "i": -0.40, "z": -0.60,
               "VIS": -0.30, "Y": -0.80, "J": -1.00, "H": -1.20}  # fmt: skip


def colour_offset(colour: str, band: str) -> float:
    """``m_band - m_r`` (AB) of a spectral type (``red``, ``blue``, ``dusty_red``, ``disc``)."""
    return COLOURS[colour][band]


def fluxes(
    spec: SurveySpec, mag_r: np.ndarray, colour: str, rng: np.random.Generator, scatter: float
) -> np.ndarray:
    """Per-band fluxes (N, bands) in counts for r magnitudes and a colour type."""
    out = np.empty((mag_r.size, len(spec.bands)))
    for j, band in enumerate(spec.bands):
        offset = COLOURS[colour][band.name] + scatter * rng.standard_normal(mag_r.size)
        out[:, j] = 10 ** (-0.4 * (mag_r + offset - band.zero_point_mag))
    return out
