"""Executors for shard tasks: a Dask cluster (local or remote), threads, or this process.

Small runs that do not name ``workers`` use threads (:func:`executor_kind`): the shards'
work releases the GIL, and a cluster's start-up would cost more than it saves.

On GPUs, Dask's resources keep one task per GPU: local GPU clusters start one
single-threaded worker per visible GPU, pinned to it with
``CUDA_VISIBLE_DEVICES`` and advertising the resource ``GPU=1``; workers of an
existing cluster advertise it with ``dask worker --resources GPU=1`` (the
``deploy/`` recipes do). Whenever the cluster's workers advertise GPUs, every
shard task asks for one (:func:`submit_options`), so tasks only run on GPU
workers and never two on one GPU.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as cf_wait
from typing import Any, Protocol, runtime_checkable

#: Dask worker resource a GPU worker advertises (``dask worker --resources GPU=1``).
GPU_RESOURCE = "GPU"
#: Workers of a run that does not say how many (threads or local processes).
DEFAULT_WORKERS = 2
#: Largest run (objects to score) that runs on threads when ``workers`` is not given.
THREADS_MAX_OBJECTS = 20_000

log = logging.getLogger(__name__)


@runtime_checkable
class Executor(Protocol):
    """Where shard tasks run: in this process or on a Dask cluster."""

    def submit(self, fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
        """Start ``fn(*args)``; return its future (``options`` from :meth:`submit_options`)."""
        ...

    def n_workers(self) -> int:
        """Workers that take tasks at once (at least 1)."""
        ...

    def submit_options(self) -> dict[str, Any]:
        """Extra ``submit`` arguments every shard task needs (e.g. a GPU resource)."""
        ...

    def warm_up(self, fn: Callable[[], Any], options: dict[str, Any]) -> None:
        """Run ``fn()`` once where each worker will run shards (errors raise)."""
        ...

    def wait_any(self, futures: list[Any]) -> list[Any]:
        """The futures of ``futures`` that are done (at least one)."""
        ...


class InProcessExecutor:
    """Runs tasks one by one in this process (``--workers 0``; for debugging)."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut

    def n_workers(self) -> int:
        return 1

    def submit_options(self) -> dict[str, Any]:
        return {}

    def warm_up(self, fn: Callable[[], Any], options: dict[str, Any]) -> None:
        fn()

    def wait_any(self, futures: list[Any]) -> list[Any]:
        return list(cf_wait(futures, return_when=FIRST_COMPLETED).done)


class ThreadExecutor(InProcessExecutor):
    """Runs tasks on ``n`` threads of this process (small local scans); no warm-up: the
    threads pay the one-off costs in their first shard, which a small run waits for anyway."""

    def __init__(self, pool: ThreadPoolExecutor, n: int) -> None:
        self.pool, self.n = pool, n

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        return self.pool.submit(fn, *args, **kwargs)

    def n_workers(self) -> int:
        return self.n

    def warm_up(self, fn: Callable[[], Any], options: dict[str, Any]) -> None:
        return None


class DaskExecutor:
    """Shard tasks on a Dask cluster through its ``distributed.Client``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
        return self.client.submit(fn, *args, **options)

    def _workers(self) -> dict[str, Any]:
        return dict(self.client.scheduler_info().get("workers", {}))

    def n_workers(self) -> int:
        return len(self._workers()) or 1

    def submit_options(self) -> dict[str, Any]:
        """Ask for a GPU when the cluster's workers advertise GPUs (one task per GPU)."""
        if any((w.get("resources") or {}).get(GPU_RESOURCE) for w in self._workers().values()):
            return {"resources": {GPU_RESOURCE: 1}}
        return {}

    def warm_up(self, fn: Callable[[], Any], options: dict[str, Any]) -> None:
        """``fn()`` as a task pinned to each worker whose resources meet ``options``.

        It runs in the thread that then runs the shards (whose per-thread
        buffers it grows).
        """
        from distributed import wait

        need = options.get("resources", {}).items()
        workers = [w for w, i in self._workers().items()
                   if all(i.get("resources", {}).get(r, 0) >= k for r, k in need)]  # fmt: skip
        futures = [self.client.submit(fn, workers=[w], allow_other_workers=False, pure=False,
                                      **options) for w in workers]  # fmt: skip
        wait(futures)
        for f in futures:
            f.result()

    def wait_any(self, futures: list[Any]) -> list[Any]:
        from distributed import wait

        return list(wait(futures, return_when="FIRST_COMPLETED").done)


