"""Writing the candidate catalogue: ``candidates.parquet`` and ``candidates.fits``.

Both files carry units, UCDs and a provenance record, so that astropy, TOPCAT
and pyarrow readers see what every column is and where the list came from:

* **FITS** (``candidates.fits``): a primary HDU and a ``CANDIDATES`` binary
  table. Both headers hold the provenance (``LENSFIND`` version, ``MODEL``,
  ``MODELSHA``, ``THRESH``, ``SURVEY``, ``DATE``, ``RUNID``, ``PRIORLR`` and
  where the prior came from, ``PRIORSRC``); the table has ``TUNITn`` (``deg``,
  ``arcsec``, ``mag``), ``TUCDn`` and ``TDISPn`` on its columns; every HDU has
  ``CHECKSUM``/``DATASUM`` (verify with ``astropy.io.fits.open(path,
  checksum=True)``). The model's sha256 is in the header, not repeated per row.
* **Parquet** (``candidates.parquet``): the same rows with ``model_sha256`` per
  row (the run-directory contract), plus astropy's own metadata
  (``table_meta_yaml``: units, UCDs, descriptions, the provenance less the run
  id and date, so that two scans of the same inputs write the same bytes; and
  string lengths), so ``astropy.table.Table.read("candidates.parquet")`` returns the
  columns with their units.

Keywords are at most 8 characters (no ``HIERARCH``), so the files pass a strict
FITS verification.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CANDIDATES_PARQUET = "candidates.parquet"
CANDIDATES_FITS = "candidates.fits"
#: Columns kept in Parquet only (the FITS header holds the value once).
PARQUET_ONLY = ("model_sha256",)

#: name -> (unit, UCD, TDISP, description) of the columns a catalogue may hold.
COLUMNS: dict[str, tuple[str | None, str, str | None, str]] = {
    "object_id": (None, "meta.id;meta.main", "I20", "input catalogue object id"),
    "ra": ("deg", "pos.eq.ra;meta.main", "F12.7", "right ascension (ICRS)"),
    "dec": ("deg", "pos.eq.dec;meta.main", "F12.7", "declination (ICRS)"),
    "tile": (None, "obs.field", None, "survey tile the cutout was cut from"),
    "score": (None, "stat.probability", "F9.6", "lens probability from the model"),
    "rank": (None, "meta.number", "I8", "rank by score, 1 = most lens-like"),
    "model_sha256": (None, "meta.id", None, "sha256 of the model's ONNX file"),
    "known_lens_name": (None, "meta.id.cross", None, "nearest known lens within the radius"),
    "known_lens_grade": (None, "meta.code.qual", None, "grade of that known lens"),
    "known_lens_sep_arcsec": ("arcsec", "pos.angDistance", "F8.3",
                              "separation from that known lens"),
    "extended_class": (None, "src.class.starGalaxy", "I3", "star/galaxy class of the input"),
    "flags": (None, "meta.code", "I6", "input catalogue flags"),
}  # fmt: skip
#: UCDs of magnitude columns by band (``mag_<band>``); other bands get ``phot.mag``.
BAND_UCDS = {"u": "em.opt.U", "g": "em.opt.B", "r": "em.opt.R", "i": "em.opt.I",
             "z": "em.opt.I", "y": "em.IR.J", "Y": "em.IR.J", "J": "em.IR.J", "H": "em.IR.H",
             "VIS": "em.opt"}  # fmt: skip


@dataclass(frozen=True)
class CandidateProvenance:
    """Where a candidate list came from, written into both catalogue files.

    Attributes
    ----------
    model : str
        Model name (its card's).
    model_sha256 : str
        sha256 of the model's ONNX file.
    threshold : float
        Candidate threshold on the lens probability (the list holds ``score >=``).
    survey : str
        Survey registry name.
    run_id : str
        Name of the run directory.
    prior_lens_rate : float
        Prior fraction of scanned galaxies that are lenses (expected purity).
    prior_source : str
        Where that prior came from (``--prior-lens-rate``, the region's planted
        fraction, or the sky default).
    version : str
        lensfind version that wrote the files.
    """

    model: str
    model_sha256: str
    threshold: float
    survey: str
    run_id: str
    prior_lens_rate: float
    prior_source: str
    version: str

    def header_cards(self) -> list[tuple[str, Any, str]]:
        """``(keyword, value, comment)`` FITS cards, keywords of at most 8 characters."""
        date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return [
            ("LENSFIND", self.version, "lensfind version that wrote this file"),
            ("MODEL", self.model, "model name (model card)"),
            ("MODELSHA", self.model_sha256, ""),  # sha256 of model.onnx: no room for a comment
            ("THRESH", self.threshold, "candidate threshold on the lens probability"),
            ("SURVEY", self.survey, "survey registry name"),
            ("DATE", date, "UTC time the file was written"),
            ("RUNID", self.run_id, "run directory name"),
            ("PRIORLR", self.prior_lens_rate, "prior lens rate (expected purity)"),
            ("PRIORSRC", self.prior_source[:40], "source of PRIORLR"),
        ]


def column_metadata(name: str) -> tuple[str | None, str | None, str | None, str]:
    """Unit, UCD, TDISP and description of a catalogue column (None: none known)."""
    if name in COLUMNS:
        return COLUMNS[name]
    if name.startswith("mag_"):
        band = name[4:]
        ucd = f"phot.mag;{BAND_UCDS[band]}" if band in BAND_UCDS else "phot.mag"
        return "mag", ucd, "F8.4", f"{band}-band magnitude (AB) from the input catalogue"
    return None, None, None, "carried from the input catalogue"


def astropy_table(candidates: pa.Table, provenance: CandidateProvenance) -> Any:
    """The candidates as an astropy Table with units, UCDs, formats and provenance meta."""
    from astropy.table import Column, Table

    table = Table()
    for name, col in zip(candidates.column_names, candidates.columns, strict=True):
        unit, ucd, tdisp, description = column_metadata(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            values = np.asarray(col.to_pylist(), dtype=str)
            values = values if values.size else values.astype("U1")
        else:  # null floats (no known lens) become NaN
            values = col.to_numpy(zero_copy_only=False)
        table[name] = Column(values, name=name, unit=unit, description=description)
        if ucd:
            table[name].meta["ucd"] = ucd
        if tdisp:
            table[name].meta["tdisp"] = tdisp
    table.meta["EXTNAME"] = "CANDIDATES"
    # no run id or date: two scans of the same inputs give byte-identical Parquet files
    table.meta["provenance"] = {k: v for k, v in asdict(provenance).items() if k != "run_id"}
    return table


def _parquet_metadata(table: Any) -> dict[bytes, bytes]:
    """astropy's Parquet metadata for ``table``: the YAML header and string lengths."""
    from astropy.table import meta

    header = table[:0].copy()
    header.meta = {k: v for k, v in table.meta.items() if k != "EXTNAME"}
    md = {"table_meta_yaml": "\n".join(meta.get_yaml_from_table(header))}
    for name in table.colnames:
        if table[name].dtype.kind == "U":
            md[f"table::len::{name}"] = str(table[name].dtype.itemsize // 4)
    return {k.encode(): v.encode() for k, v in md.items()}


def write_parquet(path: Path, candidates: pa.Table, provenance: CandidateProvenance) -> None:
    """Write ``candidates`` to ``path`` with astropy unit metadata (atomic rename)."""
    table = astropy_table(candidates, provenance)
    schema = candidates.schema.with_metadata(
        {**(candidates.schema.metadata or {}), **_parquet_metadata(table)}
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(candidates.cast(schema), tmp)
    tmp.replace(path)


def write_fits(path: Path, candidates: pa.Table, provenance: CandidateProvenance) -> None:
    """Write ``candidates`` (less :data:`PARQUET_ONLY`) as a FITS table (atomic rename)."""
    from astropy.io import fits

    keep = [c for c in candidates.column_names if c not in PARQUET_ONLY]
    table = astropy_table(candidates.select(keep), provenance)
    del table.meta["provenance"]
    hdu = fits.table_to_hdu(table)
    cards = provenance.header_cards()
    for key, value, comment in cards:
        hdu.header[key] = (value, comment)
    for i, name in enumerate(table.colnames, start=1):
        ucd, tdisp = table[name].meta.get("ucd"), table[name].meta.get("tdisp")
        if ucd:
            hdu.header[f"TUCD{i}"] = ucd
        if tdisp:
            hdu.header[f"TDISP{i}"] = tdisp
    primary = fits.PrimaryHDU()
    for key, value, comment in cards:
        primary.header[key] = (value, comment)
    tmp = path.with_name(f".{path.name}.tmp")
    fits.HDUList([primary, hdu]).writeto(tmp, overwrite=True, checksum=True)
    tmp.replace(path)


def write_candidates(run_dir: Path, candidates: pa.Table, provenance: CandidateProvenance) -> None:
    """Write ``candidates.parquet`` and ``candidates.fits`` into ``run_dir``."""
    write_parquet(run_dir / CANDIDATES_PARQUET, candidates, provenance)
    write_fits(run_dir / CANDIDATES_FITS, candidates, provenance)
