"""The registry of known surveys."""

from lensfind.errors import UnknownSurveyError, suggestion
from lensfind.surveys.spec import BandSpec, SurveySpec

# DES Y3 coadds: 0.263"/px, AB zero point 30. Median PSF FWHM g/r/i from Jacobs+22
# (sec. 3.1.1), z from the DES DR1 release paper (Abbott+18). 10-sigma depths in a
# 1.95" diameter aperture (DES DR1 / Y3 coadds; g = 24.33 as quoted by Jacobs+22).
DES_Y3 = SurveySpec(
    name="des_y3",
    title="Dark Energy Survey Year 3 coadds (griz)",
    bands=(
        BandSpec("g", 0.263, 1.12, 24.33),
        BandSpec("r", 0.263, 0.96, 24.08),
        BandSpec("i", 0.263, 0.88, 23.44),
        BandSpec("z", 0.263, 0.85, 22.69),
    ),
    cutout_px=100,
    tile_prefix="DES",
    reference="Jacobs et al. 2022; Abbott et al. 2018 (DES DR1); Sevilla-Noarbe et al. 2021",
)

# KiDS DR3 r band: 0.2"/px, 101x101 cutouts (van Lohuizen 2021, Petrillo+19).
# Limiting magnitude r = 25.0 (5 sigma, 2" aperture) -> 24.25 at 10 sigma.
KIDS_DR3 = SurveySpec(
    name="kids_dr3",
    title="Kilo-Degree Survey DR3 (r)",
    bands=(BandSpec("r", 0.2, 0.70, 24.25, depth_aperture_arcsec=2.0),),
    cutout_px=101,
    tile_prefix="KIDS",
    reference="de Jong et al. 2017 (KiDS DR3); van Lohuizen 2021",
)

# Euclid Wide: VIS 0.1"/px (200x200 cutouts, OU-200) and NISP Y, J, H 0.3"/px
# (66x66 cutouts, OU-66) as in Wilde et al. 2022. Depths from the Euclid Wide
# survey definition (Scaramella+22): VIS 24.5 at 10 sigma for extended sources,
# NISP 24.0 at 5 sigma (23.25 at 10 sigma).
EUCLID_WIDE = SurveySpec(
    name="euclid_wide",
    title="Euclid Wide Survey (VIS + NISP Y, J, H)",
    bands=(
        BandSpec("VIS", 0.1, 0.17, 24.5, depth_aperture_arcsec=1.3, zero_point_mag=30.0),
        BandSpec("Y", 0.3, 0.48, 23.25, depth_aperture_arcsec=2.0, zero_point_mag=30.0),
        BandSpec("J", 0.3, 0.49, 23.25, depth_aperture_arcsec=2.0, zero_point_mag=30.0),
        BandSpec("H", 0.3, 0.50, 23.25, depth_aperture_arcsec=2.0, zero_point_mag=30.0),
    ),
    cutout_px=200,
    tile_prefix="EUC",
    reference="Wilde et al. 2022; Scaramella et al. 2022",
    notes={"grids": 'VIS 200x200 at 0.1"/px; NISP 66x66 at 0.3"/px'},
)

_REGISTRY: dict[str, SurveySpec] = {s.name: s for s in (DES_Y3, KIDS_DR3, EUCLID_WIDE)}


def get_survey(name: str) -> SurveySpec:
    """Return the spec of survey ``name``; raises :class:`UnknownSurveyError`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        hint = suggestion(name, _REGISTRY)
        raise UnknownSurveyError(f"unknown survey {name!r}{hint} (known: {known})") from None


def list_surveys() -> list[SurveySpec]:
    """All registered surveys, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
