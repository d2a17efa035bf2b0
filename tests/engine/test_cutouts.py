"""lensfind.engine.cutouts: stamp cutting and skip reasons."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lensfind.engine.cutouts import EDGE, INVALID, cut_stamps
from lensfind.engine.half import decode_float16, encode_float16

BANDS = ("g", "r", "i")


def _images(h: int, w: int, n_bands: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(h, w)).astype(np.float32) for _ in range(n_bands)]


@st.composite
def in_bounds_case(draw):
    """Images, a stamp size and in-bounds positions with their expected centre pixels."""
    h = draw(st.integers(1, 40))
    w = draw(st.integers(1, 40))
    size = draw(st.integers(1, min(h, w)))
    half = size // 2
    n = draw(st.integers(1, 6))
    # Expected centres: the stamp [c - half, c - half + size) lies inside the image.
    cx = draw(st.lists(st.integers(half, w - size + half), min_size=n, max_size=n))
    cy = draw(st.lists(st.integers(half, h - size + half), min_size=n, max_size=n))
    # Offsets in [-0.5, 0.5) on a dyadic grid (exact in float64): round-half-up of
    # c + f is c, including the tie f = -0.5.
    fx = draw(st.lists(st.integers(-512, 511), min_size=n, max_size=n))
    fy = draw(st.lists(st.integers(-512, 511), min_size=n, max_size=n))
    x = np.array(cx, dtype=float) + np.array(fx) / 1024.0
    y = np.array(cy, dtype=float) + np.array(fy) / 1024.0
    seed = draw(st.integers(0, 2**16))
    return _images(h, w, seed=seed), size, x, y, np.array(cx), np.array(cy)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(in_bounds_case())
def test_cut_stamps_equals_naive_slicing(case):
    images, size, x, y, cx, cy = case
    stamps, reasons, _ = cut_stamps(images, x, y, size, BANDS)
    assert stamps.shape == (len(x), len(images), size, size)
    assert stamps.dtype == np.float32
    assert reasons == [""] * len(x)
    half = size // 2
    for k in range(len(x)):
        expected = np.stack(
            [
                img[cy[k] - half : cy[k] - half + size, cx[k] - half : cx[k] - half + size]
                for img in images
            ]
        )
        np.testing.assert_array_equal(stamps[k], expected)
        # the centre pixel of the stamp is the nearest pixel to (x, y)
        np.testing.assert_array_equal(
            stamps[k][:, half, half], [img[cy[k], cx[k]] for img in images]
        )


@pytest.mark.parametrize(("pos", "centre"), [(2.5, 3), (3.5, 4), (2.4999, 2), (3.0, 3)])
def test_rounding_is_half_up_not_to_even(pos, centre):
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    stamps, reasons, _ = cut_stamps([img], np.array([pos]), np.array([5.0]), 1, ("g",))
    assert reasons == [""]
    assert stamps[0, 0, 0, 0] == img[5, centre]


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (1.0, 10.0),
        (10.0, 1.0),
        (18.6, 10.0),
        (10.0, 18.6),
        (-30.0, 10.0),
        (10.0, 500.0),
        (1.49, 10.0),
    ],
)
def test_out_of_bounds_is_edge(x, y):
    images = _images(20, 20)
    stamps, reasons, _ = cut_stamps(images, np.array([x, 10.0]), np.array([y, 10.0]), 5, BANDS)
    assert reasons[0].startswith("edge")
    assert reasons[0] == EDGE
    assert reasons[1] == ""
    assert len(stamps) == 1  # only the good stamp is returned
    np.testing.assert_array_equal(stamps[0, 0], images[0][8:13, 8:13])


def test_stamp_touching_the_border_is_in_bounds():
    images = _images(20, 20)
    # size 5, half 2: centres 2 and 17 give stamps [0, 5) and [15, 20)
    stamps, reasons, _ = cut_stamps(images, np.array([2.0, 17.0]), np.array([2.0, 17.0]), 5, BANDS)
    assert reasons == ["", ""]
    np.testing.assert_array_equal(stamps[1, 0], images[0][15:20, 15:20])


@pytest.mark.parametrize("band_index", [0, 1, 2])
def test_nan_pixels_are_masked_naming_the_band(band_index):
    images = _images(30, 30)
    images[band_index][12, 11] = np.nan
    images[band_index][13, 13] = np.inf
    x = np.array([12.0, 25.0])  # the second stamp does not contain the NaNs
    y = np.array([12.0, 25.0])
    stamps, reasons, _ = cut_stamps(images, x, y, 7, BANDS)
    assert reasons[0].startswith("masked")
    assert f"band {BANDS[band_index]}" in reasons[0]
    assert "2 non-finite (NaN/inf)" in reasons[0]
    assert reasons[1] == ""
    assert len(stamps) == 1
    np.testing.assert_array_equal(stamps[0, 0], images[0][22:29, 22:29])
    assert np.isfinite(stamps).all()


def test_masked_reason_names_the_first_band_with_nans():
    images = _images(30, 30)
    images[2][12, 12] = np.nan
    images[1][12, 13] = np.nan
    _, reasons, _ = cut_stamps(images, np.array([12.0]), np.array([12.0]), 5, BANDS)
    assert reasons[0].endswith("band r")


@pytest.mark.parametrize(("x", "y"), [(np.nan, 5.0), (5.0, np.nan), (np.inf, 5.0), (5.0, -np.inf)])
def test_non_finite_position_is_invalid(x, y):
    images = _images(20, 20)
    stamps, reasons, _ = cut_stamps(images, np.array([x, 10.0]), np.array([y, 10.0]), 5, BANDS)
    assert reasons[0].startswith("invalid")
    assert reasons[0] == INVALID
    assert reasons[1] == ""
    assert len(stamps) == 1


def test_empty_input():
    stamps, reasons, _ = cut_stamps(_images(10, 10), np.array([]), np.array([]), 5, BANDS)
    assert stamps.shape == (0, 3, 5, 5)
    assert reasons == []


def test_images_are_not_modified():
    images = _images(20, 20)
    images[0][10, 10] = np.nan
    before = [img.copy() for img in images]
    cut_stamps(images, np.array([10.0, 5.0]), np.array([10.0, 5.0]), 5, BANDS)
    for a, b in zip(images, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [">f4", "<f4", ">f8", "<f8", ">i2", "<i4"])
def test_pixel_types_and_byte_orders_give_the_same_stamps(dtype):
    """FITS gives big-endian pixels of any BITPIX; stamps are float32 of the same values."""
    rng = np.random.default_rng(7)
    images = [np.round(rng.normal(0, 50, (30, 40))).astype(np.float32) for _ in BANDS]
    if dtype[1] == "f":
        images[1][5, 6] = np.nan
        images[2][20, 30] = np.inf
    x, y = np.array([6.0, 30.0, 20.0, 1.0]), np.array([5.0, 20.0, 12.0, 14.0])
    want, want_reasons, _ = cut_stamps(images, x, y, 5, BANDS)
    got, reasons, _ = cut_stamps([im.astype(dtype) for im in images], x, y, 5, BANDS)
    assert reasons == want_reasons
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    if dtype[1] == "f":
        assert reasons[0].startswith("masked: 1 non-finite") and "band r" in reasons[0]
        assert "band i" in reasons[1] and reasons[2] == "" and reasons[3] == EDGE


def test_huge_finite_pixels_are_kept():
    """A stamp whose float32 sum overflows is checked pixel by pixel, not masked."""
    images = _images(20, 20)
    images[1][8:13, 8:13] = 3e38
    stamps, reasons, _ = cut_stamps(images, np.array([10.0]), np.array([10.0]), 5, BANDS)
    assert reasons == [""]
    assert (stamps[0, 1] == np.float32(3e38)).all()


def test_good_stamps_keep_input_order_around_skipped_ones():
    images = _images(40, 40)
    images[0][20, 20] = np.nan
    x = np.array([5.0, 1.0, 20.0, 30.0, np.nan, 12.0])
    y = np.array([5.0, 1.0, 20.0, 30.0, 3.0, 25.0])
    stamps, reasons, _ = cut_stamps(images, x, y, 5, BANDS)
    assert [r[:5] for r in reasons] == ["", "edge:", "maske", "", "inval", ""]
    assert len(stamps) == 3
    for stamp, (cx, cy) in zip(stamps, [(5, 5), (30, 30), (12, 25)], strict=True):
        np.testing.assert_array_equal(stamp[2], images[2][cy - 2 : cy + 3, cx - 2 : cx + 3])


@pytest.mark.parametrize("dtype", [">f4", "<f4", ">i2"])
def test_encoding_while_cutting_equals_encoding_the_cut_stamps(dtype):
    """The scan's one-pass float16 encoding gives the store's encoding of the stamps."""
    rng = np.random.default_rng(3)
    images = [np.round(rng.normal(0, 2000, (40, 50))).astype(np.float32) for _ in BANDS]
    images[0][12, 12] = 30000.0  # / 0.25: beyond the float16 range, clipped
    if dtype[1] == "f":
        images[1][20, 20] = np.nan
    x = np.array([12.0, 20.0, 1.0, 30.0, np.nan, 40.0, 12.0])
    y = np.array([12.0, 20.0, 1.0, 30.0, 5.0, 8.0, 30.0])
    scale = np.array([0.25, 2.0, 1.0], dtype=np.float32)
    want, want_reasons, none = cut_stamps(images, x, y, 5, BANDS)
    want_half, want_clipped = encode_float16(want, scale)
    want_half = want_half.copy()  # a scratch array
    half = np.full((len(x), len(BANDS), 5, 5), 7, dtype=np.uint16)
    got, reasons, clipped = cut_stamps(
        [im.astype(dtype) for im in images], x, y, 5, BANDS, encode=(scale, half[None])
    )
    assert none == 0 and want_clipped == clipped == 1
    assert reasons == want_reasons
    assert (reasons[1] != "") == (dtype[1] == "f")
    # decoded in place: the stamps are what the store holds
    np.testing.assert_array_equal(got, decode_float16(want_half, scale))
    np.testing.assert_array_equal(half[: len(got)], want_half.view(np.uint16))


def test_encoding_checks_its_buffer():
    images = _images(20, 20)
    for half in (np.zeros((1, 1, 3, 5, 5), np.float32), np.zeros((1, 3, 5, 5), np.uint16)):
        with pytest.raises(ValueError, match="16-bit"):
            cut_stamps(images, np.array([10.0]), np.array([10.0]), 5, BANDS,
                       encode=(np.ones(3), half))  # fmt: skip


def test_stamps_become_what_every_half_value_decodes_to():
    """The write-back computed while encoding equals decoding, over the whole float16 range."""
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16)
    values = halves[np.isfinite(halves)].astype(np.float32)
    # each value, and values between neighbours (ties and near-ties round to even)
    wide = np.concatenate([values, np.nextafter(values, np.float32(np.inf)),
                           np.nextafter(values, -np.float32(np.inf)),
                           np.float32(0.5) * (values[1:] + values[:-1]),
                           np.float32([70000.0, -1e30])])  # fmt: skip
    side = int(np.ceil(np.sqrt(len(wide))))
    tile = np.zeros(side * side, np.float32)
    tile[: len(wide)] = wide
    tile = tile.reshape(side, side)
    scale = np.array([0.5], dtype=np.float32)
    half = np.zeros((1, 1, side, side), np.uint16)
    centre = np.array([(side - 1) / 2])
    got, _, clipped = cut_stamps(
        [tile * 0.5], centre, centre, side, ("g",), encode=(scale, half[None])
    )
    want_half, want_clipped = encode_float16((tile * 0.5)[None, None], scale)
    np.testing.assert_array_equal(half, want_half.view(np.uint16))
    np.testing.assert_array_equal(
        got.view(np.uint32), decode_float16(want_half, scale).view(np.uint32)
    )
    assert clipped == want_clipped == 4  # 70000, -1e30 and the floats just beyond +-65504


@pytest.mark.parametrize("zstd", [False, True])
def test_encoding_into_the_store_file_gives_the_stores_bytes(zstd):
    """Stamps encoded straight into an image file (gaps of skipped objects closed)."""
    from lensfind.engine.shard_file import shard_file_bytes
    from lensfind.engine.store import CHUNK_CUTOUTS, image_file

    rng = np.random.default_rng(5)
    images = [rng.normal(0, 20, (60, 60)).astype(">f4") for _ in BANDS]
    images[2][30, 30] = np.nan
    x = rng.uniform(-2, 62, 40)
    y = rng.uniform(-2, 62, 40)
    x[7], y[7] = 30.0, 30.0
    scale = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    plain = np.zeros((1, 40, 3, 5, 5), np.uint16)
    want, reasons, _ = cut_stamps(images, x, y, 5, BANDS, encode=(scale, plain))
    assert 16 < len(want) < 40 and reasons[7].startswith("masked")
    expected = bytes(shard_file_bytes(plain[0, : len(want)].view(np.float16), CHUNK_CUTOUTS, zstd))
    f = image_file(40, (3, 5, 5), "zstd" if zstd else "none")
    got, _, _ = cut_stamps(images, x, y, 5, BANDS, encode=(scale, f.chunks))
    np.testing.assert_array_equal(got, want)
    assert bytes(f.seal(len(got))) == expected
