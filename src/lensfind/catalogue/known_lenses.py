"""Known strong lenses, and cross-matching candidates against them.

The default catalogue is lenscat's bundled CSV (version
:data:`LENSCAT_VERSION`, 32 838 lenses and candidates; MIT licence; cite
Vujeva et al. 2025, doi:10.1098/rsta.2024.0168), vendored gzipped under
``lensfind/data/known_lenses/`` so that nothing is downloaded and the heavy
``lenscat`` package is not needed. Any CSV (optionally gzipped) with lenscat's
columns ``name``, ``RA [deg]``, ``DEC [deg]`` and ``grading`` can replace it.

A candidate matches the nearest known lens within the radius; unmatched
candidates get an empty name and grade and a null separation (NaN in numpy,
masked in the FITS catalogue), so that two runs' catalogues compare equal.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.errors import CatalogError

#: The lenscat release whose catalogue is vendored.
LENSCAT_VERSION = "1.1.3"
#: sha256 of the uncompressed ``lenscat/data/catalog.csv`` of that release.
LENSCAT_CSV_SHA256 = "7de5111afb6486c119198cb2df868a2e6a15f79869e6cdc8109ec7d59b06a7cc"
KNOWN_LENSES_DIR = Path(__file__).resolve().parent.parent / "data" / "known_lenses"
LENSCAT_CSV = KNOWN_LENSES_DIR / f"lenscat-{LENSCAT_VERSION}.csv.gz"
#: Default match radius, arcsec (see :data:`KNOWN_LENS_COLUMNS`).
DEFAULT_KNOWN_LENS_RADIUS_ARCSEC = 3.0
#: Columns added to the candidates.
KNOWN_LENS_COLUMNS = ("known_lens_name", "known_lens_grade", "known_lens_sep_arcsec")
_COLUMNS = {"name": "name", "RA [deg]": "ra", "DEC [deg]": "dec", "grading": "grade"}


def read_known_lenses(path: Path | None = None) -> pa.Table:
    """Read a known-lens catalogue: ``name``, ``ra``, ``dec`` (deg), ``grade``.

    Parameters
    ----------
    path : Path, optional
        A lenscat-format CSV (``.csv`` or ``.csv.gz``); default the vendored
        lenscat catalogue (:data:`LENSCAT_CSV`).

    Raises
    ------
    CatalogError
        The file is missing, unreadable, lacks a column, or has non-finite or
        out-of-range coordinates (named with the file).
    """
    import pyarrow.csv as pacsv

    path = LENSCAT_CSV if path is None else Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: known-lens catalogue not found")
    try:
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(include_columns=list(_COLUMNS))
        )
    except (pa.ArrowInvalid, KeyError, OSError) as exc:
        raise CatalogError(f"{path}: not a lenscat-format CSV ({exc})") from None
    table = table.rename_columns([_COLUMNS[c] for c in table.column_names])
    ra = table["ra"].to_numpy(zero_copy_only=False).astype(float)
    dec = table["dec"].to_numpy(zero_copy_only=False).astype(float)
    if not (np.isfinite(ra).all() and np.isfinite(dec).all() and (np.abs(dec) <= 90).all()):
        raise CatalogError(f"{path}: non-finite or out-of-range RA/DEC")
    return pa.table(
        {
            "name": table["name"].cast(pa.string()),
            "ra": pa.array(ra),
            "dec": pa.array(dec),
            "grade": table["grade"].cast(pa.string()),
        }
    )


def match_known_lenses(
    ra_deg: np.ndarray, dec_deg: np.ndarray, known: pa.Table, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest known lens of each position within ``radius_arcsec``.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray
        Positions to match, degrees (ICRS).
    known : pyarrow.Table
        From :func:`read_known_lenses`.
    radius_arcsec : float
        Match radius, arcsec (great-circle separation).

    Returns
    -------
    name, grade : ndarray of str
        The matched lens's name and lenscat grading; ``""`` where none matched.
    sep_arcsec : ndarray of float
        Separation to it, arcsec; NaN where none matched.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    n = len(ra_deg)
    name = np.full(n, "", dtype=object)
    grade = np.full(n, "", dtype=object)
    sep = np.full(n, np.nan)
    if n == 0 or known.num_rows == 0:
        return name, grade, sep
    cat = SkyCoord(known["ra"].to_numpy() * u.deg, known["dec"].to_numpy() * u.deg)
    pos = SkyCoord(np.asarray(ra_deg, float) * u.deg, np.asarray(dec_deg, float) * u.deg)
    idx, d2d, _ = pos.match_to_catalog_sky(cat)
    d_arcsec = d2d.to_value(u.arcsec)
    hit = d_arcsec <= radius_arcsec
    names = known["name"].to_numpy(zero_copy_only=False)
    grades = known["grade"].to_numpy(zero_copy_only=False)
    name[hit], grade[hit], sep[hit] = names[idx[hit]], grades[idx[hit]], d_arcsec[hit]
    return name, grade, sep


def add_known_lens_columns(
    candidates: pa.Table, radius_arcsec: float, catalog: Path | None = None
) -> pa.Table:
    """``candidates`` with :data:`KNOWN_LENS_COLUMNS` appended (cross-matched on ra/dec)."""
    if radius_arcsec < 0:
        raise CatalogError(f"known-lens radius must be >= 0 arcsec, got {radius_arcsec}")
    known = read_known_lenses(catalog)
    name, grade, sep = match_known_lenses(
        candidates["ra"].to_numpy(zero_copy_only=False),
        candidates["dec"].to_numpy(zero_copy_only=False),
        known,
        radius_arcsec,
    )
    for col, values, kind in zip(
        KNOWN_LENS_COLUMNS, (name, grade, sep), (pa.string(), pa.string(), pa.float64()),
        strict=True,
    ):  # fmt: skip
        # from_pandas: NaN separations become nulls
        candidates = candidates.append_column(col, pa.array(values, type=kind, from_pandas=True))
    return candidates
