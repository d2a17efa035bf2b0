"""The commit log of a run: one JSON line per committed shard.

A shard's outputs are renamed into place first; appending its manifest line
(flushed and fsynced) is the commit. A line that is cut short by a crash is
ignored on reading, so a half-written commit never counts.
"""

import json
import os
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.jsonl"


class Manifest:
    """Append-only manifest at ``run_dir/manifest.jsonl`` (single writer: the driver)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / MANIFEST_NAME

    def committed(self) -> dict[str, dict[str, Any]]:
        """Committed shards by id (complete lines only)."""
        out: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn final line from a killed run
            out[entry["shard_id"]] = entry
        return out

    def commit(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` as one line and fsync it."""
        line = json.dumps(entry, sort_keys=True) + "\n"
        # A torn line from a crash would glue onto ours: start on a fresh line.
        prefix = ""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    prefix = "\n"
        with open(self.path, "a") as f:
            f.write(prefix + line)
            f.flush()
            os.fsync(f.fileno())
