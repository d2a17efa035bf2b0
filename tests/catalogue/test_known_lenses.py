"""Cross-matching candidate positions against the vendored lenscat catalogue."""

import gzip
import hashlib

import numpy as np
import pyarrow as pa
import pytest

from lensfind.catalogue.known_lenses import (
    KNOWN_LENS_COLUMNS,
    LENSCAT_CSV,
    LENSCAT_CSV_SHA256,
    add_known_lens_columns,
    read_known_lenses,
)
from lensfind.errors import CatalogError


@pytest.fixture(scope="module")
def known():
    return read_known_lenses()


def test_vendored_csv_is_lenscat_1_1_3(known):
    assert hashlib.sha256(gzip.decompress(LENSCAT_CSV.read_bytes())).hexdigest() == (
        LENSCAT_CSV_SHA256
    )
    assert known.num_rows == 32838
    assert set(known["grade"].to_pylist()) == {"confident", "probable"}
    assert (LENSCAT_CSV.parent / "LICENSE-lenscat").is_file()


def test_planted_positions_match_with_their_offsets(known):
    rows = [0, 100, 5000, 20000]
    ra0 = known["ra"].to_numpy()[rows]
    dec0 = known["dec"].to_numpy()[rows]
    offsets = np.array([0.0, 1.0, 2.5, 4.0])  # arcsec, along declination
    dec = dec0 + offsets / 3600
    far = (ra0[0] + 180.0) % 360.0, -dec0[0]  # nowhere near (antipode of a lens)
    cand = pa.table({"ra": np.r_[ra0, far[0]], "dec": np.r_[dec, far[1]]})
    out = add_known_lens_columns(cand, radius_arcsec=3.0)
    assert out.column_names[-3:] == list(KNOWN_LENS_COLUMNS)
    names = out["known_lens_name"].to_pylist()
    sep = out["known_lens_sep_arcsec"].to_numpy()
    want = known["name"].to_numpy(zero_copy_only=False)[rows]
    for i in range(3):  # nearest entry may be a duplicate of the planted one at 0"
        assert sep[i] <= offsets[i] + 1e-6
        if sep[i] == pytest.approx(offsets[i], abs=1e-6):
            assert names[i] == want[i]
    assert names[4] == "" and out["known_lens_grade"][4].as_py() == "" and np.isnan(sep[4])
    assert out["known_lens_sep_arcsec"][4].as_py() is None  # null in Arrow
    wide = add_known_lens_columns(cand, radius_arcsec=5.0)
    assert wide["known_lens_sep_arcsec"].to_numpy()[3] <= 4.0 + 1e-6


def test_custom_catalogue_and_errors(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('name,RA [deg],DEC [deg],grading\n"A, B",10.0,-5.0,confident\n')
    cand = pa.table({"ra": [10.0, 10.0], "dec": [-5.0 + 1 / 3600, 0.0]})
    out = add_known_lens_columns(cand, 3.0, path)
    assert out["known_lens_name"].to_pylist() == ["A, B", ""]
    assert out["known_lens_sep_arcsec"][0].as_py() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(CatalogError, match="not found"):
        read_known_lenses(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(CatalogError, match=r"bad\.csv"):
        read_known_lenses(bad)
