"""Reading survey tiles: one FITS image per band, memory-mapped, with a celestial WCS."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from lensfind.errors import TileReadError
from lensfind.fits_checks import band_wcs, checksum_problem
from lensfind.simulation.datadir import tile_path

#: Header keywords read as the PSF FWHM of a band image, arcsec.
PSF_FWHM_KEYS = ("FWHM", "PSF_FWHM")


@dataclass
class TileImages:
    """The band images of one tile, memory-mapped, and its WCS.

    ``images`` are read-only views of the FITS files (native or big-endian
    float): cutting a stamp reads only the pages it touches. Use as a context
    manager, or call :meth:`close`, to release the files.
    """

    name: str
    images: list[np.ndarray]
    wcs: WCS
    paths: list[Path]
    _hduls: list[fits.HDUList]
    #: PSF FWHM of each band from the header (``FWHM`` or ``PSF_FWHM``, arcsec), or None
    psf_fwhm_arcsec: list[float | None] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.images[0].shape
        return int(h), int(w)

    def close(self) -> None:
        self.images = []
        for hdul in self._hduls:
            hdul.close()
        self._hduls = []

    def __enter__(self) -> "TileImages":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_band(path: Path) -> tuple[fits.HDUList, np.ndarray, fits.Header]:
    hdul = None
    try:
        hdul = fits.open(path, memmap=True, mode="readonly")
        hdu = next((h for h in hdul if h.header.get("NAXIS") == 2), None)
        if hdu is None:
            raise TileReadError(f"{path.name}: no 2-D image HDU")
        data = hdu.data
        if data is None or data.ndim != 2 or data.dtype.kind != "f":
            raise TileReadError(f"{path.name}: HDU is not a 2-D float image")
        if (problem := checksum_problem(path, hdu)) is not None:
            raise TileReadError(f"{path.name}: {problem}")
        return hdul, data, hdu.header
    except FileNotFoundError:
        raise TileReadError(f"{path.name}: file not found in {path.parent}") from None
    except Exception as e:  # truncated / corrupt FITS: astropy raises many types
        if hdul is not None:
            hdul.close()
        if isinstance(e, TileReadError):
            raise
        raise TileReadError(f"{path.name}: cannot read FITS ({type(e).__name__}: {e})") from None


def _header_fwhm(header: fits.Header) -> float | None:
    for key in PSF_FWHM_KEYS:
        value = header.get(key)
        if isinstance(value, int | float) and np.isfinite(value) and value > 0:
            return float(value)
    return None


def read_tile(data_dir: Path, tile: str, bands: tuple[str, ...]) -> TileImages:
    """Open every band of ``tile`` memory-mapped; the WCS comes from the first band.

    Raises :class:`TileReadError` naming the file for a missing, truncated,
    damaged (:mod:`lensfind.fits_checks`) or misregistered band.
    """
    tiles = TileImages(tile, [], WCS(naxis=2), [], [])
    try:
        for band in bands:
            path = tile_path(data_dir, tile, band)
            hdul, data, header = _open_band(path)
            tiles._hduls.append(hdul)
            if tiles.images and data.shape != tiles.images[0].shape:
                raise TileReadError(
                    f"{path.name}: shape {data.shape} differs from "
                    f"{tiles.paths[0].name} {tiles.images[0].shape}"
                )
            reference = (tiles.paths[0].name, tiles.wcs) if tiles.images else None
            tiles.wcs = band_wcs(path.name, header, data.shape, reference) or tiles.wcs
            tiles.images.append(data)
            tiles.paths.append(path)
            tiles.psf_fwhm_arcsec.append(_header_fwhm(header))
    except BaseException:
        tiles.close()
        raise
    return tiles


def tile_footprint_contains(
    data_dir: Path, tile: str, band: str, ra: np.ndarray, dec: np.ndarray
) -> np.ndarray:
    """Which ``(ra, dec)`` fall on the pixel grid of ``tile`` (header only)."""
    path = tile_path(data_dir, tile, band)
    try:
        header = fits.getheader(path)
        wcs = WCS(header).celestial
        ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    except Exception as exc:
        raise TileReadError(f"{path.name}: cannot read header ({exc})") from None
    x, y = wcs.wcs_world2pix(ra, dec, 0)
    return (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
