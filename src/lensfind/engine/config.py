"""Run configuration: frozen dataclasses built from CLI flags and the environment.

Any field can be overridden from the environment as ``LENSFIND_SCAN__<FIELD>``
(``engine scan``, e.g. ``LENSFIND_SCAN__BATCH_SIZE=512``) or
``LENSFIND_SCORE__<FIELD>`` (``engine score``); explicit CLI flags win over the
environment, which wins over the defaults. Unknown keys are an error.
"""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from lensfind.catalogue.known_lenses import DEFAULT_KNOWN_LENS_RADIUS_ARCSEC
from lensfind.errors import ConfigError
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE, PROVIDER_CHOICES

C = TypeVar("C", bound="EnvConfig")

ENV_PREFIX = "LENSFIND_SCAN__"
STORE_COMPRESSIONS = ("zstd", "none")
#: Cutout store precisions (see ``ScanConfig.store_dtype``).
STORE_DTYPES = ("float32", "float16")
#: Default fraction of scanned galaxies given an injected-lens copy.
DEFAULT_INJECT_RATE = 0.05


class EnvConfig(Protocol):
    """A frozen dataclass of settings with an environment prefix (``build_config`` builds it)."""

    env_prefix: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]


@dataclass(frozen=True)
class RunConfig:
    """Settings shared by ``engine scan`` and ``engine score``.

    Attributes
    ----------
    model : str or None
        Shipped model name or model directory (unset: the survey's shipped model).
    out : Path or None
        Run directory (unset: ``runs/<survey>-<timestamp>``).
    workers : int or None
        Local Dask worker processes (0: one shard at a time in this process).
        Unset: a run of up to 20,000 objects scores its shards on 2 threads
        in this process (no cluster to start), a larger one on a local cluster
        of 2 worker processes.
    scheduler : str or None
        Address of an existing Dask scheduler (overrides ``workers``).
    batch_size : int
        Cutouts per model call (>= 1).
    threshold : float or None
        Candidate threshold on the lens probability, 0..1 (unset: the model card's).
    resume : bool
        Continue an interrupted run in ``out``.
    quiet : bool
        No progress bars.
    metrics_port : int or None
        Serve Prometheus metrics on this port while the run lasts (0: any free port).
    metrics_host : str
        Address the metrics server binds to (loopback unless asked otherwise).
    pushgateway : str or None
        Prometheus Pushgateway URL to push the final metrics to.
    shard_attempts : int
        Crashes of a shard task after which the shard is quarantined.
    provider : str
        ONNX Runtime execution provider: ``auto`` (the best available: TensorRT,
        CUDA, then CPU), ``cpu``, ``cuda`` or ``tensorrt``. A named provider that
        is not available is an error, never a silent fallback.
    known_lenses : Path or None
        Known-lens catalogue (lenscat-format CSV) the candidates are
        cross-matched against (unset: the vendored lenscat catalogue).
    known_lens_radius_arcsec : float
        Cross-match radius, arcsec (0 matches only exact positions).
    prior_lens_rate : float or None
        Expected fraction of the scanned galaxies that are lenses, for the
        expected purity of the candidates, in (0, 1) (unset: the planted fraction
        of a synthetic region, from its ``truth.parquet``, else 1e-3, Jacobs+22:
        fewer than 1 in 1000 galaxies on the sky).
    """

    env_prefix: ClassVar[str] = ""

    model: str | None = None
    out: Path | None = None
    workers: int | None = None
    scheduler: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    threshold: float | None = None
    resume: bool = False
    quiet: bool = False
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    pushgateway: str | None = None
    shard_attempts: int = 3
    provider: str = "auto"
    known_lenses: Path | None = None
    known_lens_radius_arcsec: float = DEFAULT_KNOWN_LENS_RADIUS_ARCSEC
    prior_lens_rate: float | None = None

    def __post_init__(self) -> None:
        if self.provider not in PROVIDER_CHOICES:
            raise ConfigError(
                f"provider must be one of {', '.join(PROVIDER_CHOICES)}, got {self.provider!r}"
            )
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.batch_size < 1 or self.shard_attempts < 1:
            raise ConfigError("batch_size and shard_attempts must be >= 1")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be in 0..65535, got {self.metrics_port}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if not self.known_lens_radius_arcsec >= 0.0:
            raise ConfigError(
                f"known_lens_radius_arcsec must be >= 0, got {self.known_lens_radius_arcsec}"
            )
        if self.prior_lens_rate is not None and not 0.0 < self.prior_lens_rate < 1.0:
            raise ConfigError(f"prior_lens_rate must be in (0, 1), got {self.prior_lens_rate}")


