"""Scoring a shard's stamps: one ONNX Runtime session per worker, batches of views.

:func:`scorer_for` keeps one session per worker process, model and provider;
:func:`warm_up` brings a worker to a long scan's state before its first shard;
:func:`score_batches` fails only the objects of a failing batch.
"""

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensfind.engine.buffers import scratch
from lensfind.engine.config import RunConfig, build_config
from lensfind.engine.cutouts import cut_stamps
from lensfind.engine.store import image_file
from lensfind.runtime.card import ModelCard, load_card
from lensfind.runtime.model_check import check_scorer
from lensfind.runtime.scorer import (
    DEFAULT_BATCH_SIZE,
    OnnxScorer,
    SessionSettings,
    resolve_provider,
)

_SCORERS: dict[tuple[str, str, str], OnnxScorer] = {}
_SCORERS_LOCK = threading.Lock()
NON_FINITE = "scoring failed: the model returned a non-finite score (NaN/inf)"


class ScoringWork(Protocol):
    """A shard task that scores: which model, in which batches."""

    @property
    def model_dir(self) -> str: ...
    @property
    def model_sha256(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def bands(self) -> tuple[str, ...]: ...


def scorer_for(
    model_dir: str, sha256: str, provider: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE
) -> OnnxScorer:
    """One ONNX Runtime session per worker process, model and provider.

    Session options come from :class:`~lensfind.runtime.scorer.SessionSettings`
    (one thread by default; ``LENSFIND_ORT__<FIELD>`` overrides). A provider that
    is not available raises :class:`~lensfind.runtime.scorer.ProviderError`.
    """
    key = (model_dir, sha256, provider)
    with _SCORERS_LOCK:  # shards on threads share the session (ONNX Runtime allows it)
        if key not in _SCORERS:
            settings = build_config(SessionSettings, {"batch_size": batch_size})
            card = load_card(Path(model_dir))
            _SCORERS[key] = OnnxScorer(card, provider=provider, settings=settings)
        return _SCORERS[key]


def check_model_session(config: RunConfig, card: ModelCard, bands: Sequence[str]) -> None:
    """``check_scorer`` (exit 2) on the session this process's shards will score with."""
    provider = "cpu" if config.scheduler else config.provider
    scorer = scorer_for(str(card.directory), card.sha256, provider, config.batch_size)
    check_scorer(scorer.with_input_bands(bands))


def warm_up(
    model_dir: str,
    sha256: str,
    provider: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    store_dtype: str | None = None,
    shard_size: int = 0,
    store_compression: str = "none",
) -> None:
    """Bring this worker to the state of a long scan before its first shard.

    Loads the model's session and scores one full batch of blank cutouts (the
    session sizes its memory for the batch), and for a scan (``store_dtype``
    given) loads the cutting kernel and grows this thread's scratch arrays
    to ``shard_size`` cutouts, touching their pages. Run on every worker
    before the first shard is sent, so that a shard's time is its own work:
    these one-off costs are paid once per worker, as in a long scan.
    """
    scorer = scorer_for(model_dir, sha256, provider, batch_size)
    shape = tuple(scorer.card.input_shape)
    if store_dtype is not None and shard_size > 0:
        full = (shard_size, *shape)
        scratch("stamps", full, np.float32).fill(0.0)
        encode = None
        if store_dtype == "float16":
            image = image_file(shard_size, shape, store_compression)
            image.chunks.fill(0)
            encode = (np.ones(shape[0], np.float32), image.chunks)
        tile = [np.zeros(shape[1:], np.dtype(">f4"))] * shape[0]
        centre = np.array([(shape[1] - 1) / 2])
        cut_stamps(tile, centre, centre, shape[1], ("",) * shape[0], None, encode)
    scorer(np.zeros((batch_size, *shape), dtype=np.float32), overwrite=True)
    pq.write_table(pa.table({"score": pa.array([0.0], type=pa.float32())}), pa.BufferOutputStream())


def check_provider(config: RunConfig) -> str | None:
    """Fail before any work when the run's provider is not available here.

    Local runs (in-process or local Dask workers) score on this machine, so a
    missing provider is a :class:`~lensfind.runtime.scorer.ProviderError` now;
    with ``--scheduler`` the workers check it themselves (their objects fail
    with the same message). Returns the provider ``auto`` resolves to locally.
    """
    if config.scheduler is not None:
        return None
    return resolve_provider(config.provider)


def score_batches(
    task: ScoringWork,
    stamps: np.ndarray,
    rows: np.ndarray,
    status: np.ndarray,
    reason: np.ndarray,
    score: np.ndarray,
) -> list[int]:
    """Score ``stamps`` (stamp ``i`` is object ``rows[i]``) in batches of views.

    The stamps are normalised in place (they are the model's input buffer: the
    store is written before scoring). A failing batch fails only its objects.
    Returns the size of each model call.
    """
    try:
        scorer = scorer_for(task.model_dir, task.model_sha256, task.provider, task.batch_size)
        # a scan's stamps have its survey's bands, the card may order them otherwise
        scorer = scorer.with_input_bands(task.bands or None)
    except Exception as exc:
        reason[rows] = f"model unusable: {exc}"
        return []
    sizes = []
    for start in range(0, len(rows), task.batch_size):
        part = rows[start : start + task.batch_size]
        sizes.append(len(part))
        try:
            p = scorer(stamps[start : start + task.batch_size], overwrite=True)
        except Exception as exc:
            reason[part] = f"scoring failed: {type(exc).__name__}: {exc}"
            continue
        ok = np.isfinite(p)  # a non-finite score fails its object only
        score[part[ok]], status[part[ok]], reason[part[~ok]] = p[ok], "scored", NON_FINITE
    return sizes
