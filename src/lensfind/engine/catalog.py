"""Reading and validating object catalogues (Parquet or FITS tables)."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.errors import CatalogError

REQUIRED = ("object_id", "ra", "dec")


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
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:
            from astropy.table import Table

            t = Table.read(path)
            table = pa.table({name: _native(np.asarray(t[name])) for name in t.colnames})
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalogue not found") from None
    except Exception as exc:  # any parser error: name the file
        raise CatalogError(f"{path}: cannot read catalogue ({exc})") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        have = ", ".join(table.column_names)
        raise CatalogError(f"{path}: missing column(s) {', '.join(missing)} (have: {have})")
    if table.num_rows == 0:
        raise CatalogError(f"{path}: the catalogue is empty (no objects to scan)")
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
