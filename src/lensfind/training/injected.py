"""A scan's injected lenses, re-rendered: lenses for ``engine train --finetune --injections N``.

The scan scores its injected copies but does not store their images; their
truth is in ``RUN/injections/<shard>.parquet`` (host id, copy, the host's measured
axis ratio and angle, the tile's PSF FWHM, the score). Each shard's copies were
made by one call of :func:`lensfind.simulation.inject.inject_lenses` with the
seed :func:`~lensfind.simulation.inject.batch_seed` ``(inject_seed, shard_id)``
and the run's injected population (``summary.json``), so the same call on the
stored host cutouts (in the same order) gives the same sources and noise. The
only difference from the scan's copies is the host pixels' store rounding
(float16 stores: <= 2^-11 relative); the re-rendered copies' scores agree with the
recorded ones to that (tested).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensfind.parquet_files import read_parquet
from lensfind.simulation.inject import batch_seed, inject_lenses
from lensfind.simulation.population_file import population_from_dict
from lensfind.surveys.registry import get_survey

INJECTIONS_DIR = "injections"


@dataclass(frozen=True)
class InjectedSet:
    """Re-rendered injected copies of one or more shards.

    Attributes
    ----------
    object_id : ndarray of int64, shape (M,)
        Host ids (a host with k copies appears k times).
    images : ndarray of float32, shape (M, bands, H, W)
        Host cutout plus lensed source, image counts, the survey's band order.
    scan_score : ndarray of float32, shape (M,)
        The scan's score of each copy (NaN unless scored).
    usable : ndarray of bool, shape (M,)
        Scored by the scan and counted in its selection function.
    key : list of (str, int)
        ``(shard id, row of its injections file)`` per copy.
    """

    object_id: np.ndarray
    images: np.ndarray
    scan_score: np.ndarray
    usable: np.ndarray
    key: list[tuple[str, int]]


def injection_shards(run_dir: Path) -> list[str]:
    """Shard ids of a run with injections, sorted."""
    return sorted(p.stem for p in (Path(run_dir) / INJECTIONS_DIR).glob("*.parquet"))


def usable_injections(run_dir: Path) -> list[tuple[str, int]]:
    """``(shard id, row)`` of every injected copy the scan scored and counted, in order."""
    out = []
    for shard in injection_shards(run_dir):
        t = read_parquet(Path(run_dir) / INJECTIONS_DIR / f"{shard}.parquet").to_pydict()
        ok = np.array(t["status"]) == "scored"
        if "in_selection" in t:
            ok &= np.asarray(t["in_selection"], dtype=bool)
        out += [(shard, int(r)) for r in np.flatnonzero(ok)]
    return out


def rerender_injections(run_dir: Path, shard_ids: list[str]) -> InjectedSet:
    """The injected copies of ``shard_ids``, re-rendered on the run's stored host cutouts.

    Raises
    ------
    ValueError
        A host not in the cutout store, or cutouts on another grid than the survey's.
    """
    from lensfind.training.labels import read_store_rows

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    sel = summary["selection_function"]
    spec = get_survey(summary["survey"])
    population = population_from_dict(sel["population"])
    ids, images, scores, usable, keys = [], [], [], [], []
    for shard in shard_ids:
        t = read_parquet(run_dir / INJECTIONS_DIR / f"{shard}.parquet").to_pydict()
        hosts = np.asarray(t["object_id"], dtype=np.int64)
        got, stamps, bands = read_store_rows(run_dir / "cutouts.zarr", set(hosts.tolist()))
        where = {int(i): k for k, i in enumerate(got)}
        if set(hosts.tolist()) - set(where):
            raise ValueError(f"{run_dir}: injection hosts of shard {shard} not in the store")
        if stamps.shape[-1] != spec.cutout_px or (bands and tuple(bands) != spec.band_names):
            raise ValueError(f"{run_dir}: cutouts are not on the {spec.name} grid and bands")
        psf = t["psf_fwhm_tile_arcsec"][0] if t["psf_fwhm_tile_arcsec"] else None
        psf = None if psf is None or not np.isfinite(psf) else float(psf)
        shape = (np.asarray(t["host_q"], dtype=float), np.asarray(t["host_phi_rad"], dtype=float))
        seed = batch_seed(int(sel["inject_seed"]), shard)
        mags = np.asarray(t["mag_r_lens"], dtype=float)
        batch = inject_lenses(spec, stamps[[where[int(i)] for i in hosts]], seed, psf, mags,
                              population, shape)  # fmt: skip
        ids.append(hosts)
        keys += [(shard, r) for r in range(len(hosts))]
        images.append(batch.images)
        scores.append(np.asarray(t["score"], dtype=np.float32))
        usable.append(np.array(t["status"]) == "scored")
        if "in_selection" in t:
            usable[-1] &= np.asarray(t["in_selection"], dtype=bool)
    if not ids:
        empty = np.empty(0)
        return InjectedSet(empty.astype(np.int64), np.empty((0, len(spec.bands), 0, 0)),
                           empty.astype(np.float32), empty.astype(bool), [])  # fmt: skip
    return InjectedSet(np.concatenate(ids), np.concatenate(images), np.concatenate(scores),
                       np.concatenate(usable), keys)  # fmt: skip
