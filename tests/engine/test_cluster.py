"""lensfind.engine.cluster: executors, and one task per GPU through Dask resources."""

import os

import pytest

from lensfind.engine.cluster import (
    GPU_RESOURCE,
    DaskExecutor,
    Executor,
    InProcessExecutor,
    executor,
    gpu_worker_specs,
    local_gpus,
    submit_options,
)


def test_gpu_worker_specs_pin_one_gpu_each():
    specs = gpu_worker_specs(3)
    assert list(specs) == ["gpu-0", "gpu-1", "gpu-2"]
    for i, spec in enumerate(specs.values()):
        opts = spec["options"]
        assert opts["env"] == {"CUDA_VISIBLE_DEVICES": str(i)}
        assert opts["resources"] == {GPU_RESOURCE: 1} and opts["nthreads"] == 1


def test_in_process_and_cpu_clusters_ask_for_no_resources():
    from distributed import Client, LocalCluster

    assert submit_options(InProcessExecutor()) == {}
    assert isinstance(InProcessExecutor(), Executor)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert submit_options(client) == {}


def test_local_gpus_is_zero_on_cpu_or_remote_clusters():
    assert local_gpus("cpu", 2, None) == 0
    assert local_gpus("auto", 2, "tcp://127.0.0.1:1") == 0
    assert local_gpus("cuda", 0, None) == 0


def _visible_device() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_local_gpu_cluster_runs_one_task_per_pinned_worker():
    """The GPU cluster's workers (no real GPU needed) each see one device and take GPU tasks."""
    with executor(workers=5, gpus=2) as ex:
        assert isinstance(ex, DaskExecutor) and isinstance(ex, Executor)
        assert ex.n_workers() == 2  # one per GPU, whatever --workers says
        opts = ex.submit_options()
        assert opts == {"resources": {GPU_RESOURCE: 1}}
        seen = {ex.submit(_visible_device, pure=False, **opts).result() for _ in range(8)}
        assert seen <= {"0", "1"} and seen


def test_scan_on_a_cluster_with_a_gpu_worker_runs_every_shard_there(
    full_run, region, scan_config, tmp_path
):
    """--scheduler: a worker advertising GPU=1 takes every shard; the plain one none."""
    from distributed import Scheduler, SpecCluster, Worker

    from lensfind.engine.scan import run_scan

    workers = {
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {GPU_RESOURCE: 1}}},
        "cpu": {"cls": Worker, "options": {"nthreads": 1}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster:
        result = run_scan(scan_config(region, tmp_path / "run", workers=0,
                                      scheduler=cluster.scheduler_address))  # fmt: skip
        # every shard, plus the warm-up, on the GPU worker only
        assert cluster.workers["gpu"].state.executed_count == result.summary["n_shards"] + 1
        assert cluster.workers["cpu"].state.executed_count == 0
    assert (result.run_dir / "candidates.parquet").read_bytes() == (
        full_run.run_dir / "candidates.parquet"
    ).read_bytes()


@pytest.mark.parametrize("n", [0, 1])
def test_gpu_specs_of_no_or_one_gpu(n):
    assert len(gpu_worker_specs(n)) == n


def _malloc_environment() -> dict[str, str | None]:
    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "OMP_NUM_THREADS")
    return {k: os.environ.get(k) for k in names}


def test_local_workers_keep_large_temporaries_and_dasks_thread_limits():
    """Local workers' malloc keeps blocks up to 32 MiB on the heap; one BLAS thread stays."""
    with executor(workers=1) as ex:
        env = ex.submit(_malloc_environment, pure=False).result()
    assert env == {"MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
                   "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "OMP_NUM_THREADS": "1"}  # fmt: skip


def test_both_executors_run_a_task_and_report_it_done(tmp_path):
    """One protocol: submit, wait_any, n_workers and warm_up mean the same on both."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        for ex in (InProcessExecutor(), DaskExecutor(client)):
            futures = [ex.submit(pow, 2, k) for k in range(4)]
            done = set()
            while len(done) < 4:
                done |= set(ex.wait_any([f for f in futures if f not in done]))
            assert [f.result() for f in futures] == [1, 2, 4, 8]
            assert ex.n_workers() == 1 and ex.submit_options() == {}
            mark = tmp_path / type(ex).__name__
            ex.warm_up(mark.touch, {})
            assert mark.exists()


def test_executor_kind_threads_only_small_local_cpu_runs_that_name_no_workers():
    from lensfind.engine.cluster import THREADS_MAX_OBJECTS, executor_kind

    assert executor_kind(None, None, THREADS_MAX_OBJECTS) == "threads"
    assert executor_kind(None, None, THREADS_MAX_OBJECTS + 1) == "dask"
    assert executor_kind(2, None, 10) == "dask"  # --workers 2 asks for a cluster
    assert executor_kind(0, None, 10) == "in-process"
    assert executor_kind(None, "tcp://host:8786", 10) == "dask"
    assert executor_kind(None, None, 10, gpus=1) == "dask"  # one worker per GPU
