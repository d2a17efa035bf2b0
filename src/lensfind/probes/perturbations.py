"""The registry of perturbations of the sensitivity probe and their default grids."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.kernels import (
    colour_jitter,
    flux_scale,
    gaussian_blur,
    gaussian_noise,
    occlude_annulus,
    occlude_disk,
    rotate,
)


class Apply(Protocol):
    """``apply(images, strength, seed, sky_sigma, fill)`` of a :class:`Perturbation`."""

    def __call__(
        self,
        images: np.ndarray,
        strength: float,
        seed: int = 0,
        sky_sigma: np.ndarray | None = None,
        fill: str | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Perturbation:
    """A perturbation of the sensitivity probe and its default strength grid.

    ``apply(images, strength, seed, sky_sigma)`` returns the perturbed batch.
    Deterministic perturbations ignore ``seed``, ``sky_sigma`` and ``fill``;
    occlusions fill with ``fill`` (default: ``'sky'`` when ``sky_sigma``, per
    band in counts, is given, else ``'zero'``). ``description`` and ``unit``
    label the strength axis.
    """

    name: str
    strengths: tuple[float, ...]
    unit: str
    description: str
    stochastic: bool
    apply: Apply


def _grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    n = round((stop - start) / step) + 1
    return tuple(float(round(start + k * step, 10)) for k in range(n))


def _fill(sky_sigma: np.ndarray | None, fill: str | None) -> str:
    return fill if fill is not None else "zero" if sky_sigma is None else "sky"


_Sky = np.ndarray | None
_Fill = str | None


def _colour(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return colour_jitter(images, strength, seed)


def _blur_px(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return gaussian_blur(images, strength)


def _noise_sd(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return gaussian_noise(images, strength, seed)


def _annulus(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return occlude_annulus(images, strength, 5.0, _fill(sky_sigma, fill), sky_sigma, seed)


def _disk(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return occlude_disk(images, strength, _fill(sky_sigma, fill), sky_sigma, seed)


def _rotation(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return rotate(images, strength)


def _flux(
    images: np.ndarray, strength: float, seed: int = 0, sky_sigma: _Sky = None, fill: _Fill = None
) -> np.ndarray:
    return flux_scale(images, strength)


_P = Perturbation
_REGISTERED = (
    _P("colour", _grid(0, 1, 0.05), "dimensionless",
       "colour jitter sigma, per-band factors ~ N(1, sigma)", True, _colour),
    _P("blur", _grid(0, 3, 0.25), "pixels", "Gaussian blur sigma", False, _blur_px),
    _P("noise", _grid(0, 30, 2.5), "band standard deviations",
       "Gaussian noise sigma on standardised bands", True, _noise_sd),
    _P("annulus", _grid(0, 50, 2.5), "pixels",
       "inner radius of an occluded annulus 5 pixels wide", True, _annulus),
    _P("disk", _grid(0, 35, 2.5), "pixels", "radius of an occluded central disk", True, _disk),
    _P("rotation", _grid(0, 360, 30), "degrees",
       "rotation angle, counter-clockwise", False, _rotation),
    _P("flux", _grid(0.25, 2, 0.25), "dimensionless", "flux scale factor", False, _flux),
)  # fmt: skip
PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in _REGISTERED}
"""Registered perturbations and their default grids (Jacobs et al. 2022, sect. 4)."""


def get_perturbation(name: str) -> Perturbation:
    """The registered perturbation called ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not registered; the message lists the known names.
    """
    try:
        return PERTURBATIONS[name]
    except KeyError:
        known = ", ".join(PERTURBATIONS)
        raise ConfigError(f"unknown perturbation {name!r}; known: {known}") from None
