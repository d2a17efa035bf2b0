"""The per-epoch metrics log of a training run: ``metrics.csv`` and ``metrics.json``.

Both files are rewritten (temporary name, then rename) after every epoch, so they
always hold the complete log up to the last finished epoch, also after a resume.
"""

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

CSV_NAME = "metrics.csv"
JSON_NAME = "metrics.json"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_metrics_log(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (one dict per epoch, same keys) as CSV and JSON in ``out_dir``."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write(out_dir / CSV_NAME, buf.getvalue())
    _write(out_dir / JSON_NAME, json.dumps(rows, indent=1))


def read_metrics_log(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.json`` (empty if there is none)."""
    path = out_dir / JSON_NAME
    return list(json.loads(path.read_text())) if path.is_file() else []
