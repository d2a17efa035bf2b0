"""Aggregating committed shards into the candidate catalogue."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lensfind.engine.shard import SCORES_DIR

CANDIDATES_PARQUET = "candidates.parquet"
CANDIDATES_FITS = "candidates.fits"


def read_scores(run_dir: Path, shard_ids: list[str]) -> pa.Table:
    """All per-object rows of the given shards, in that order."""
    tables = [pq.read_table(run_dir / SCORES_DIR / f"{s}.parquet") for s in shard_ids]
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def select_candidates(scores: pa.Table, threshold: float, model_sha256: str) -> pa.Table:
    """Scored rows with ``score >= threshold``, ranked by score (ties: object_id)."""
    keep = pc.and_(
        pc.equal(scores["status"], "scored"), pc.greater_equal(scores["score"], threshold)
    )
    cand = scores.filter(keep).drop_columns(["status", "reason"])
    order = np.lexsort((cand["object_id"].to_numpy(), -cand["score"].to_numpy()))
    cand = cand.take(pa.array(order, type=pa.int64()))
    cand = cand.append_column("rank", pa.array(np.arange(1, cand.num_rows + 1), type=pa.int64()))
    return cand.append_column(
        "model_sha256", pa.array([model_sha256] * cand.num_rows, type=pa.string())
    )


def write_candidates(run_dir: Path, candidates: pa.Table) -> None:
    """Write ``candidates.parquet`` and ``candidates.fits`` (atomic renames)."""
    from astropy.table import Table

    tmp = run_dir / f".{CANDIDATES_PARQUET}.tmp"
    pq.write_table(candidates, tmp)
    tmp.replace(run_dir / CANDIDATES_PARQUET)
    table = Table(
        {
            name: (
                col.to_numpy(zero_copy_only=False).astype(str)
                if pa.types.is_string(col.type)
                else col.to_numpy(zero_copy_only=False)
            )
            for name, col in zip(candidates.column_names, candidates.columns, strict=True)
        }
    )
    table.meta["EXTNAME"] = "CANDIDATES"
    tmp_fits = run_dir / f".{CANDIDATES_FITS}.tmp"
    table.write(tmp_fits, format="fits", overwrite=True)
    tmp_fits.replace(run_dir / CANDIDATES_FITS)
