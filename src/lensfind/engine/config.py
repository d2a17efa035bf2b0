"""Scan configuration: a frozen dataclass built from CLI flags and the environment.

Any field can be overridden from the environment as ``LENSFIND_SCAN__<FIELD>``
(e.g. ``LENSFIND_SCAN__BATCH_SIZE=512``); explicit CLI flags win over the
environment, which wins over the defaults. Unknown keys are an error.
"""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensfind.errors import ConfigError

ENV_PREFIX = "LENSFIND_SCAN__"


@dataclass(frozen=True)
class ScanConfig:
    """Settings of one ``engine scan``.

    Attributes
    ----------
    survey : str
        Survey registry name.
    data_dir : Path or None
        Survey data directory; None uses the embedded default region.
    model : str or None
        Shipped model name or model directory; None uses the survey's default.
    out : Path or None
        Run directory; None creates ``runs/<survey>-<timestamp>``.
    workers : int
        Local Dask worker processes (0: run in this process).
    scheduler : str or None
        Address of an existing Dask scheduler (overrides ``workers``).
    shard_size : int
        Maximum objects per shard.
    batch_size : int
        Cutouts per model call.
    threshold : float or None
        Candidate threshold on the lens probability; None uses the model card's.
    resume : bool
        Continue an interrupted run in ``out``.
    quiet : bool
        No progress bars.
    metrics_port : int or None
        Serve Prometheus metrics on this port while the scan runs (0: any free port).
    metrics_host : str
        Address the metrics server binds to (loopback unless asked otherwise).
    pushgateway : str or None
        Prometheus Pushgateway URL to push the final metrics to.
    shard_attempts : int
        Crashes of a shard task after which the shard is quarantined.
    """

    survey: str = "des_y3"
    data_dir: Path | None = None
    model: str | None = None
    out: Path | None = None
    workers: int = 2
    scheduler: str | None = None
    shard_size: int = 256
    batch_size: int = 256
    threshold: float | None = None
    resume: bool = False
    quiet: bool = False
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    pushgateway: str | None = None
    shard_attempts: int = 3

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.shard_size < 1 or self.batch_size < 1 or self.shard_attempts < 1:
            raise ConfigError("shard_size, batch_size and shard_attempts must be >= 1")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be in 0..65535, got {self.metrics_port}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")


def _coerce(field: dataclasses.Field, value: str) -> Any:
    kind = str(field.type)
    if "bool" in kind:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if "int" in kind:
        return int(value)
    if "float" in kind:
        return float(value)
    if "Path" in kind:
        return Path(value)
    return value


def build_scan_config(flags: dict[str, Any], environ: dict[str, str] | None = None) -> ScanConfig:
    """Build a :class:`ScanConfig` from ``flags`` (None = not given) over the environment."""
    environ = dict(os.environ) if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(ScanConfig)}
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name not in fields:
                raise ConfigError(f"{key}: unknown scan setting (known: {', '.join(fields)})")
            try:
                values[name] = _coerce(fields[name], raw)
            except ValueError:
                raise ConfigError(f"{key}={raw!r}: not a valid {fields[name].type}") from None
    for key, value in flags.items():
        if key not in fields:
            raise ConfigError(f"unknown scan setting {key!r}")
        if value is not None:
            values[key] = value
    return ScanConfig(**values)
