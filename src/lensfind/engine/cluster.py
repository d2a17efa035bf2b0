"""Executors for shard tasks: a Dask cluster (local or remote) or this process."""

import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any


class InProcessExecutor:
    """Runs tasks one by one in this process (``--workers 0``; for debugging)."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


@contextlib.contextmanager
def executor(workers: int, scheduler: str | None = None) -> Iterator[Any]:
    """Yield something with ``submit(fn, *args, pure=False)``.

    ``scheduler`` connects to an existing Dask scheduler; otherwise ``workers``
    local worker processes (one thread each) are started; ``workers = 0`` runs
    in this process.
    """
    if scheduler is None and workers == 0:
        yield InProcessExecutor()
        return
    from distributed import Client, LocalCluster

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
            yield client
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
        yield client
