"""Integrity checks of FITS band images: checksums and the registration of bands.

- A header that carries ``DATASUM`` (and ``CHECKSUM``, FITS standard 4.0
  appendix J) is verified against the bytes: a damaged data section is refused,
  not scored. Verifying reads the whole image once, so the outcome is kept per
  process and file identity (:func:`~lensfind.digests.file_identity`): a worker
  verifies each tile once, whatever the number of its shards.
- The bands of a tile are cut at the pixel positions of the reference (first)
  band, so every band's WCS must map the tile's pixels to the same sky:
  :func:`wcs_offset_px` measures the largest disagreement, in reference-band
  pixels, at the corners and centre of the image; above
  :data:`WCS_TOLERANCE_PX` the tile is refused.
"""

from pathlib import Path
from typing import Any

import numpy as np

from lensfind.digests import file_identity
from lensfind.errors import TileReadError

#: Largest offset (reference-band pixels) between a band's WCS and the reference band's
#: that a tile may have: half a pixel, the rounding of a stamp's centre to the pixel grid.
WCS_TOLERANCE_PX = 0.5
_VERIFIED: dict[tuple[str, int, int, int, int], str | None] = {}


def checksum_problem(path: Path, hdu: Any) -> str | None:
    """What is wrong with the checksums of ``hdu`` (read from ``path``), or None.

    None also when the header has neither ``DATASUM`` nor ``CHECKSUM`` (nothing
    to verify). The result is cached per process and file identity.
    """
    if "DATASUM" not in hdu.header and "CHECKSUM" not in hdu.header:
        return None
    key = file_identity(path)
    if key not in _VERIFIED:
        problem = None
        if "DATASUM" in hdu.header and hdu.verify_datasum() == 0:
            problem = f"data section fails its DATASUM {hdu.header['DATASUM']!r} (damaged pixels)"
        elif "CHECKSUM" in hdu.header and hdu.verify_checksum() == 0:
            problem = "HDU fails its CHECKSUM (damaged header or data)"
        _VERIFIED[key] = problem
    return _VERIFIED[key]


def band_wcs(
    name: str, header: Any, shape: tuple[int, int], reference: tuple[str, Any] | None = None
) -> Any:
    """The celestial WCS of a band image's ``header``, or None if it matches ``reference``.

    ``reference`` is ``(file name, WCS)`` of the tile's reference band; None
    for the reference band itself, whose WCS is returned.

    Raises
    ------
    TileReadError
        Naming the file: no valid celestial WCS, or one that differs from the
        reference by more than :data:`WCS_TOLERANCE_PX` somewhere on the image.
    """
    from astropy.wcs import WCS

    try:
        wcs = WCS(header).celestial
    except Exception as exc:
        raise TileReadError(f"{name}: bad WCS ({exc})") from None
    if not wcs.has_celestial:
        raise TileReadError(f"{name}: no celestial WCS")
    if reference is None:
        return wcs
    offset = wcs_offset_px(reference[1], wcs, shape)
    if offset > WCS_TOLERANCE_PX:
        raise TileReadError(f"{name}: WCS differs from {reference[0]} by {offset:.3g} px "
                            f"(tolerance {WCS_TOLERANCE_PX} px)")  # fmt: skip
    return None


def wcs_offset_px(reference: Any, other: Any, shape: tuple[int, int]) -> float:
    """Largest offset, reference pixels, between two celestial WCS over an image of ``shape``.

    The corners and centre of the ``(rows, columns)`` image are mapped to the
    sky with ``other`` and back to pixels with ``reference``; a position that
    does not map (off the projection) counts as infinitely far.
    """
    h, w = shape
    x = np.array([0.0, w - 1.0, 0.0, w - 1.0, (w - 1) / 2])
    y = np.array([0.0, 0.0, h - 1.0, h - 1.0, (h - 1) / 2])
    with np.errstate(invalid="ignore"):
        ra, dec = other.wcs_pix2world(x, y, 0)
        x2, y2 = reference.wcs_world2pix(ra, dec, 0)
        d = np.hypot(x2 - x, y2 - y)
    return float(np.max(np.where(np.isfinite(d), d, np.inf)))
