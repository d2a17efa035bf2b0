"""Checks of the directory a command writes into, and its I/O errors as one-line messages.

A run directory that cannot be written is an error of the run, not a crash:
:func:`check_run_dir` refuses ``--out`` before any work (under a regular file,
on a file system that takes no new directories such as ``/proc``, read-only,
no permission, full), and :func:`reports_storage_errors` turns a storage
error during a run (disk full, quota, the file system remounted read-only)
into a :class:`~lensfind.errors.RunDirError` saying which file, why, how many
shards were committed and that ``--resume`` continues: a shard counts only
once its manifest line is written, so a run stopped this way resumes as a
killed one does.
"""

import errno
import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lensfind.errors import RunDirError

F = TypeVar("F", bound=Callable[..., Any])

#: errno values that mean "this directory cannot take the run's files" (not a bug, not bad input)
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES,
                            errno.EPERM, errno.ENOTDIR, errno.EISDIR})  # fmt: skip


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`OSError` of the storage (:data:`STORAGE_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def describe_os_error(path: Path, exc: OSError) -> str:
    """``<file>: <cause> (<ERRNO>)`` for an I/O error met while writing under ``path``."""
    code = errno.errorcode.get(exc.errno or 0, "?")
    return f"{exc.filename or path}: {exc.strerror or exc} ({code})"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` if needed and check that a file can be written and synced in it.

    Raises
    ------
    RunDirError
        One line naming the path and the cause: a parent that is a regular
        file, a file system that takes no new directories, no permission,
        read-only, or no space.
    """
    run_dir = Path(run_dir)
    found = _nearest_existing(run_dir.absolute())
    if not found.is_dir():
        raise RunDirError(f"{run_dir}: cannot be a run directory: {found} is a regular file, "
                          "not a directory")  # fmt: skip
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-check-", dir=run_dir)
        try:
            os.write(fd, b"lensfind")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        extra = ""
        if exc.errno == errno.ENOENT:  # /proc, /sys: the parent exists but takes no directories
            extra = f"; the file system of {found} does not take new directories"
        raise RunDirError(f"{run_dir}: cannot write the run directory: "
                          f"{describe_os_error(run_dir, exc)}{extra}") from None  # fmt: skip


def reports_storage_errors(committed: Callable[[Path], int]) -> Callable[[F], F]:
    """Decorate ``fn(config, plan, run_dir, ...)``: a storage error becomes a :class:`RunDirError`.

    ``committed(run_dir)`` counts the shards committed when it happened, for
    the message; other errors pass through unchanged.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(config: Any, plan: Any, run_dir: Path, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(config, plan, run_dir, *args, **kwargs)
            except OSError as exc:
                if not is_storage_error(exc):
                    raise
                try:
                    n = f"{committed(run_dir)} committed shard(s)"
                except OSError:
                    n = "the committed shards"
                raise RunDirError(
                    f"run stopped: {describe_os_error(run_dir, exc)}; {n} stay valid: free "
                    f"space (or fix the directory) and rerun with --resume --out {run_dir} "
                    "to continue"
                ) from None

        return wrapper  # type: ignore[return-value]

    return decorate
