"""Reading one Parquet file, the fast way.

``pyarrow.parquet.read_table`` goes through ``pyarrow.dataset``, whose first
import (with pandas) takes about 0.25 s: more than a small scan spends reading
all its tables. A single file needs none of it.
"""

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def read_parquet(path: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """The table in the Parquet file ``path`` (only ``columns``, if given)."""
    with pq.ParquetFile(path) as f:
        return f.read(columns=list(columns) if columns is not None else None)
