"""lensfind.catalogue.candidate_files: units, UCDs, provenance and checksums of the catalogue."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from lensfind.catalogue.candidate_files import (
    CandidateProvenance,
    column_metadata,
    write_candidates,
)

SHA = "ab" * 32
PROVENANCE = CandidateProvenance(
    model="des_y3", model_sha256=SHA, threshold=0.5, survey="des_y3", run_id="run-1",
    prior_lens_rate=0.055, prior_source="the region's planted lenses", version="9.9.9",
)  # fmt: skip


def _candidates(n: int = 3) -> pa.Table:
    return pa.table({
        "object_id": pa.array(np.arange(1, n + 1) + 2**62, type=pa.int64()),
        "ra": np.linspace(10.0, 10.1, n), "dec": np.linspace(-5.0, -5.1, n),
        "tile": [f"DES{i:04d}" for i in range(n)],
        "score": pa.array(np.linspace(0.99, 0.6, n), type=pa.float32()),
        "mag_g": pa.array(np.full(n, 21.5), type=pa.float32()),
        "mag_r": pa.array(np.full(n, 20.5), type=pa.float32()),
        "flux_aper": np.ones(n),
        "rank": pa.array(np.arange(1, n + 1), type=pa.int64()),
        "model_sha256": [SHA] * n,
        "known_lens_name": ["SL1"] + [""] * (n - 1),
        "known_lens_grade": ["confident"] + [""] * (n - 1),
        "known_lens_sep_arcsec": pa.array([0.4] + [None] * (n - 1), type=pa.float64()),
    })  # fmt: skip


def test_fits_has_units_ucds_formats_and_provenance(tmp_path):
    write_candidates(tmp_path, _candidates(), PROVENANCE)
    table = Table.read(tmp_path / "candidates.fits")  # TOPCAT-style: units on the columns
    assert str(table["ra"].unit) == "deg" and str(table["dec"].unit) == "deg"
    assert str(table["known_lens_sep_arcsec"].unit) == "arcsec"
    assert str(table["mag_g"].unit) == "mag" and str(table["mag_r"].unit) == "mag"
    assert table["score"].unit is None and table["flux_aper"].unit is None
    assert "model_sha256" not in table.colnames, "the sha is in the header, not in every row"
    assert table["object_id"].tolist() == _candidates()["object_id"].to_pylist()
    with fits.open(tmp_path / "candidates.fits", checksum=True) as hdus:
        for hdu in hdus:
            assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1
        hdus.verify("exception")  # strict FITS: no HIERARCH, no over-long cards
        primary, cand = hdus[0].header, hdus["CANDIDATES"].header
        for header in (primary, cand):
            assert header["MODEL"] == "des_y3" and header["MODELSHA"] == SHA
            assert header["THRESH"] == 0.5 and header["SURVEY"] == "des_y3"
            assert header["LENSFIND"] == "9.9.9" and header["RUNID"] == "run-1"
            assert header["PRIORLR"] == 0.055 and "planted" in header["PRIORSRC"]
            assert header["DATE"].startswith("20")
        columns = [cand[f"TTYPE{i}"] for i in range(1, cand["TFIELDS"] + 1)]
        ucd = {c: cand.get(f"TUCD{i}") for i, c in enumerate(columns, start=1)}
        tdisp = {c: cand.get(f"TDISP{i}") for i, c in enumerate(columns, start=1)}
    assert ucd["ra"] == "pos.eq.ra;meta.main" and ucd["dec"] == "pos.eq.dec;meta.main"
    assert ucd["object_id"] == "meta.id;meta.main" and ucd["mag_g"] == "phot.mag;em.opt.B"
    assert tdisp["ra"] == "F12.7" and tdisp["score"] == "F9.6"


def test_a_damaged_fits_file_fails_its_checksum(tmp_path):
    write_candidates(tmp_path, _candidates(), PROVENANCE)
    path = tmp_path / "candidates.fits"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # inside the table's data
    path.write_bytes(bytes(data))
    with (
        pytest.warns(AstropyUserWarning, match="(Check|Data)sum verification failed for HDU"),
        fits.open(path, checksum=True),
    ):
        pass


def test_parquet_reads_in_astropy_with_units_and_provenance(tmp_path):
    cand = _candidates()
    write_candidates(tmp_path, cand, PROVENANCE)
    table = Table.read(tmp_path / "candidates.parquet")  # no warning (tests turn them to errors)
    assert table.colnames == cand.column_names
    assert str(table["ra"].unit) == "deg" and str(table["known_lens_sep_arcsec"].unit) == "arcsec"
    assert table["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert table["ra"].description == "right ascension (ICRS)"
    assert table.meta["provenance"]["model_sha256"] == SHA
    assert table.meta["provenance"]["threshold"] == 0.5
    # pyarrow sees the same rows as before, nulls kept
    back = pq.read_table(tmp_path / "candidates.parquet")
    assert back.equals(cand)
    assert back["known_lens_sep_arcsec"].null_count == cand.num_rows - 1


def test_an_empty_list_writes_readable_files(tmp_path):
    write_candidates(tmp_path, _candidates().slice(0, 0), PROVENANCE)
    assert len(Table.read(tmp_path / "candidates.fits")) == 0
    assert len(Table.read(tmp_path / "candidates.parquet")) == 0


def test_column_metadata_of_bands_and_unknown_columns():
    assert column_metadata("mag_z")[:2] == ("mag", "phot.mag;em.opt.I")
    assert column_metadata("mag_VIS")[:2] == ("mag", "phot.mag;em.opt")
    assert column_metadata("mag_q")[:2] == ("mag", "phot.mag")
    assert column_metadata("photoz")[:3] == (None, None, None)