@dataclass(frozen=True)
class ScanConfig(RunConfig):
    """Settings of one ``engine scan`` (plus those of :class:`RunConfig`).

    Attributes
    ----------
    survey : str
        Survey registry name.
    data_dir : Path or None
        Survey data directory (unset: the embedded default region).
    shard_size : int
        Maximum objects per shard (a shard never spans tiles). 1024 is about a
        second of one CPU core: per-shard costs (opening the tile, the store's
        files, the commit) stay a few per cent, and a worker's cutting buffer
        stays ~160 MB for 4 x 100 x 100 float32 cutouts.
    inject_rate : float
        Fraction (0..1) of scored galaxies that also get a copy with an injected
        simulated lens, scored in the same batches, to measure the scan's
        selection function (0 turns it off). Injected copies never enter the
        candidates.
    inject_seed : int
        Seed of the injections (which galaxies, which lenses).
    inject_min : int
        Fewest injections a scan makes: a small scan raises its injection rate
        (up to every eligible host, then several lenses per host) so that the
        selection function's bins are populated (0: the rate as given).
    inject_population : Path or None
        YAML file of population settings (PopulationConfig fields: theta_e_range_arcsec,
        source_mag_g_range, min_source_snr, shear_sigma, ...) over the population the
        model was trained on (unset: its card's population as it is).
    inject_hosts : Path or None
        YAML file of host-selection settings (HostSelection fields: colour_cuts,
        mag_band, mag_range, classes, ...) over the survey's default deflector cuts.
    store_dtype : str
        Cutout store precision: ``float16`` (the default) in units of three sky
        sigmas, or ``float32`` counts. float16 halves the bytes (160 -> 80 kB per
        des_y3 cutout) at a measured cost of 5e-3 sky sigma rms per pixel (relative
        rounding <= 4.9e-4) and <= 8e-4 in re-scored probabilities
        (``benchmarks/store_precision.py``); sustained scans on one disk are
        write-bound with float32.
    store_compression : str
        ``none`` (the default) or ``zstd`` (level 1): noise-dominated float32
        cutouts shrink by only ~7% with zstd, which costs about 0.27 ms of CPU
        per cutout (a third of the default model's). Every chunk carries a
        crc32c either way, so damage is detected.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

    survey: str = "des_y3"
    data_dir: Path | None = None
    shard_size: int = 1024
    inject_rate: float = DEFAULT_INJECT_RATE
    inject_seed: int = 0
    inject_min: int = 1000
    inject_population: Path | None = None
    inject_hosts: Path | None = None
    store_dtype: str = "float16"
    store_compression: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shard_size < 1:
            raise ConfigError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.store_compression not in STORE_COMPRESSIONS:
            raise ConfigError(
                f"store_compression must be one of {STORE_COMPRESSIONS}, "
                f"got {self.store_compression!r}"
            )
        if self.store_dtype not in STORE_DTYPES:
            raise ConfigError(f"store_dtype must be float32 or float16, got {self.store_dtype!r}")
        if not 0.0 <= self.inject_rate <= 1.0:
            raise ConfigError(f"inject_rate must be in [0, 1], got {self.inject_rate}")
        if self.inject_min < 0:
            raise ConfigError(f"inject_min must be >= 0, got {self.inject_min}")


@dataclass(frozen=True)
class ScoreConfig(RunConfig):
    """Settings of one ``engine score`` (plus those of :class:`RunConfig`).

    Attributes
    ----------
    cutouts : Path or None
        The zarr cutout store to re-score (a scan's ``cutouts.zarr``).
    """

    env_prefix: ClassVar[str] = "LENSFIND_SCORE__"

    cutouts: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cutouts is None:
            raise ConfigError("engine score needs --cutouts STORE.zarr")
        if self.model is None:
            raise ConfigError("engine score needs --model (a shipped name or a model directory)")


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


def build_config(cls: type[C], flags: dict[str, Any], environ: dict[str, str] | None = None) -> C:
    """Build ``cls`` from ``flags`` (None: not given) over ``<env_prefix><FIELD>`` variables."""
    environ = dict(os.environ) if environ is None else environ
    prefix = cls.env_prefix
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if key.startswith(prefix):
            name = key[len(prefix) :].lower()
            if name not in fields:
                raise ConfigError(f"{key}: unknown setting (known: {', '.join(fields)})")
            try:
                values[name] = _coerce(fields[name], raw)
            except ValueError:
                raise ConfigError(f"{key}={raw!r}: not a valid {fields[name].type}") from None
    for key, value in flags.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            values[key] = value
    return cls(**values)
