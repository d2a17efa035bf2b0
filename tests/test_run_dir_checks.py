"""lensfind.run_dir_checks: a run directory that cannot be written is one line, not a traceback."""

import errno
import os
from pathlib import Path

import pytest

from lensfind.errors import RunDirError
from lensfind.run_dir_checks import (
    check_run_dir,
    describe_os_error,
    is_storage_error,
    reports_storage_errors,
)


def test_a_writable_directory_is_created_and_left_clean(tmp_path):
    check_run_dir(tmp_path / "a" / "run")
    assert (tmp_path / "a" / "run").is_dir() and not list((tmp_path / "a" / "run").iterdir())


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match=r"f/x/run: cannot be a run directory: .*/f is a regular"):
        check_run_dir(tmp_path / "f" / "x" / "run")


def test_describe_names_the_file_the_cause_and_the_errno():
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/run/scores/x.parquet")
    assert describe_os_error(Path("/data/run"), exc) == (
        "/data/run/scores/x.parquet: No space left on device (ENOSPC)"
    )
    assert is_storage_error(exc) and not is_storage_error(FileNotFoundError(2, "gone"))
    assert not is_storage_error(ValueError("no"))


def test_a_storage_error_of_a_run_becomes_one_line_with_the_resume_hint(tmp_path):
    @reports_storage_errors(lambda run_dir: 3)
    def run(config, plan, run_dir, fault):
        raise fault

    with pytest.raises(RunDirError) as info:
        run(None, None, tmp_path, OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert "Disk quota exceeded (EDQUOT); 3 committed shard(s) stay valid" in str(info.value)
    assert f"--resume --out {tmp_path}" in str(info.value)
    with pytest.raises(FileNotFoundError):  # not a storage error: passes through
        run(None, None, tmp_path, FileNotFoundError(errno.ENOENT, "gone"))
