"""Running shard tasks: bounded submission, retries, quarantine, commits, metrics.

The driver process is the only writer of ``manifest.jsonl`` and
``quarantine.jsonl``. A shard task that crashes (a bug, a lost worker) is
retried; after ``shard_attempts`` crashes it is quarantined: its objects are
written as failed (reason ``quarantined: ...``), a line goes to
``quarantine.jsonl``, and the shard is committed so the rest of the scan goes on.
"""

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.engine.cluster import Executor, executor, executor_kind
from lensfind.engine.manifest import Manifest
from lensfind.engine.metrics import ScanMetrics
from lensfind.engine.shard import SCORES_DIR, ShardResult, write_scores
from lensfind.parquet_files import read_parquet
from lensfind.run_dir_checks import is_storage_error

QUARANTINE_NAME = "quarantine.jsonl"

log = logging.getLogger("lensfind.dispatch")


@dataclass
class Dispatcher:
    """Runs shard tasks on an executor and commits their results.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    fingerprint, model_sha256 : str
        Recorded in every manifest line.
    threshold : float
        Candidate threshold (for the planted-lens recovery metric).
    metrics : ScanMetrics
        Where measurements go.
    lens_ids : set of int
        Object ids of planted lenses (from ``truth.parquet``), possibly empty.
    shard_attempts : int
        Crashes after which a shard is quarantined.
    """

    run_dir: Path
    fingerprint: str
    model_sha256: str
    threshold: float
    metrics: ScanMetrics
    lens_ids: set[int] = field(default_factory=set)
    shard_attempts: int = 3
    stage_seconds: dict[str, float] = field(default_factory=dict)
    n_quarantined: int = 0
    #: wall seconds from the first submission to the last commit (cluster start-up excluded)
    dispatch_seconds: float = 0.0
    #: CPU seconds of this (the driver's) process over the same span, all its threads:
    #: commits, and a local cluster's scheduler
    driver_cpu_seconds: float = 0.0

    def run(
        self,
        fn: Callable[[Any], ShardResult],
        tasks: Iterable[Any],
        workers: int | None,
        scheduler: str | None,
        progress: Any,
        total: int | None = None,
        gpus: int = 0,
        warm_up: Callable[[], Any] | None = None,
        n_objects: int = 0,
    ) -> None:
        """Run ``fn(task)`` for every task, at most three per worker in flight; commit each.

        Tasks carry ``shard_id``, ``tile``, ``run_dir`` and ``objects`` (a table with
        ``object_id``, ``ra``, ``dec``), which is all a quarantine needs to fail them.
        ``tasks`` is consumed lazily (a generator keeps only the tasks in flight and
        those waiting for a retry in memory); ``total``, their number, feeds the
        queued-shards gauge. ``gpus > 0`` starts a local cluster of one worker
        per GPU (see :mod:`lensfind.engine.cluster`). ``warm_up`` runs once on every
        worker before the first task (a failure there is logged, and the tasks
        then fail or succeed on their own); ``dispatch_seconds`` starts after it.
        ``n_objects``, the tasks' objects, picks threads or a cluster when
        ``workers`` is None (:func:`~lensfind.engine.cluster.executor_kind`).
        """
        manifest = Manifest(self.run_dir)
        fresh = iter(tasks)
        queue: deque[Any] = deque()  # retries first, then fresh tasks as slots free up

        def next_task() -> Any:
            return queue.popleft() if queue else next(fresh, None)

        pending = next_task()
        n_committed = 0
        attempts: dict[str, int] = {}
        in_flight: dict[Any, Any] = {}
        where = f"scheduler {scheduler}" if scheduler else f"{gpus or workers or 2} local worker(s)"
        dask = executor_kind(workers, scheduler, n_objects, gpus) == "dask"
        _status(progress, f"starting {where}" if dask else "")
        with executor(workers, scheduler, gpus, n_objects) as ex:
            limit = 3 * ex.n_workers()
            options = ex.submit_options()
            if warm_up is not None:
                _status(progress, f"loading the model on {ex.n_workers()} worker(s)")
                _warm_up_workers(ex, warm_up, options)
            _status(progress, "cutting and scoring the first shards" if pending else "")
            t0, cpu0 = time.perf_counter(), time.process_time()
            while pending is not None or in_flight:
                while pending is not None and len(in_flight) < limit:
                    in_flight[ex.submit(fn, pending, **options)] = pending
                    pending = next_task()
                if total is not None:
                    self.metrics.queued.set(max(total - n_committed - len(in_flight), 0))
                self.metrics.in_flight.set(len(in_flight))
                done = set(ex.wait_any(list(in_flight)))
                storage_error: Exception | None = None
                for fut in [f for f in in_flight if f in done]:  # in submission order
                    t = in_flight.pop(fut)
                    try:
                        result: ShardResult = fut.result()
                    except Exception as exc:
                        if is_storage_error(exc):  # disk full: stop, never quarantine,
                            storage_error = storage_error or exc  # after the others commit
                            continue
                        self.metrics.shard_failures.inc()
                        attempts[t.shard_id] = attempts.get(t.shard_id, 0) + 1
                        if attempts[t.shard_id] < self.shard_attempts:
                            if pending is not None:
                                queue.appendleft(pending)
                            pending = t
                            continue
                        result = self._quarantine(t, attempts[t.shard_id], exc)
                    self._commit(manifest, t, result)
                    n_committed += 1
                    if n_committed == 1:
                        _status(progress, "")
                    progress.update(t.objects.num_rows)
                if storage_error is not None:
                    raise storage_error
            self.dispatch_seconds = time.perf_counter() - t0
            self.driver_cpu_seconds = time.process_time() - cpu0
            self.metrics.queued.set(0)
            self.metrics.in_flight.set(0)

    def _quarantine(self, task: Any, attempts: int, exc: Exception) -> ShardResult:
        error = f"{type(exc).__name__}: {exc}"
        result = write_scores(
            task, reason=f"quarantined: task crashed {attempts} time(s); last: {error}"
        )
        line = {"shard_id": task.shard_id, "tile": task.tile, "attempts": attempts, "error": error,
                "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        with open(self.run_dir / QUARANTINE_NAME, "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
        self.metrics.shards_quarantined.inc()
        self.n_quarantined += 1
        return result

    def _commit(self, manifest: Manifest, task: Any, result: ShardResult) -> None:
        manifest.commit(
            {
                "shard_id": result.shard_id,
                "tile": task.tile,
                "input_fingerprint": self.fingerprint,
                "model_sha256": self.model_sha256,
                "counts": result.counts,
                "scores_file": result.scores_file,
                "sha256": result.sha256,
                "seconds": result.seconds,
                "store_clipped_pixels": result.store_clipped_pixels,
            }
        )
        for k, v in result.seconds.items():
            self.stage_seconds[k] = self.stage_seconds.get(k, 0.0) + v
        self.metrics.commit(
            {(s, r): n for s, r, n in result.reasons},
            result.seconds,
            result.batch_sizes,
            result.bytes_read,
            self._planted_outcomes(result),
        )

    def _planted_outcomes(self, result: ShardResult) -> dict[str, int]:
        """Planted lenses of the shard that were scored: recovered (>= threshold) or missed."""
        if not self.lens_ids:
            return {}
        t = read_parquet(
            self.run_dir / SCORES_DIR / result.scores_file, columns=["object_id", "status", "score"]
        )
        ids = t["object_id"].to_numpy()
        scored = t["status"].to_numpy(zero_copy_only=False) == "scored"
        lens = np.fromiter((int(i) in self.lens_ids for i in ids), bool, len(ids)) & scored
        hit = lens & (t["score"].to_numpy(zero_copy_only=False) >= self.threshold)
        return {"recovered": int(hit.sum()), "missed": int((lens & ~hit).sum())}


def quarantined_shards(run_dir: Path) -> set[str]:
    """Ids of the shards listed in ``quarantine.jsonl`` (complete lines only)."""
    path = run_dir / QUARANTINE_NAME
    out: set[str] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.add(json.loads(line)["shard_id"])
            except (json.JSONDecodeError, KeyError):
                continue
    return out


def _status(progress: Any, text: str) -> None:
    """Say on the progress bar what the run is doing before its first object."""
    if hasattr(progress, "set_postfix_str"):
        progress.set_postfix_str(text)


def _warm_up_workers(ex: Executor, fn: Callable[[], Any], options: dict[str, Any]) -> None:
    """``fn()`` once on every worker that can take shards (a failure is only logged)."""
    try:
        ex.warm_up(fn, options)
    except Exception as exc:  # the shards will report it with their own objects
        log.warning("worker warm-up failed: %s: %s", type(exc).__name__, exc)
