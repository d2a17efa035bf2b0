"""The names ``engine probe`` takes, light enough to check before any probe runs.

Importing this module loads the perturbation registry (numba kernels, no
simulation and no model): the command line checks a probe name here before it
simulates a probe set.
"""

from dataclasses import dataclass

from lensfind.errors import ConfigError, suggestion
from lensfind.probes.perturbations import PERTURBATIONS


@dataclass(frozen=True)
class ParameterProbe:
    """A truth column to bin by, its default bin width and axis label (with units)."""

    column: str
    width: float
    label: str


PARAMETERS: dict[str, ParameterProbe] = {
    "theta_e": ParameterProbe("theta_e_arcsec", 0.052, "Einstein radius (arcsec)"),
    "source_mag": ParameterProbe("mag_g_source", 0.1, "lensed source g magnitude (AB)"),
    "lens_mag": ParameterProbe("mag_r_lens", 0.1, "lens r magnitude (AB)"),
    "seeing": ParameterProbe("psf_fwhm_arcsec", 0.05, "PSF FWHM, r band (arcsec)"),
    "alpha": ParameterProbe("alpha", 0.05, "source / lens peak brightness ratio"),
}
#: The paper's full set, in the order of its figures.
SUITE = ("colour", "psf", "blur", "noise", "annulus", "disk", "theta_e", "source_mag", "lens_mag")
#: Probes that are not a single perturbation or parameter.
GROUPS = ("suite", "selection", "rare")


def probe_names() -> list[str]:
    """Every single probe ``engine probe`` runs (besides :data:`GROUPS`)."""
    return [*PERTURBATIONS, "psf", *PARAMETERS, "parameter"]


def check_probe(name: str) -> str:
    """``name`` if ``engine probe`` knows it; else a :class:`ConfigError` naming the closest."""
    known = [*GROUPS, *probe_names()]
    if name not in known:
        raise ConfigError(
            f"unknown probe {name!r}{suggestion(name, known)} (known: {', '.join(known)})"
        )
    return name