def gpu_worker_specs(n_gpus: int) -> dict[str, dict[str, Any]]:
    """``SpecCluster`` worker specs: one single-threaded nanny per GPU, pinned to it."""
    from distributed import Nanny

    return {
        f"gpu-{i}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "resources": {GPU_RESOURCE: 1},
                "env": {"CUDA_VISIBLE_DEVICES": str(i)},
                "silence_logs": logging.ERROR,
            },
        }
        for i in range(n_gpus)
    }


def submit_options(ex: Executor) -> dict[str, Any]:
    """Extra ``submit`` arguments of ``ex`` (an :class:`Executor`, or a bare Dask client)."""
    return (ex if isinstance(ex, Executor) else DaskExecutor(ex)).submit_options()


#: Dask settings of the clusters lensfind starts itself. They have no dashboard, so the
#: workers need not sample their stacks every 10 ms, and the event loops of the driver and
#: workers need not wake every 20 ms (ticks) or 100-500 ms (monitors) on cores that the
#: shards use. The scheduler keeps the shards the driver has in flight (three per worker)
#: in its own queue and sends one to a worker when its thread is free (worker saturation
#: 1.0): no shard waits on a busy worker while another worker idles at the end of a
#: run (that tail was 0.37 s of a 6 s scan), and nothing is left to steal. Dask's 64 kB
#: malloc trim threshold would also pin glibc's mmap threshold at 128 kB, so that every
#: large temporary (lens injection makes many) is mapped and faulted in page by page, 2.3x
#: the CPU of injection; the workers keep such memory instead and give it back after each
#: shard (:func:`lensfind.engine.shard.release_memory`).
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 64 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 32 * 2**20,
}


def executor_kind(workers: int | None, scheduler: str | None, n_objects: int, gpus: int = 0) -> str:
    """How a run's shards run: ``"dask"``, ``"threads"`` or ``"in-process"``.

    ``workers`` None (not given) is ``"threads"`` for a local CPU run of at
    most :data:`THREADS_MAX_OBJECTS` objects, a local cluster beyond (and on GPUs).
    """
    if scheduler is not None:
        return "dask"
    if workers == 0:
        return "in-process"
    small = n_objects <= THREADS_MAX_OBJECTS and gpus == 0
    return "threads" if workers is None and small else "dask"


@contextlib.contextmanager
def executor(
    workers: int | None, scheduler: str | None = None, gpus: int = 0, n_objects: int = 0
) -> Iterator[Executor]:
    """Yield the :class:`Executor` :func:`executor_kind` names for a run of ``n_objects``:
    an existing cluster (``scheduler``), one local worker per GPU (:func:`gpu_worker_specs`),
    ``workers`` (unset: :data:`DEFAULT_WORKERS`) local processes or threads, or this process."""
    kind = executor_kind(workers, scheduler, n_objects, gpus)
    if kind == "in-process":
        yield InProcessExecutor()
        return
    if kind == "threads":
        with ThreadPoolExecutor(DEFAULT_WORKERS, thread_name_prefix="lensfind-shard") as pool:
            yield ThreadExecutor(pool, DEFAULT_WORKERS)
        return
    import dask
    from distributed import Client

    for name in (
        "distributed",
        "distributed.worker",
        "distributed.nanny",
        "distributed.scheduler",
        "distributed.core",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler is not None:
        with Client(scheduler) as client:
            yield DaskExecutor(client)
        return
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        yield from _local_cluster(DEFAULT_WORKERS if workers is None else workers, gpus)


def _local_cluster(workers: int, gpus: int) -> Iterator[Executor]:
    from distributed import Client, LocalCluster

    if gpus > 0:
        from distributed import Scheduler, SpecCluster

        spec = {"cls": Scheduler, "options": {"dashboard_address": None}}
        with (
            SpecCluster(
                workers=gpu_worker_specs(gpus), scheduler=spec, silence_logs=logging.ERROR
            ) as cluster,  # fmt: skip
            Client(cluster) as client,
        ):
            yield DaskExecutor(client)
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskExecutor(client)


def local_gpus(provider: str, workers: int | None, scheduler: str | None) -> int:
    """GPUs a local cluster should put one worker on (0: CPU workers).

    Only for a local cluster (no ``scheduler``, ``workers > 0``) whose
    provider resolves to CUDA or TensorRT here.
    """
    if scheduler is not None or workers == 0:
        return 0
    from lensfind.runtime.cuda import list_gpus
    from lensfind.runtime.scorer import GPU_PROVIDERS, resolve_provider

    if resolve_provider(provider) not in GPU_PROVIDERS:
        return 0
    return len(list_gpus())
