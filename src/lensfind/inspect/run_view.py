"""A scan's run directory as the inspection page sees it: ranked candidates and their cutouts.

Candidates come from ``RUN/candidates.parquet`` (ranked by the scan), their
shard from the run's score files (``scores/<shard>.parquet`` lists every object
of a shard) and their pixels from the run's cutout store (``RUN/cutouts.zarr``,
or for an ``engine score`` run the store it scored) through
:mod:`lensfind.engine.store`. A shard is read once, when its first candidate is
asked for, and only its candidates' cutouts are kept (at most
:data:`CUTOUT_CACHE` of them).
"""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import LensfindError
from lensfind.parquet_files import read_parquet

__all__ = ["CUTOUT_CACHE", "Candidate", "InspectError", "InspectRun"]

#: Candidate cutouts kept in memory (4x100x100 float32: 160 kB each).
CUTOUT_CACHE = 4096


class InspectError(LensfindError):
    """A run directory that cannot be inspected (no run, no candidates, no cutouts)."""


@dataclass(frozen=True)
class Candidate:
    """One ranked candidate: its score, posterior lens probability and known-lens match.

    ``p_lens`` is the calibrated score moved to the run's prior lens rate (NaN
    when the run's summary does not record one); ``known_sep_arcsec`` is NaN
    without a match.
    """

    object_id: int
    rank: int
    ra_deg: float
    dec_deg: float
    tile: str
    score: float
    p_lens: float
    known_name: str
    known_grade: str
    known_sep_arcsec: float

    def record(self) -> dict[str, Any]:
        """JSON-ready fields (NaN as None)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


class InspectRun:
    """The candidates of a run directory and the cutouts behind them.

    Parameters
    ----------
    run_dir : Path
        A directory written by ``engine scan`` or ``engine score``.
    top : int, optional
        Keep only the ``top`` best-ranked candidates (default: all);
        :attr:`n_candidates` still counts every one.

    Raises
    ------
    InspectError
        No such directory, no ``candidates.parquet``, or no cutout store.
    """

    def __init__(self, run_dir: Path, top: int | None = None) -> None:
        from lensfind.catalogue.candidate_files import CANDIDATES_PARQUET
        from lensfind.engine.store import STORE_NAME

        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise InspectError(f"{self.run_dir}: no such run directory")
        path = self.run_dir / CANDIDATES_PARQUET
        if not path.is_file():
            raise InspectError(f"{path}: no candidates file (is this a finished engine scan run?)")
        self.summary = _read_json(self.run_dir / "summary.json")
        # a scan's own store, or the store an ``engine score`` run re-scored (its plan's data)
        stores = [self.run_dir / STORE_NAME]
        data = _read_json(self.run_dir / "plan.json").get("data_dir")
        if data and Path(data).suffix == ".zarr":
            stores.append(Path(data))
        found = [s for s in stores if (s / "zarr.json").is_file()]
        if not found:
            raise InspectError(
                f"{self.run_dir}: no cutout store ({' or '.join(map(str, stores))} missing)"
            )
        self.store = found[0]
        if top is not None and top < 1:
            raise InspectError(f"--top {top}: must be >= 1")
        every = _candidates(path, self.summary)
        self.n_candidates = len(every)
        self.candidates = every[:top]
        self._by_id = {c.object_id: c for c in self.candidates}
        self._shard_of: dict[int, str] | None = None
        self._bands: tuple[str, ...] | None = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def candidate(self, object_id: int) -> Candidate:
        """The candidate ``object_id``; KeyError if it is not one."""
        return self._by_id[int(object_id)]

    @property
    def bands(self) -> tuple[str, ...]:
        """Band names of the store's cutouts, in their channel order."""
        if self._bands is None:
            from lensfind.engine.store import list_shards

            shards = list_shards(self.store)
            if not shards:
                raise InspectError(f"{self.store}: the cutout store holds no shards")
            attrs = _read_json(self.store / shards[0] / "zarr.json").get("attributes", {})
            self._bands = tuple(attrs.get("bands") or self.summary_bands())
        return self._bands

    def summary_bands(self) -> tuple[str, ...]:
        """Band names from the run's plan (stores written before bands were recorded)."""
        return tuple(_read_json(self.run_dir / "plan.json").get("bands", ()))

    def cutout(self, object_id: int) -> np.ndarray:
        """The candidate's cutout ``(bands, H, W)``, float32 image counts."""
        oid = int(object_id)
        self.candidate(oid)  # KeyError for non-candidates
        with self._lock:
            if oid in self._cache:
                self._cache.move_to_end(oid)
                return self._cache[oid]
            shard = self._shards().get(oid)
            if shard is None:
                raise InspectError(f"object {oid}: in no score file of {self.run_dir}")
            self._load_shard(shard)
            if oid not in self._cache:
                raise InspectError(f"object {oid}: not in {self.store / shard}")
            return self._cache[oid]

    def _shards(self) -> dict[int, str]:
        """Candidate object_id -> shard id, from the score files (object_id column only)."""
        if self._shard_of is None:
            from lensfind.engine.shard import SCORES_DIR

            wanted = np.fromiter(self._by_id, dtype=np.int64, count=len(self._by_id))
            found: dict[int, str] = {}
            for f in sorted((self.run_dir / SCORES_DIR).glob("*.parquet")):
                ids = read_parquet(f, ["object_id"])["object_id"].to_numpy()
                found.update((int(i), f.stem) for i in ids[np.isin(ids, wanted)])
            self._shard_of = found
        return self._shard_of

    def _load_shard(self, shard: str) -> None:
        from lensfind.engine.store import StoreError, read_shard_cutouts

        try:
            ids, images = read_shard_cutouts(self.store, shard)
        except (StoreError, OSError) as exc:
            raise InspectError(f"{self.store / shard}: cannot read cutouts ({exc})") from None
        for i in np.flatnonzero(np.isin(ids, list(self._by_id))):
            self._cache[int(ids[i])] = np.array(images[i])
            self._cache.move_to_end(int(ids[i]))
        while len(self._cache) > CUTOUT_CACHE:
            self._cache.popitem(last=False)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InspectError(f"{path}: cannot read ({exc})") from None


