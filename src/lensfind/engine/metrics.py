"""Prometheus metrics of a scan: the only module of the engine that imports
``prometheus_client``.

All metrics live in the driver process, which commits every shard: each shard
task returns its own measurements (stage durations, model batch sizes, bytes
read) in its :class:`~lensfind.engine.shard.ShardResult`, and the driver records
them at commit. So one HTTP endpoint shows the work of every Dask worker, with
no per-worker exporters to discover, and the counters equal the committed state
(they never count work that a crash threw away).

Names follow Prometheus conventions: base units, ``_total`` counters,
``_seconds`` histograms, labels of low cardinality (status, reason class,
stage, outcome), never an object id.
"""

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway
from prometheus_client import start_http_server as _start_http_server

from lensfind import __version__
from lensfind.errors import ConfigError
from lensfind.versions import package_version

STAGES = ("read", "cutout", "store", "inject", "score", "write")

#: Every metric family the scan exports (``_bucket``/``_sum``/``_count`` series of
#: histograms and the ``_total`` series of counters belong to these families).
METRIC_NAMES = frozenset(
    {
        "lensfind_build_info",
        "lensfind_scan_objects",
        "lensfind_objects_total",
        "lensfind_cutouts_scored_total",
        "lensfind_shards_committed_total",
        "lensfind_shard_failures_total",
        "lensfind_shards_quarantined_total",
        "lensfind_shards_in_flight",
        "lensfind_shards_queued",
        "lensfind_stage_duration_seconds",
        "lensfind_score_batch_size",
        "lensfind_read_bytes_total",
        "lensfind_injected_lenses_total",
        "lensfind_last_commit_timestamp_seconds",
    }
)


class ScanMetrics:
    """The metrics of one scan, in a private registry.

    Parameters
    ----------
    survey : str
        Survey name (a label of ``lensfind_build_info``).
    model_sha256 : str
        sha256 of the model being scored.
    """

    def __init__(self, survey: str, model_sha256: str) -> None:
        r = self.registry = CollectorRegistry()
        self._server: Any = None
        Gauge(
            "lensfind_build_info",
            "Build and model of the running scan (value 1)",
            ["version", "survey", "model_sha256", "onnxruntime_version", "tensorrt_version"],
            registry=r,
        ).labels(
            __version__,
            survey,
            model_sha256,
            package_version("onnxruntime") or "none",
            package_version("tensorrt") or "none",
        ).set(1)
        self.objects_planned = Gauge(
            "lensfind_scan_objects", "Objects in the scan plan", registry=r
        )
        self.objects = Counter(
            "lensfind_objects",
            "Objects that reached their final state",
            ["status", "reason"],
            registry=r,
        )
        self.cutouts_scored = Counter(
            "lensfind_cutouts_scored", "Cutouts scored by the model", registry=r
        )
        self.shards_committed = Counter(
            "lensfind_shards_committed", "Shards committed to the manifest", registry=r
        )
        self.shard_failures = Counter(
            "lensfind_shard_failures", "Shard task attempts that crashed", registry=r
        )
        self.shards_quarantined = Counter(
            "lensfind_shards_quarantined", "Shards given up after repeated crashes", registry=r
        )
        self.in_flight = Gauge(
            "lensfind_shards_in_flight", "Shard tasks submitted, not done", registry=r
        )
        self.queued = Gauge("lensfind_shards_queued", "Shards waiting to be submitted", registry=r)
        self.stage_seconds = Histogram(
            "lensfind_stage_duration_seconds",
            "Time a shard spent in each stage",
            ["stage"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.batch_size = Histogram(
            "lensfind_score_batch_size",
            "Cutouts per model call",
            registry=r,
            buckets=(1, 8, 32, 64, 128, 256, 512, 1024, 4096),
        )
        self.bytes_read = Counter("lensfind_read_bytes", "Image bytes read from tiles", registry=r)
        self.injected = Counter(
            "lensfind_injected_lenses",
            "Planted lenses scored, by outcome at the threshold",
            ["outcome"],
            registry=r,
        )
        self.last_commit = Gauge(
            "lensfind_last_commit_timestamp_seconds",
            "Unix time of the last shard commit",
            registry=r,
        )
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for outcome in ("recovered", "missed"):
            self.injected.labels(outcome)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP on ``host:port`` (0 picks a free port); returns the port."""
        try:
            server, _thread = _start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def push(self, gateway: str, run: str) -> None:
        """Push the final values to a Prometheus Pushgateway (job ``lensfind_scan``)."""
        push_to_gateway(
            gateway, job="lensfind_scan", grouping_key={"run": run}, registry=self.registry
        )

    def commit(
        self,
        counts_by_reason: dict[tuple[str, str], int],
        seconds: dict[str, float],
        batch_sizes: list[int],
        bytes_read: int,
        injected: dict[str, int],
    ) -> None:
        """Record one committed shard."""
        for (status, reason), n in counts_by_reason.items():
            self.objects.labels(status, reason).inc(n)
            if status == "scored":
                self.cutouts_scored.inc(n)
        for stage, s in seconds.items():
            self.stage_seconds.labels(stage).observe(s)
        for b in batch_sizes:
            self.batch_size.observe(b)
        self.bytes_read.inc(bytes_read)
        for outcome, n in injected.items():
            self.injected.labels(outcome).inc(n)
        self.shards_committed.inc()
        self.last_commit.set(time.time())
