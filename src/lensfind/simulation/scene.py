"""Parameter containers for a batch of objects to render (arrays, no logic)."""

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class SersicComponents:
    """A batch of elliptical Sersic components, one per object.

    Attributes
    ----------
    flux : ndarray (N, bands)
        Total flux per band in image counts (0 switches the component off).
    r_eff_arcsec, n, q, phi : ndarray (N,)
        Half-light radius (arcsec), Sersic index, axis ratio, position angle (rad).
    dx_arcsec, dy_arcsec : ndarray (N,)
        Centre offset from the object centre (image plane; for a lensed source
        the offset is in the source plane, relative to the lens centre), arcsec.
    """

    flux: np.ndarray
    r_eff_arcsec: np.ndarray
    n: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    dx_arcsec: np.ndarray
    dy_arcsec: np.ndarray


@dataclass(frozen=True)
class SecondPlane:
    """A second source plane behind the first source (compound lenses), one per object.

    The first source (``Scene.source``, at ``z_s1``) is also an SIE deflector
    centred on its light for ``source`` at ``z_s2``
    (:func:`lensfind.simulation.multiplane.double_source_plane_trace`).

    Attributes
    ----------
    source : SersicComponents
        The second source; offsets are on the ``z_s2`` plane relative to the main
        deflector, arcsec.
    theta_e_arcsec, q, phi : ndarray (N,)
        SIE of the first source for a source at ``z_s2``: arcsec, -, radians
        (``theta_e = 0``: a massless first source).
    beta12 : ndarray (N,)
        ``D_{l,s1} D_{s2} / (D_{s1} D_{l,s2})`` in (0, 1].
    """

    source: SersicComponents
    theta_e_arcsec: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    beta12: np.ndarray


@dataclass(frozen=True)
class Scene:
    """Everything needed to render ``N`` stamps.

    Attributes
    ----------
    center_x_arcsec, center_y_arcsec : ndarray (N,)
        Object centre relative to the stamp centre, arcsec (+x = +column).
    main : SersicComponents
        The main galaxy (the deflector for lenses, the disc for spirals).
    companion : SersicComponents
        A second unlensed component (bulge, close neighbour); flux 0 if none.
    source : SersicComponents
        The background source, ray-traced through the SIE when ``theta_e > 0``.
    arm_amplitude, arm_pitch_rad, arm_phase_rad : ndarray (N,)
        Spiral-arm modulation of ``main`` (amplitude 0: none).
    theta_e_arcsec, mass_q, mass_phi, gamma1, gamma2 : ndarray (N,)
        SIE + external shear; ``theta_e = 0`` means no lensing.
    point_flux : ndarray (N, bands)
        Flux of a point source at the object centre (stars), counts.
    psf_fwhm_arcsec : ndarray (N, bands)
        PSF FWHM per object and band, arcsec.
    second : SecondPlane, optional
        A second lensed source behind ``source`` (compound lenses); None: none.
    """

    center_x_arcsec: np.ndarray
    center_y_arcsec: np.ndarray
    main: SersicComponents
    companion: SersicComponents
    source: SersicComponents
    arm_amplitude: np.ndarray
    arm_pitch_rad: np.ndarray
    arm_phase_rad: np.ndarray
    theta_e_arcsec: np.ndarray
    mass_q: np.ndarray
    mass_phi: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray
    point_flux: np.ndarray
    psf_fwhm_arcsec: np.ndarray
    second: SecondPlane | None = None

    def __len__(self) -> int:
        return int(self.center_x_arcsec.shape[0])

    def take(self, index: np.ndarray | slice) -> "Scene":
        """Return the sub-batch selected by ``index``."""
        return self._map(lambda a: a[index])

    def astype(self, dtype: np.dtype | type) -> "Scene":
        """The same scene with every parameter array of ``dtype``."""
        return self._map(lambda a: a.astype(dtype, copy=False))

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]) -> "Scene":
        """The scene with ``fn`` applied to every parameter array."""

        def pick(value: object) -> object:
            if value is None:
                return None
            if isinstance(value, SecondPlane | SersicComponents):
                cls = type(value)
                return cls(**{f.name: pick(getattr(value, f.name)) for f in fields(value)})
            assert isinstance(value, np.ndarray)
            return fn(value)

        return Scene(**{f.name: pick(getattr(self, f.name)) for f in fields(self)})  # type: ignore[arg-type]
