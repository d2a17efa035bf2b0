"""Display images of cutouts as PNG bytes: colour composites, single bands, saliency overlays.

Images are shown as astronomers view survey cutouts: north up, i.e. the first
pixel row at the bottom (``origin="lower"``), one cutout pixel per PNG pixel
(browsers scale them up without smoothing). Pure functions of arrays in
image counts; the only I/O is PNG encoding into memory.
"""

import io
from collections.abc import Sequence

import numpy as np

from lensfind.probes.saliency.plot import asinh_display

__all__ = ["band_png", "colour_png", "lupton_composite", "png_bytes", "saliency_png"]

#: Lupton et al. (2004) asinh softening of the composite.
LUPTON_Q = 8.0
#: Linear stretch of the composite, in robust sky-noise sigmas of the shown bands.
LUPTON_STRETCH_SIGMA = 6.0


def composite_bands(bands: Sequence[str]) -> tuple[int, int, int] | None:
    """Channel indices shown as red, green, blue: ``i, r, g`` where the cutout has them,
    else its three reddest bands (bands are listed blue to red); None for < 3 bands."""
    names = [b.lower() for b in bands]
    if {"g", "r", "i"} <= set(names):
        return names.index("i"), names.index("r"), names.index("g")
    if len(names) >= 3:
        n = len(names)
        return n - 1, n - 2, n - 3
    return None


def robust_sigma(image: np.ndarray) -> float:
    """Sky-noise sigma of an image (counts) from the median absolute deviation."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 1.0
    mad = float(np.median(np.abs(finite - np.median(finite))))
    return 1.4826 * mad if mad > 0 else 1.0


def lupton_composite(image: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """A cutout ``(bands, H, W)`` in counts as an 8-bit colour composite ``(H, W, 3)``.

    Lupton et al. (2004) asinh colours (:func:`astropy.visualization.make_lupton_rgb`)
    of ``i, r, g`` as red, green, blue, with ``minimum`` 0 (sky-subtracted
    images), ``Q`` :data:`LUPTON_Q` and ``stretch`` :data:`LUPTON_STRETCH_SIGMA`
    times the median sky sigma of the three bands: the same scale for every band,
    so colours are the images' own. Fewer than three bands give the first band in
    grey (asinh). Rows are returned as stored (flip for display).
    """
    from astropy.visualization import make_lupton_rgb

    rgb = composite_bands(bands)
    if rgb is None:
        grey = np.round(asinh_display(image, (0,)) * 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    planes = [np.nan_to_num(image[b].astype(np.float64)) for b in rgb]
    sigma = float(np.median([robust_sigma(p) for p in planes]))
    out = make_lupton_rgb(*planes, minimum=0.0, stretch=LUPTON_STRETCH_SIGMA * sigma,
                          Q=LUPTON_Q)  # fmt: skip
    return np.asarray(out, dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An image ``(H, W)`` or ``(H, W, 3|4)`` (uint8, or floats in [0, 1]) as PNG bytes,
    first row at the bottom."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    shown = pixels[::-1]
    if shown.ndim == 2:
        imsave(
            buf,
            shown,
            format="png",
            cmap="gray",
            vmin=0,
            vmax=255 if shown.dtype == np.uint8 else 1,
        )
    else:
        imsave(buf, shown, format="png")
    return buf.getvalue()


def colour_png(image: np.ndarray, bands: Sequence[str]) -> bytes:
    """PNG of :func:`lupton_composite`."""
    return png_bytes(lupton_composite(image, bands))


def band_png(image: np.ndarray, band: int) -> bytes:
    """PNG of one band in grey: asinh between its 1st and 99.5th percentiles."""
    return png_bytes(asinh_display(image, (band,)))


def saliency_overlay(composite: np.ndarray, saliency: np.ndarray) -> tuple[np.ndarray, float]:
    """An occlusion map laid over a colour composite, and the map's largest ``|value|``.

    The composite is shown in grey; the map (drop in lens probability when a
    patch is hidden) in blue where positive (the region makes the object look
    like a lens) and red where negative, opaque in proportion to ``|value|``
    over its largest ``|value|``. NaN (never occluded) pixels show the composite.
    """
    grey = composite.astype(np.float64).mean(axis=-1, keepdims=True) / 255.0
    m = np.nan_to_num(np.asarray(saliency, dtype=np.float64))
    scale = float(np.abs(m).max())
    if scale <= 0:
        return np.round(np.repeat(grey, 3, axis=-1) * 255).astype(np.uint8), 0.0
    t = m / scale
    colour = np.where(t[..., None] >= 0, (0.13, 0.40, 0.95), (0.90, 0.15, 0.15))
    alpha = np.clip(np.abs(t), 0.0, 1.0)[..., None] * 0.85
    out = grey * (1 - alpha) + colour * alpha
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8), scale


def saliency_png(
    image: np.ndarray, bands: Sequence[str], saliency: np.ndarray
) -> tuple[bytes, float]:
    """PNG of :func:`saliency_overlay` on the cutout's composite, and the map's scale."""
    overlay, scale = saliency_overlay(lupton_composite(image, bands), saliency)
    return png_bytes(overlay), scale
