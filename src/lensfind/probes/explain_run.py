"""A scan's own candidates as the inputs of ``engine explain <method> --run RUN``.

The cutouts are those the scan stored (``RUN/cutouts.zarr``, read with the
store's readers), ranked as in ``RUN/candidates.parquet``: ``--top N`` takes the
N best, ``--ids`` any stored objects by catalogue id (candidates or not).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lensfind.errors import ConfigError
from lensfind.parquet_files import read_parquet
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.card import ModelCard

STORE_NAME = "cutouts.zarr"
CANDIDATES_NAME = "candidates.parquet"


@dataclass(frozen=True)
class RunInputs:
    """Cutouts of a run to explain.

    Attributes
    ----------
    object_id : ndarray of int64, shape (N,)
        Catalogue ids, in the order asked for (rank order for ``top``).
    images : ndarray of float32, shape (N, bands, H, W)
        Stored cutouts in image counts, in the card's band order.
    titles : list of str
        ``id`` and rank among the candidates (if one), per cutout.
    record : dict
        Run directory, the scan's model sha256, the ids and their scan scores.
    """

    object_id: np.ndarray
    images: np.ndarray
    titles: list[str]
    record: dict = field(default_factory=dict)


def run_model_name(run_dir: Path) -> str | None:
    """The model a run was scanned with, by name, from its ``summary.json`` (None if absent)."""
    import json

    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()).get("model") if path.is_file() else None


def run_inputs(
    run_dir: Path, card: ModelCard, top: int | None = None, ids: list[int] | None = None
) -> RunInputs:
    """The stored cutouts of a run's ``top`` candidates, or of the objects ``ids``.

    Raises
    ------
    ConfigError
        No cutout store or candidates in ``run_dir``, ``top < 1``, or ids not in the store.
    """
    from lensfind.training.labels import read_store_rows

    run_dir = Path(run_dir)
    store = run_dir / STORE_NAME
    if not (store / "zarr.json").is_file():
        raise ConfigError(
            f"{run_dir}: no cutout store {STORE_NAME} (is it a scan's run directory?)"
        )
    cand_path = run_dir / CANDIDATES_NAME
    if not cand_path.is_file():
        raise ConfigError(f"{run_dir}: no {CANDIDATES_NAME} (is the scan finished?)")
    cands = read_parquet(cand_path, ["object_id", "score", "rank"]).to_pydict()
    order = np.argsort(cands["rank"], kind="stable")
    ranked = [int(cands["object_id"][i]) for i in order]
    rank = {i: r + 1 for r, i in enumerate(ranked)}
    score = {int(i): float(s) for i, s in zip(cands["object_id"], cands["score"], strict=True)}
    if ids is None:
        if top is None or top < 1:
            raise ConfigError(f"--top must be >= 1, got {top}")
        if not ranked:
            raise ConfigError(f"{cand_path}: no candidates to explain (use --ids)")
        ids = ranked[:top]
    if not ids:
        raise ConfigError("--ids: no object ids given")
    got_ids, images, bands = read_store_rows(store, set(ids))
    missing = [i for i in ids if i not in set(got_ids.tolist())]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ConfigError(f"--ids: {len(missing)} id(s) not in {store}: {shown}")
    where = {int(i): k for k, i in enumerate(got_ids)}
    images = images[[where[i] for i in ids]]
    images = take_bands(images, band_order(bands or card.bands, card.bands, f"model {card.name}"))
    titles = [f"{i}" + (f" #{rank[i]}" if i in rank else " (not a candidate)") for i in ids]
    record = {"run": str(run_dir), "object_ids": list(ids),
              "scan_scores": [score.get(i) for i in ids]}  # fmt: skip
    return RunInputs(np.asarray(ids, dtype=np.int64), images, titles, record)
