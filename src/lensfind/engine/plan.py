"""Scan planning: objects -> tiles -> shards, with an input fingerprint.

The plan is written to ``plan.json`` before any work starts. Objects that lie on
no tile (or have invalid coordinates) go to a shard of tile ``""`` and end as
skipped with a reason, so every input object is accounted for.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lensfind.digests import file_digest
from lensfind.engine.catalog import HEALPIX_29, catalog_sha256
from lensfind.engine.tiles import tile_footprint_contains
from lensfind.errors import CatalogError
from lensfind.simulation.datadir import tile_path
from lensfind.surveys.spec import SurveySpec

NO_TILE = ""
PLAN_NAME = "plan.json"


@dataclass(frozen=True)
class Shard:
    """A unit of work: objects (row indices into the catalogue) of one tile.

    ``rows`` is a tuple, or a ``range`` where the rows are consecutive (a
    store shard of ``engine score``), which costs no memory per object.
    """

    shard_id: str
    tile: str
    rows: Sequence[int]


@dataclass(frozen=True)
class Plan:
    """All shards of a scan and the fingerprint of its inputs."""

    survey: str
    bands: tuple[str, ...]
    cutout_px: int
    data_dir: str
    n_objects: int
    fingerprint: str
    shards: tuple[Shard, ...]

    def write(self, path: Path) -> None:
        """Write the plan as JSON; each shard's rows as ``[start, stop)`` runs.

        A HATS (HEALPix-sorted) catalogue gives one run per shard and ``engine
        score`` plans always do, so ``plan.json`` grows with the number of
        shards, not of objects.
        """
        data = {
            "survey": self.survey,
            "bands": list(self.bands),
            "cutout_px": self.cutout_px,
            "data_dir": self.data_dir,
            "n_objects": self.n_objects,
            "fingerprint": self.fingerprint,
            "shards": [
                {"shard_id": s.shard_id, "tile": s.tile, "n": len(s.rows),
                 "ranges": row_ranges(s.rows)}
                for s in self.shards
            ],
        }  # fmt: skip
        path.write_text(json.dumps(data))

    @classmethod
    def read(cls, path: Path) -> "Plan":
        data = json.loads(path.read_text())
        shards = tuple(Shard(s["shard_id"], s["tile"], _rows_of(s)) for s in data["shards"])
        return cls(data["survey"], tuple(data["bands"]), data["cutout_px"], data["data_dir"],
                   data["n_objects"], data["fingerprint"], shards)  # fmt: skip


def row_ranges(rows: Sequence[int]) -> list[list[int]]:
    """``rows`` as runs of consecutive indices, ``[[start, stop), ...]``."""
    if not rows:
        return []
    if isinstance(rows, range) and rows.step == 1:
        return [[rows.start, rows.stop]]
    r = np.asarray(rows, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(r) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(r)]])
    return [[int(r[a]), int(r[b - 1]) + 1] for a, b in zip(starts, stops, strict=True)]


def _rows_of(shard: dict) -> tuple[int, ...]:
    """A shard's rows from ``plan.json`` (``ranges``, or the older ``rows`` list)."""
    if "ranges" not in shard:
        return tuple(shard["rows"])
    return tuple(r for start, stop in shard["ranges"] for r in range(start, stop))


