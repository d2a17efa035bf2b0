"""Survey specifications: bands, pixel grids, PSF, depth and zero points."""

import dataclasses
import math
from dataclasses import dataclass, field

from lensfind.errors import ConfigError


@dataclass(frozen=True)
class BandSpec:
    """One photometric band of a survey.

    Parameters
    ----------
    name : str
        Band name as used in file names (``g``, ``VIS``, ...).
    pixel_scale_arcsec : float
        Pixel scale of the coadd images, arcsec per pixel.
    psf_fwhm_arcsec : float
        Median PSF full width at half maximum, arcsec.
    depth_10sigma_mag : float
        AB magnitude detected at signal-to-noise 10 in an aperture of
        ``depth_aperture_arcsec`` diameter (sky-noise limited).
    depth_aperture_arcsec : float
        Diameter of the aperture the depth refers to, arcsec.
    zero_point_mag : float
        AB zero point of the image counts: ``mag = zp - 2.5 log10(counts)``.
    gain_e_per_count : float
        Effective gain of the coadd (electrons per count), sets the Poisson noise
        of object light.
    """

    name: str
    pixel_scale_arcsec: float
    psf_fwhm_arcsec: float
    depth_10sigma_mag: float
    depth_aperture_arcsec: float = 1.95
    zero_point_mag: float = 30.0
    gain_e_per_count: float = 20.0

    @property
    def sky_sigma_counts(self) -> float:
        """Sky-noise standard deviation per pixel, in image counts.

        A source of ``depth_10sigma_mag`` gives S/N = 10 in the depth aperture when
        the noise is the sky alone: ``F10 = 10 * sigma * sqrt(N_pix)``.
        """
        flux_10 = 10 ** (-0.4 * (self.depth_10sigma_mag - self.zero_point_mag))
        radius_px = 0.5 * self.depth_aperture_arcsec / self.pixel_scale_arcsec
        n_pix = math.pi * radius_px**2
        return flux_10 / (10.0 * math.sqrt(n_pix))

    def mag_to_counts(self, mag_ab: float) -> float:
        """Total counts of a source of AB magnitude ``mag_ab``."""
        return float(10 ** (-0.4 * (mag_ab - self.zero_point_mag)))


@dataclass(frozen=True)
class SurveySpec:
    """A survey: its bands (in stacking order) and cutout size.

    Parameters
    ----------
    name : str
        Registry name (``des_y3``).
    title : str
        Human-readable description with the data release.
    bands : tuple of BandSpec
        Bands in the order they are stacked into a cutout.
    cutout_px : int
        Cutout side in pixels (on the grid of the first band).
    tile_prefix : str
        Prefix of the survey's tile names (``DES`` gives ``DES0453-4831``).
    reference : str
        Where the numbers come from.
    """

    name: str
    title: str
    bands: tuple[BandSpec, ...]
    cutout_px: int
    tile_prefix: str = "TILE"
    reference: str = ""
    notes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Pixel scale shared by all bands, arcsec/px (error if the bands differ)."""
        scales = {b.pixel_scale_arcsec for b in self.bands}
        if len(scales) != 1:
            grids = ", ".join(f'{b.name} {b.pixel_scale_arcsec}"/px' for b in self.bands)
            raise ConfigError(
                f"{self.name} mixes pixel grids ({grids}); select bands on one grid "
                f"with SurveySpec.select(...) (e.g. --bands)"
            )
        return scales.pop()

    @property
    def cutout_arcsec(self) -> float:
        return self.cutout_px * self.pixel_scale_arcsec

    def band(self, name: str) -> BandSpec:
        for b in self.bands:
            if b.name == name:
                return b
        raise ConfigError(f"survey {self.name} has no band {name!r} (bands: {self.band_names})")

    def select(self, names: tuple[str, ...], cutout_px: int | None = None) -> "SurveySpec":
        """Return a spec restricted to ``names`` (in that order)."""
        bands = tuple(self.band(n) for n in names)
        return SurveySpec(
            name=self.name,
            title=self.title,
            bands=bands,
            cutout_px=cutout_px or self.cutout_px,
            tile_prefix=self.tile_prefix,
            reference=self.reference,
            notes=dict(self.notes),
        )

    def on_grid(self, pixel_scale_arcsec: float, cutout_px: int) -> "SurveySpec":
        """This survey with every band on one pixel grid (bands resampled to it).

        Parameters
        ----------
        pixel_scale_arcsec : float
            Pixel scale of the common grid, arcsec per pixel.
        cutout_px : int
            Cutout side on that grid, pixels.

        Returns
        -------
        SurveySpec
            Same bands, PSFs and depths; each band's pixel scale is
            ``pixel_scale_arcsec``, so its sky noise per pixel
            (:attr:`BandSpec.sky_sigma_counts`) is that of its depth on the new grid:
            an ideal, flux- and noise-preserving resampling (white noise). E.g. the
            Euclid VIS band on the NISP grid, as Wilde et al. 2022 feed OU-66.
        """
        if pixel_scale_arcsec <= 0 or cutout_px < 1:
            raise ConfigError(
                f'{self.name}: grid of {pixel_scale_arcsec}"/px and {cutout_px} px is not valid'
            )
        bands = tuple(
            dataclasses.replace(b, pixel_scale_arcsec=pixel_scale_arcsec) for b in self.bands
        )
        return dataclasses.replace(self, bands=bands, cutout_px=cutout_px, notes=dict(self.notes))
