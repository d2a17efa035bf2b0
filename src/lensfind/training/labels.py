"""A labelled set from a scan's graded candidates: the inputs of ``engine train --finetune``.

Grades (``RUN/grades.csv``, written by ``engine inspect``; columns at least
``object_id,grade``, optionally ``graded_utc`` and ``grader``) become labels and
weights:

=========================  =====  ======  ============================================
origin                     label  weight  why
=========================  =====  ======  ============================================
grade A (sure lens)        lens   1.0     a confident grade
grade B (probable lens)    lens   0.5     some B grades are not lenses
grade C (possible lens)    --     --      left out: neither label is safe
grade X (not a lens)       other  1.0     a confident grade
random ungraded objects    other  0.5     not candidates of the scan (score below its
(``n_random``)                            threshold); a few are missed lenses
the run's injected lenses  lens   0.5     simulated sources on real hosts, the
(``n_injections``)                        population the model was trained on
=========================  =====  ======  ============================================

An object graded more than once (a regrade, several graders) takes its last row
in the file. The weight is a sampling weight: per epoch, an object of weight
``w`` is drawn ``w`` times as often, in expectation, as one of weight 1
(:class:`~lensfind.training.finetune.LabelledData`).

The injected lenses' images are not in the cutout store: they are re-rendered
with the scan's own injection code and seeds on the stored hosts
(:mod:`lensfind.training.injected`). The cutouts are read with the store's own
readers (:mod:`lensfind.engine.store`, torch-free; the engine never imports training).
"""

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lensfind.engine.store import (
    STORE_NAME,
    StoreError,
    list_shards,
    read_shard_catalog,
    read_shard_cutouts,
)
from lensfind.errors import ConfigError, LensfindError
from lensfind.hashing import sha256_of
from lensfind.parquet_files import read_parquet

__all__ = ["DEFAULT_WEIGHTS", "GRADES", "LabelError", "LabelledSet", "build_labelled_set",
           "read_grades", "read_store_rows"]  # fmt: skip

#: Grade -> is a lens (C has no label).
GRADES: Mapping[str, bool | None] = {"A": True, "B": True, "C": None, "X": False}
#: Sampling weight of each origin (see the module's table).
DEFAULT_WEIGHTS: Mapping[str, float] = {"A": 1.0, "B": 0.5, "X": 1.0, "random": 0.5,
                                        "injection": 0.5}  # fmt: skip


class LabelError(LensfindError):
    """Grades that cannot make a labelled set (missing file, bad rows, unknown ids)."""


@dataclass(frozen=True)
class LabelledSet:
    """Cutouts of a run with labels and sampling weights.

    Attributes
    ----------
    object_id : ndarray of int64, shape (N,)
        Catalogue ids.
    images : ndarray of float32, shape (N, bands, H, W)
        Cutouts in image counts, bands in :attr:`bands` order (the store's).
    bands : tuple of str
        Band names of ``images``.
    is_lens : ndarray of bool, shape (N,)
        Labels.
    weight : ndarray of float32, shape (N,)
        Sampling weights (dimensionless).
    origin : ndarray of str, shape (N,)
        ``A``, ``B``, ``X``, ``random`` or ``injection`` (an injected copy of the host
        ``object_id``).
    record : dict
        What the model card records: labels file and sha256, run, counts, weights.
    """

    object_id: np.ndarray
    images: np.ndarray
    bands: tuple[str, ...]
    is_lens: np.ndarray
    weight: np.ndarray
    origin: np.ndarray
    record: dict = field(default_factory=dict)


