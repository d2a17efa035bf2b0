"""Aggregating committed shards into the candidate catalogue.

Shards are read one at a time: memory holds the candidates and a few counters,
never every object's row, so the final step of a 10^9-object run is as flat in
memory as its shards.
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lensfind.engine.shard import SCORES_DIR, STATUSES, reason_class
from lensfind.parquet_files import read_parquet


@dataclass
class ScoreTally:
    """What the run's summary needs from every object's row, gathered shard by shard."""

    counts: Counter = field(default_factory=Counter)
    #: status -> reason class -> objects
    reasons: dict[str, Counter] = field(default_factory=dict)
    #: scored objects at or above the threshold (unranked, status/reason dropped)
    above: list[pa.Table] = field(default_factory=list)

    def add(self, scores: pa.Table, threshold: float) -> None:
        status = scores["status"].to_numpy(zero_copy_only=False)
        self.counts.update(status.tolist())
        for st in ("skipped", "failed"):
            sel = status == st
            if sel.any():
                reasons = scores["reason"].to_numpy(zero_copy_only=False)[sel]
                self.reasons.setdefault(st, Counter()).update(reason_class(r) for r in reasons)
        keep = pc.and_(
            pc.equal(scores["status"], "scored"), pc.greater_equal(scores["score"], threshold)
        )
        above = scores.filter(keep).drop_columns(["status", "reason"])
        if above.num_rows or not self.above:  # the first table keeps the schema
            self.above.append(above)

    def status_counts(self) -> dict[str, int]:
        return {s: int(self.counts.get(s, 0)) for s in STATUSES}

    def reason_counts(self, status: str) -> dict[str, int]:
        return dict(sorted(self.reasons.get(status, Counter()).items()))


def tally_scores(run_dir: Path, shard_ids: list[str], threshold: float) -> ScoreTally:
    """Read the given shards' score files one at a time into a :class:`ScoreTally`."""
    tally = ScoreTally()
    for s in shard_ids:
        tally.add(read_parquet(run_dir / SCORES_DIR / f"{s}.parquet"), threshold)
    return tally


def rank_candidates(tally: ScoreTally, model_sha256: str) -> pa.Table:
    """The tally's candidates ranked by score (ties: object_id), with rank and model."""
    cand = pa.concat_tables(tally.above, promote_options="default")
    order = np.lexsort((cand["object_id"].to_numpy(), -cand["score"].to_numpy()))
    cand = cand.take(pa.array(order, type=pa.int64()))
    cand = cand.append_column("rank", pa.array(np.arange(1, cand.num_rows + 1), type=pa.int64()))
    return cand.append_column(
        "model_sha256", pa.array([model_sha256] * cand.num_rows, type=pa.string())
    )
