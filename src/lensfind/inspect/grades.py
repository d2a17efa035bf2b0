"""A run's visual grades, ``RUN/grades.csv``: one row per graded object (and grader).

Columns ``object_id,grade,graded_utc`` and, once any grade carries a grader's
name, ``grader``. Grades are the visual-inspection classes of lens searches:
``A`` sure lens, ``B`` probable, ``C`` possible, ``X`` not a lens. Grading an
object again replaces its row (per grader). Every change rewrites the whole
file to a temporary name, flushes it to disk and renames it into place, under
a lock file that serialises servers grading the same run: a reader, a reload
or a killed server sees the old file or the new one, never half of one.
"""

import csv
import fcntl
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lensfind.errors import LensfindError

__all__ = ["GRADES", "GRADES_NAME", "Grade", "GradesError", "GradesFile"]

GRADES_NAME = "grades.csv"
#: Grade letter -> meaning.
GRADES = {"A": "sure lens", "B": "probable lens", "C": "possible lens", "X": "not a lens"}
COLUMNS = ("object_id", "grade", "graded_utc")


class GradesError(LensfindError):
    """A grades file that cannot be read, or a grade that is not one of :data:`GRADES`."""


@dataclass(frozen=True)
class Grade:
    """One object's grade: ``graded_utc`` is ISO 8601 UTC, ``grader`` empty when unnamed."""

    object_id: int
    grade: str
    graded_utc: str
    grader: str = ""


class GradesFile:
    """The grades of one run directory, read from and written to its ``grades.csv``.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    grader : str
        Name recorded with every grade this object writes (``""``: no name).
    """

    def __init__(self, run_dir: Path, grader: str = "") -> None:
        if "," in grader or "\n" in grader:
            raise GradesError(f"--grader {grader!r}: commas and newlines are not allowed")
        self.path = Path(run_dir) / GRADES_NAME
        self.grader = grader
        self._lock = threading.Lock()

    def read(self) -> list[Grade]:
        """Every row of the file, in file order (empty if there is no file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and not set(COLUMNS) <= set(rows[0]):
            raise GradesError(f"{self.path}: needs columns {', '.join(COLUMNS)}")
        out = []
        for line, row in enumerate(rows, start=2):
            try:
                out.append(Grade(int(row["object_id"]), _checked(row["grade"]),
                                 row["graded_utc"], row.get("grader") or ""))  # fmt: skip
            except (ValueError, GradesError) as exc:
                raise GradesError(f"{self.path}, line {line}: {exc}") from None
        return out

    def current(self) -> dict[int, str]:
        """object_id -> this grader's grade (with no grader name: the latest of anyone's)."""
        return {g.object_id: g.grade for g in self.read()
                if not self.grader or g.grader == self.grader}  # fmt: skip

    def set(self, object_id: int, grade: str) -> Grade:
        """Record ``grade`` for ``object_id`` (replacing this grader's earlier one), atomically."""
        new = Grade(int(object_id), _checked(grade), _now_utc(), self.grader)
        with self._lock, self._file_lock():
            rows = self.read()
            for i, old in enumerate(rows):
                if (old.object_id, old.grader) == (new.object_id, new.grader):
                    rows[i] = new
                    break
            else:
                rows.append(new)
            self._write(rows)
        return new

    def _write(self, rows: list[Grade]) -> None:
        named = any(r.grader for r in rows)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow((*COLUMNS, "grader") if named else COLUMNS)
        for r in rows:
            values = (r.object_id, r.grade, r.graded_utc)
            writer.writerow((*values, r.grader) if named else values)
        tmp = self.path.with_name(f".{GRADES_NAME}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        with open(self.path.with_name(f".{GRADES_NAME}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _checked(grade: str) -> str:
    g = str(grade).strip().upper()
    if g not in GRADES:
        raise GradesError(f"grade {grade!r} is not one of {', '.join(GRADES)}")
    return g


def _now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
