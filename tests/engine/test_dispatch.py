"""The dispatcher commits what finished before a storage error stops the run."""

import errno
import os
from types import SimpleNamespace

import pyarrow as pa
import pytest
from tqdm import tqdm

from lensfind.engine.dispatch import Dispatcher
from lensfind.engine.manifest import Manifest
from lensfind.engine.metrics import ScanMetrics
from lensfind.engine.shard import ShardResult


def _task(run_dir, k):
    objects = pa.table({"object_id": [k], "ra": [0.0], "dec": [0.0]})
    return SimpleNamespace(shard_id=f"s{k}", tile="t", run_dir=run_dir, objects=objects)


def _shard(task):
    if task.shard_id == "s3":  # the third shard's write finds the disk full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "images")
    return ShardResult(task.shard_id, f"{task.shard_id}.parquet", "0" * 64, {"scored": 1})


@pytest.mark.parametrize("attempt", range(8))  # one order of done futures would hide it
def test_a_disk_full_shard_stops_the_run_after_the_finished_shards_commit(tmp_path, attempt):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dispatcher = Dispatcher(run_dir, "fp", "sha", 0.5, ScanMetrics("des_y3", "sha"))
    tasks = [_task(run_dir, k) for k in (1, 2, 3, 4)]
    with tqdm(disable=True) as progress, pytest.raises(OSError, match="No space left"):
        dispatcher.run(_shard, tasks, workers=0, scheduler=None, progress=progress, total=4)
    # in-process, three tasks are in flight at once: shards 1 and 2 finished beside 3
    assert sorted(Manifest(run_dir).committed()) == ["s1", "s2"]
