"""Reading survey tiles: one FITS image per band, memory-mapped, with a celestial WCS."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from lensfind.engine.datadir import tile_path
from lensfind.errors import TileReadError


@dataclass
class TileImages:
    """The band images of one tile (``bands`` arrays of shape (H, W)) and its WCS."""

    name: str
    images: list[np.ndarray]
    wcs: WCS
    paths: list[Path]

    @property
    def shape(self) -> tuple[int, int]:
        return self.images[0].shape  # type: ignore[return-value]


def _read_band(path: Path) -> tuple[np.ndarray, fits.Header]:
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=False) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise TileReadError(f"{path.name}: no 2-D image HDU")
            data = np.asarray(hdu.data, dtype=np.float32)  # copies out of the memmap
            return data, hdu.header.copy()
    except FileNotFoundError:
        raise TileReadError(f"{path.name}: file not found in {path.parent}") from None
    except TileReadError:
        raise
    except Exception as exc:  # truncated / corrupt FITS: astropy raises many types
        raise TileReadError(f"{path.name}: cannot read FITS ({type(exc).__name__}: {exc})") from None


def read_tile(data_dir: Path, tile: str, bands: tuple[str, ...]) -> TileImages:
    """Read every band of ``tile``; the WCS comes from the first band.

    Raises :class:`TileReadError` naming the file for a missing, truncated or
    inconsistent band.
    """
    images, paths, wcs = [], [], None
    for band in bands:
        path = tile_path(data_dir, tile, band)
        data, header = _read_band(path)
        if images and data.shape != images[0].shape:
            raise TileReadError(
                f"{path.name}: shape {data.shape} differs from {paths[0].name} {images[0].shape}"
            )
        if wcs is None:
            try:
                wcs = WCS(header).celestial
            except Exception as exc:
                raise TileReadError(f"{path.name}: bad WCS ({exc})") from None
            if not wcs.has_celestial:
                raise TileReadError(f"{path.name}: no celestial WCS")
        images.append(data)
        paths.append(path)
    assert wcs is not None
    return TileImages(tile, images, wcs, paths)


def tile_footprint_contains(data_dir: Path, tile: str, band: str, ra: np.ndarray,
                            dec: np.ndarray) -> np.ndarray:
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