def fingerprint(catalog_file: Path, data_dir: Path, spec: SurveySpec, tiles: list[str],
                shard_size: int, settings: dict[str, Any] | None = None) -> str:  # fmt: skip
    """sha256 of the catalogue's and tiles' content (:func:`~lensfind.digests.file_digest`),
    the plan, and ``settings``: the options that change what a shard stores (JSON-able)."""
    h = hashlib.sha256(catalog_sha256(catalog_file).encode())
    for tile in sorted(tiles):
        for band in spec.band_names:
            p = tile_path(data_dir, tile, band)
            h.update(f"{p.name}:{file_digest(p) if p.exists() else '-'};".encode())
    h.update(f"{spec.name}|{spec.band_names}|{spec.cutout_px}|{shard_size}".encode())
    h.update(json.dumps(settings or {}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def available_tiles(data_dir: Path, spec: SurveySpec) -> list[str]:
    """Tiles that have an image in the first band."""
    suffix = f"_{spec.bands[0].name}.fits"
    return sorted(p.name[: -len(suffix)] for p in data_dir.glob(f"*{suffix}"))


def assign_tiles(catalog: pa.Table, data_dir: Path, spec: SurveySpec) -> np.ndarray:
    """Tile of each object: the catalogue's ``tile`` column, or the WCS footprints."""
    if "tile" in catalog.column_names:
        tiles = np.asarray(catalog.column("tile").to_pylist(), dtype=object)
        return np.where(tiles == None, NO_TILE, tiles).astype(str)  # noqa: E711
    ra = catalog.column("ra").to_numpy(zero_copy_only=False)
    dec = catalog.column("dec").to_numpy(zero_copy_only=False)
    out = np.full(len(ra), NO_TILE, dtype=object)
    for tile in available_tiles(data_dir, spec):
        free = (out == NO_TILE) & (np.abs(dec) <= 90)  # never a bad position
        on = tile_footprint_contains(data_dir, tile, spec.bands[0].name, ra[free], dec[free])
        idx = np.flatnonzero(free)[on]
        out[idx] = tile
    return out.astype(str)


def healpix29(catalog: pa.Table) -> np.ndarray:
    """HEALPix nested index at order 29 of every object (``-1`` for bad coordinates).

    Taken from a HATS ``_healpix_29`` column when present, else computed.
    """
    if HEALPIX_29 in catalog.column_names:
        return catalog.column(HEALPIX_29).to_numpy(zero_copy_only=False).astype(np.int64)
    import astropy.units as u
    from astropy_healpix import core

    ra = catalog.column("ra").to_numpy(zero_copy_only=False).astype(float)
    dec = catalog.column("dec").to_numpy(zero_copy_only=False).astype(float)
    good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    out = np.full(len(ra), -1, dtype=np.int64)
    out[good] = core.lonlat_to_healpix(ra[good] * u.deg, dec[good] * u.deg, 2**29,
                                       order="nested")  # fmt: skip
    return out


def make_plan(catalog: pa.Table, catalog_file: Path, data_dir: Path, spec: SurveySpec,
              shard_size: int, settings: dict[str, Any] | None = None) -> Plan:  # fmt: skip
    """Group objects by tile and split each tile into shards of <= ``shard_size`` objects.

    Within a tile, objects are in HEALPix nested order (order 29, the HATS
    spatial index), ties by ``object_id``, so a shard is a compact patch of sky
    and the plan is reproducible.
    """
    if shard_size < 1:
        raise CatalogError(f"shard size must be >= 1, got {shard_size}")
    tiles = assign_tiles(catalog, data_dir, spec)
    ids = catalog.column("object_id").to_numpy()
    hpx = healpix29(catalog)
    shards: list[Shard] = []
    for tile in sorted(set(tiles.tolist())):
        rows = np.flatnonzero(tiles == tile)
        rows = rows[np.lexsort((ids[rows], hpx[rows]))]
        label = tile or "no-tile"
        for k, start in enumerate(range(0, len(rows), shard_size)):
            part = rows[start : start + shard_size]
            shards.append(Shard(f"{label}-{k:04d}", tile, tuple(int(r) for r in part)))
    real_tiles = sorted({t for t in tiles.tolist() if t != NO_TILE})
    return Plan(survey=spec.name, bands=spec.band_names, cutout_px=spec.cutout_px,
                data_dir=str(data_dir), n_objects=catalog.num_rows, shards=tuple(shards),
                fingerprint=fingerprint(catalog_file, data_dir, spec, real_tiles, shard_size,
                                        settings))  # fmt: skip
