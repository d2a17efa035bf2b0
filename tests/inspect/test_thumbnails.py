"""Display images: Lupton composites of i, r, g; PNGs north up."""

import io

import numpy as np
from matplotlib.image import imread

from lensfind.inspect.thumbnails import (
    composite_bands,
    lupton_composite,
    png_bytes,
    saliency_overlay,
)


def test_composite_bands():
    assert composite_bands(("g", "r", "i", "z")) == (2, 1, 0)
    assert composite_bands(("VIS", "Y", "J", "H")) == (3, 2, 1)
    assert composite_bands(("r",)) is None


def test_lupton_colours_follow_the_bands():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (4, 32, 32)).astype(np.float32)
    image[2, 8, 8] += 200.0  # bright in i only: red
    image[0, 20, 20] += 200.0  # bright in g only: blue
    rgb = lupton_composite(image, ("g", "r", "i", "z"))
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    assert rgb[8, 8, 0] == 255 and rgb[8, 8, 2] < 50
    assert rgb[20, 20, 2] == 255 and rgb[20, 20, 0] < 50
    assert np.median(rgb) < 80  # the sky stays dark


def test_png_is_north_up():
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[0, 0] = 255  # first stored row: the bottom of the picture
    back = imread(io.BytesIO(png_bytes(pixels)))
    assert back.shape[:2] == (4, 6)
    assert back[3, 0, 0] == 1.0 and back[0, 0, 0] == 0.0


def test_saliency_overlay_colours_and_scale():
    composite = np.full((4, 4, 3), 100, dtype=np.uint8)
    m = np.zeros((4, 4))
    m[0, 0], m[3, 3], m[1, 1] = 2.0, -1.0, np.nan
    out, scale = saliency_overlay(composite, m)
    assert scale == 2.0
    assert out[0, 0, 2] > out[0, 0, 0]  # positive: blue
    assert out[3, 3, 0] > out[3, 3, 2]  # negative: red
    assert (out[1, 1] == 100).all() and (out[2, 2] == 100).all()  # NaN and 0: the composite
