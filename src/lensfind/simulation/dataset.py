"""Training / test sets on disk: a zarr v3 group of stamps, labels and truth.

Layout of ``SET.zarr``::

    images   (N, bands, H, W) float32, counts
    label    (N,) uint8, 1 = lens
    truth/<column>  (N,) one array per truth column; ``kind`` as int8 codes
    attrs    survey, bands, pixel_scale_arcsec, seed, n, population, kinds, version
"""

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

from lensfind import __version__
from lensfind.errors import LensfindError
from lensfind.simulation.population import ALL_KINDS, KINDS, PopulationConfig
from lensfind.simulation.simulate import SimulatedSet, simulate
from lensfind.surveys.registry import get_survey
from lensfind.surveys.spec import SurveySpec

BLOCK = 1024


class DatasetError(LensfindError):
    """A simulated set that cannot be read."""


def write_dataset(
    path: str | Path,
    spec: SurveySpec,
    n: int,
    seed: int,
    config: PopulationConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Simulate ``n`` objects in blocks and write them to a zarr v3 group at ``path``.

    The store is written to ``path.tmp`` and renamed when complete, so an
    interrupted run never leaves a set that looks finished.
    """
    config = config or PopulationConfig()
    # sets with rare lenses index every kind; default sets keep the original list
    kind_list = ALL_KINDS if config.has_rare_kinds else KINDS
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    size = spec.cutout_px
    nb = len(spec.bands)
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    images = root.create_array(
        "images",
        shape=(n, nb, size, size),
        chunks=(256, nb, size, size),
        dtype="float32",
        compressors=None,
    )
    label = root.create_array("label", shape=(n,), chunks=(max(n, 1),), dtype="uint8")
    columns: dict[str, zarr.Array] = {}
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block = simulate(
            spec,
            stop - start,
            seed=seed * 1_000_003 + start // BLOCK,
            config=config,
            progress=progress,
        )
        images[start:stop] = block.images
        label[start:stop] = block.truth["is_lens"].astype(np.uint8)
        for key, value in block.truth.items():
            if key == "kind":
                value = np.array([kind_list.index(k) for k in value], dtype=np.int8)
            elif value.dtype == bool:
                value = value.astype(np.uint8)
            if key not in columns:
                columns[key] = root.create_array(
                    f"truth/{key}", shape=(n,), chunks=(max(n, 1),), dtype=value.dtype
                )
            columns[key][start:stop] = value
    root.attrs.update(
        {
            "survey": spec.name,
            "bands": list(spec.band_names),
            "pixel_scale_arcsec": spec.pixel_scale_arcsec,
            "cutout_px": size,
            "seed": seed,
            "n": n,
            "kinds": list(kind_list),
            "population": json.loads(json.dumps(dataclasses.asdict(config), default=dict)),
            "lensfind_version": __version__,
        }
    )
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def on_common_grid(
    spec: SurveySpec,
    pixel_scale_arcsec: float,
    cutout_px: int,
    config: PopulationConfig | None = None,
) -> tuple[SurveySpec, PopulationConfig]:
    """``spec`` with all bands on one grid, and a population that keeps the same objects.

    The simulator draws scenes in arcsec, so one seed gives the same objects on
    any grid except for the random centre offset, which is ``center_jitter_px``
    pixels of the grid. The returned config rescales it so that the offsets stay
    ``center_jitter_px`` pixels of ``spec``'s first band (its reference grid):
    Euclid sets on the NISP (0.3"/px, 66 px) and VIS (0.1"/px, 200 px) grids from
    one seed then hold the same scenes (Wilde+22's OU-66 and OU-200 inputs). Only
    noise, and the S/N floor ``min_source_snr`` (measured on each grid), differ.
    """
    grid = spec.on_grid(pixel_scale_arcsec, cutout_px)
    return grid, population_on_grid(grid, config, reference=_reference_grid(spec))


def population_on_grid(
    spec: SurveySpec, config: PopulationConfig | None = None, reference: SurveySpec | None = None
) -> PopulationConfig:
    """``config`` (default: the default population) for simulating on ``spec``'s grid with
    centre offsets of ``center_jitter_px`` pixels of the survey's own reference grid.

    The simulator draws offsets in pixels of the grid it renders on; a survey moved to
    another grid (:meth:`SurveySpec.on_grid`, e.g. Euclid on the NISP grid for OU-66)
    would otherwise get offsets of another size in arcsec than on its own grid, and a
    probe another centring than its model's training set. The unit is the first band of
    the survey's registry entry whatever bands ``spec`` keeps (Euclid: VIS, 0.1"), or of
    ``reference`` (the survey before it moved grids) for a survey not in the registry.
    """
    config = config or PopulationConfig()
    reference = _reference_grid(reference or spec)
    scale = reference.bands[0].pixel_scale_arcsec / spec.bands[0].pixel_scale_arcsec
    return dataclasses.replace(config, center_jitter_px=config.center_jitter_px * scale)


def _reference_grid(spec: SurveySpec) -> SurveySpec:
    """The registry entry of ``spec``'s survey, or ``spec`` itself if it has none."""
    try:
        return get_survey(spec.name)
    except LensfindError:  # a spec of its own: its grid is the reference
        return spec


def read_dataset(path: str | Path, limit: int | None = None) -> tuple[SimulatedSet, dict]:
    """Read a set written by :func:`write_dataset`; returns the set and its attrs."""
    path = Path(path)
    try:
        root = zarr.open_group(str(path), mode="r")
        attrs = dict(root.attrs)
        n_all = int(str(attrs["n"]))
        n = n_all if limit is None else min(limit, n_all)
        images = np.asarray(zarr.open_array(str(path / "images"), mode="r")[:n])
        truth: dict[str, np.ndarray] = {}
        for key in zarr.open_group(str(path / "truth"), mode="r").array_keys():
            value = np.asarray(zarr.open_array(str(path / "truth" / key), mode="r")[:n])
            if key == "kind":
                value = np.array(attrs["kinds"])[value]
            elif key == "is_lens":
                value = value.astype(bool)
            truth[key] = value
    except (FileNotFoundError, KeyError) as exc:
        raise DatasetError(f"{path}: not a lensfind simulated set ({exc})") from exc
    return SimulatedSet(images, truth), attrs


def cached_dataset(path: str | Path, spec: SurveySpec, n: int, seed: int) -> Path:
    """The set at ``path`` if it holds ``n`` objects of ``spec`` simulated with ``seed``; else
    simulate it there (default population), saying so on stdout."""
    path = Path(path)
    if path.exists():
        try:
            _, attrs = read_dataset(path, limit=1)
        except DatasetError:
            attrs = {}
        if (attrs.get("survey") == spec.name and int(attrs.get("n", -1)) == n
                and int(attrs.get("seed", -1)) == seed):  # fmt: skip
            return path
    print(f"simulating {n} {spec.name} objects (seed {seed}) -> {path}", flush=True)
    return write_dataset(path, spec, n, seed)


def survey_of(attrs: dict) -> SurveySpec:
    """The (band-selected) survey spec a set was simulated for.

    A set simulated on a grid other than the survey's own (``cutout_px`` and a
    ``pixel_scale_arcsec`` that not every band has, e.g. Euclid VIS on the NISP
    grid; :meth:`SurveySpec.on_grid`) gets its spec back on that grid. Sets
    written before ``cutout_px`` was recorded take the survey's cutout size.
    """
    size = attrs.get("cutout_px")
    spec = get_survey(attrs["survey"]).select(
        tuple(attrs["bands"]), cutout_px=None if size is None else int(size)
    )
    scale = attrs.get("pixel_scale_arcsec")
    if scale is not None and any(b.pixel_scale_arcsec != float(scale) for b in spec.bands):
        spec = spec.on_grid(float(scale), spec.cutout_px)
    return spec


def select_bands(source: str | Path, out: str | Path, bands: tuple[str, ...]) -> Path:
    """Write a copy of the set at ``source`` holding only ``bands`` (in that order).

    The same objects, labels and truth; the attrs say the new bands. A set for
    a one- or three-band model (Wilde+22's OU-J, OU-JYH, ...) without simulating
    its objects again. Written to ``out.tmp`` and renamed when complete.
    """
    source, out = Path(source), Path(out)
    root = zarr.open_group(str(source), mode="r")
    attrs = dict(root.attrs)
    have = list(attrs.get("bands", []))
    missing = [b for b in bands if b not in have]
    if missing or not bands:
        raise DatasetError(f"{source}: has bands {have}, not {list(bands) or 'none'}")
    idx = [have.index(b) for b in bands]
    images = zarr.open_array(str(source / "images"), mode="r")
    n, _, h, w = images.shape
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    dst = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    shape = (n, len(idx), h, w)
    new = dst.create_array(
        "images", shape=shape, chunks=(256, *shape[1:]), dtype="float32", compressors=None
    )
    for start in range(0, n, BLOCK):
        new[start : start + BLOCK] = np.asarray(images[start : start + BLOCK])[:, idx]
    for key in ("label", *(f"truth/{k}" for k in root["truth"].array_keys())):
        arr = np.asarray(zarr.open_array(str(source / key), mode="r")[:])
        dst.create_array(key, shape=arr.shape, chunks=(max(n, 1),), dtype=arr.dtype)[:] = arr
    dst.attrs.update({**attrs, "bands": list(bands), "bands_from": str(source)})
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
