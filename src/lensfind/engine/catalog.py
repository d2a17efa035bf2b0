"""Reading and validating object catalogues: Parquet, FITS tables, or HATS catalogues.

A HATS catalogue (HEALPix-partitioned Parquet, as written by hats-import and read
by lsdb) is a directory with a ``hats.properties`` (or ``properties``) file and
``dataset/Norder=*/Dir=*/Npix=*.parquet``; its ``hats_col_ra`` / ``hats_col_dec``
columns are read as ``ra`` / ``dec``, and its ``_healpix_29`` spatial index is
kept (the plan orders shards by it).
"""

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.digests import file_digest
from lensfind.errors import CatalogError
from lensfind.parquet_files import read_parquet

REQUIRED = ("object_id", "ra", "dec")
HATS_PROPERTIES = ("hats.properties", "properties")
HEALPIX_29 = "_healpix_29"


def is_hats(path: Path) -> bool:
    """Whether ``path`` is a HATS catalogue directory."""
    return path.is_dir() and any((path / name).is_file() for name in HATS_PROPERTIES)


def hats_properties(path: Path) -> dict[str, str]:
    """The ``key=value`` properties of a HATS catalogue."""
    name = next(n for n in HATS_PROPERTIES if (path / n).is_file())
    props = {}
    for line in (path / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def hats_files(path: Path) -> list[Path]:
    """The partition files of a HATS catalogue, in a fixed order."""
    return sorted(
        p for p in (path / "dataset").rglob("*.parquet") if not p.name.startswith(("_", "."))
    )


def _read_hats(path: Path) -> pa.Table:
    files = hats_files(path)
    if not files:
        raise CatalogError(f"{path}: HATS catalogue without partition files under dataset/")
    table = pa.concat_tables([read_parquet(f) for f in files], promote_options="default")
    props = hats_properties(path)
    rename = {props.get("hats_col_ra", "ra"): "ra", props.get("hats_col_dec", "dec"): "dec"}
    return table.rename_columns([rename.get(c, c) for c in table.column_names])


def catalog_sha256(path: Path) -> str:
    """sha256 of a catalogue's bytes (for a HATS directory: of its partition files)."""
    if not path.is_dir():
        return file_digest(path)
    h = hashlib.sha256()
    for f in hats_files(path):
        h.update(f"{f.relative_to(path).as_posix()}:{file_digest(f)};".encode())
    return h.hexdigest()


def _native(values: np.ndarray) -> np.ndarray:
    """FITS columns are big-endian bytes: give native-endian numbers and ``str``."""
    if values.dtype.kind == "S":
        return np.char.decode(values, "ascii").astype(str)
    if values.dtype.byteorder not in ("=", "|"):
        return values.astype(values.dtype.newbyteorder("="))
    return values


def read_catalog(path: Path) -> pa.Table:
    """Read a catalogue and check it has ``object_id``, ``ra``, ``dec`` (deg), unique ids.

    Raises :class:`CatalogError` naming the file and the column at fault.
    """
    try:
        if is_hats(path):
            table = _read_hats(path)
        elif path.suffix == ".parquet":
            table = read_parquet(path)
        else:
            from astropy.table import Table

            t = Table.read(path)  # a masked (TNULL) value is null, never its fill value
            table = pa.table({n: pa.array(_native(np.asarray(t[n])), mask=np.ma.getmaskarray(t[n]))
                              for n in t.colnames})  # fmt: skip
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalogue not found") from None
    except CatalogError:
        raise
    except Exception as exc:  # any parser error: name the file
        raise CatalogError(f"{path}: cannot read catalogue ({exc})") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        have = ", ".join(table.column_names)
        raise CatalogError(f"{path}: missing column(s) {', '.join(missing)} (have: {have})")
    if table.num_rows == 0:
        raise CatalogError(f"{path}: the catalogue is empty (no objects to scan)")
    if nulls := table.column("object_id").null_count:
        row = np.flatnonzero(table.column("object_id").is_null().to_numpy())[0]
        raise CatalogError(f"{path}: column object_id has {nulls} null(s), first at row {row}")
    ids = table.column("object_id").to_numpy()
    if ids.dtype.kind not in "iu":
        raise CatalogError(f"{path}: column object_id must be integer, got {ids.dtype}")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise CatalogError(f"{path}: object_id {uniq[counts > 1][0]} appears more than once")
    for col in ("ra", "dec"):
        if table.column(col).type not in (pa.float64(), pa.float32()):
            raise CatalogError(f"{path}: column {col} must be float degrees")
    return table