def read_grades(path: Path) -> dict[int, str]:
    """``object_id -> grade`` (``A``/``B``/``C``/``X``) of a grades file; last row wins.

    Raises
    ------
    LabelError
        The file is missing, lacks ``object_id``/``grade``, or has a bad row (named).
    """
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: no grades file (engine inspect RUN writes RUN/grades.csv)")
    grades: dict[int, str] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"object_id", "grade"} - set(reader.fieldnames or ())
        if missing:
            raise LabelError(f"{path}: no column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            grade = (row["grade"] or "").strip().upper()
            if grade not in GRADES:
                raise LabelError(f"{path}, line {line}: grade {row['grade']!r} is not A, B, C or X")
            try:
                grades[int(row["object_id"])] = grade
            except (TypeError, ValueError):
                raise LabelError(
                    f"{path}, line {line}: object_id {row['object_id']!r} is not an integer"
                ) from None
    return grades


def read_store_rows(
    store: Path, wanted: set[int]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(object_id, images, bands)`` of the ``wanted`` ids in a cutout store, in store order.

    ``images`` are float32 counts ``(n, bands, H, W)``; ids not in the store are
    absent from the result (the caller names them).
    """
    import json

    want = np.fromiter(wanted, dtype=np.int64, count=len(wanted))
    ids, images, bands, item = [], [], (), (0, 0, 0)
    for shard in list_shards(store):
        attrs = json.loads((store / shard / "zarr.json").read_text()).get("attributes", {})
        bands = tuple(attrs.get("bands", ())) or bands
        meta = json.loads((store / shard / "images" / "zarr.json").read_text())
        item = tuple(meta["shape"][1:]) or item
        # the images of a shard are read only when it holds a wanted id
        try:
            if not np.isin(read_shard_catalog(store, shard)[0], want).any():
                continue
        except StoreError:  # a store without ra/dec: look at the images' ids instead
            pass
        shard_ids, shard_images = read_shard_cutouts(store, shard)
        keep = np.isin(shard_ids, want)
        ids.append(shard_ids[keep])
        images.append(shard_images[keep])
    if not ids:
        return np.empty(0, np.int64), np.empty((0, *item), np.float32), bands
    return np.concatenate(ids), np.concatenate(images), bands


def build_labelled_set(
    run_dir: Path,
    labels: Path,
    n_random: int = 0,
    seed: int = 0,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    n_injections: int = 0,
) -> LabelledSet:
    """The labelled set of a scan's grades (plus ``n_random`` ungraded non-candidates).

    Parameters
    ----------
    run_dir : Path
        A scan's run directory (``cutouts.zarr``, ``scores/``, ``candidates.parquet``).
    labels : Path
        Grades file (``object_id,grade[,graded_utc,grader]``).
    n_random : int
        Ungraded, scored objects below the scan's threshold to add as non-lenses,
        drawn with ``seed`` (all of them if fewer).
    seed : int
        Seed of the random draw.
    weights : mapping
        Sampling weight per origin (``A``, ``B``, ``X``, ``random``, ``injection``).
    n_injections : int
        The run's injected lenses (scored, in its selection function) to add as
        lenses, drawn with ``seed`` (all of them if fewer); re-rendered.

    Raises
    ------
    LabelError
        A run without a cutout store, graded ids that are not in it, or no labels.
    """
    run_dir, labels = Path(run_dir), Path(labels)
    store = run_dir / STORE_NAME
    if not (store / "zarr.json").is_file():
        raise LabelError(f"{run_dir}: no cutout store {STORE_NAME} (is it a scan's run directory?)")
    if n_random < 0 or n_injections < 0:
        raise ConfigError(f"random objects and injections must be >= 0, got {n_random}, "
                          f"{n_injections}")  # fmt: skip
    grades = read_grades(labels)
    graded = {i: g for i, g in grades.items() if GRADES[g] is not None}
    chosen: dict[int, str] = dict(graded)
    if n_random:
        scores = read_parquet_dir(run_dir / "scores", ("object_id", "status"))
        scored = scores[0][scores[1] == "scored"]
        cands = run_dir / "candidates.parquet"
        flagged = read_parquet(cands, ["object_id"]).column(0).to_numpy() if cands.is_file() else []
        pool = np.setdiff1d(scored, np.concatenate([np.fromiter(grades, np.int64), flagged]))
        rng = np.random.default_rng(seed)
        for i in rng.permutation(pool)[:n_random]:
            chosen[int(i)] = "random"
    try:
        ids, images, bands = read_store_rows(store, set(chosen))
    except StoreError as exc:
        raise LabelError(str(exc)) from None
    absent = sorted(set(graded) - set(ids.tolist()))
    if absent:
        shown = ", ".join(map(str, absent[:5])) + (" ..." if len(absent) > 5 else "")
        raise LabelError(
            f"{labels}: {len(absent)} graded object(s) not in {store} (unknown ids, or "
            f"skipped by the scan): {shown}"
        )
    origin = np.array([chosen[int(i)] for i in ids])
    if n_injections:
        inj_ids, inj_images = _injections(run_dir, n_injections, seed)
        ids, images = np.concatenate([ids, inj_ids]), np.concatenate([images, inj_images])
        origin = np.concatenate([origin, np.full(len(inj_ids), "injection")])
    is_lens = np.isin(origin, ["A", "B", "injection"])
    weight = np.array([weights[o] for o in origin], dtype=np.float32)
    counts = {o: int((origin == o).sum()) for o in ("A", "B", "X", "random", "injection")}
    counts["C_left_out"] = sum(g == "C" for g in grades.values())
    record = {
        "labels": str(labels), "labels_sha256": sha256_of(labels), "run": str(run_dir),
        "counts": counts, "n_lens": int(is_lens.sum()), "n_other": int((~is_lens).sum()),
        "weights": dict(weights), "random_seed": seed,
    }  # fmt: skip
    return LabelledSet(ids, images, bands, is_lens, weight, origin, record)


def _injections(run_dir: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of the run's injected lenses (host ids, re-rendered images), drawn with ``seed``."""
    from lensfind.training.injected import rerender_injections, usable_injections

    usable = usable_injections(run_dir)
    if not usable:
        raise LabelError(f"{run_dir}: no scored injections (scan with --inject-rate > 0)")
    rng = np.random.default_rng([seed, 1])
    picked = {usable[i] for i in rng.permutation(len(usable))[:n]}
    inj = rerender_injections(run_dir, sorted({shard for shard, _ in picked}))
    keep = np.array([k in picked for k in inj.key])
    return inj.object_id[keep], inj.images[keep]


def read_parquet_dir(directory: Path, columns: tuple[str, ...]) -> list[np.ndarray]:
    """``columns`` of every Parquet file in ``directory`` (sorted), concatenated."""
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise LabelError(f"{directory}: no score files (is it a scan's run directory?)")
    tables = [read_parquet(f, columns) for f in files]
    return [np.concatenate([t.column(c).to_numpy(zero_copy_only=False) for t in tables])
            for c in columns]  # fmt: skip