def _candidates(path: Path, summary: dict[str, Any]) -> list[Candidate]:
    """The candidates file's rows, ranked, with posterior probabilities at the run's prior."""
    from lensfind.runtime.calibration import posterior_lens_probability

    try:
        table = read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InspectError(f"{path}: cannot read ({exc})") from None
    missing = [c for c in ("object_id", "score") if c not in table.column_names]
    if missing:
        raise InspectError(f"{path}: no column {', '.join(missing)}")
    cols = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    n = table.num_rows
    score = cols["score"].astype(np.float64)
    purity = summary.get("expected_purity") or {}
    prior, fraction = purity.get("prior_lens_rate"), purity.get("calibration_lens_fraction")
    p_lens = (posterior_lens_probability(np.clip(score, 1e-12, 1 - 1e-12), prior, fraction)
              if prior and fraction else np.full(n, np.nan))  # fmt: skip
    rank = cols.get("rank", np.arange(1, n + 1))

    def col(name: str, default: Any) -> np.ndarray:
        return cols.get(name, np.full(n, default, dtype=object))

    name, grade, sep = (
        col("known_lens_name", ""),
        col("known_lens_grade", ""),
        col("known_lens_sep_arcsec", np.nan),
    )
    ra, dec, tile = col("ra", np.nan), col("dec", np.nan), col("tile", "")
    rows = [
        Candidate(int(cols["object_id"][i]), int(rank[i]), float(ra[i]), float(dec[i]),
                  str(tile[i]), float(score[i]), float(p_lens[i]), str(name[i] or ""),
                  str(grade[i] or ""), float(sep[i]) if sep[i] is not None else float("nan"))
        for i in range(n)
    ]  # fmt: skip
    return sorted(rows, key=lambda c: c.rank)
