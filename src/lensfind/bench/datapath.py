"""``engine bench datapath``: the scan's data path in cutouts/s, on one machine, in one run.

Stages, each timed on the same cutouts of the survey (DES griz 100x100 by default):

- ``tile_read``: open a tile's band images (FITS, memory-mapped) and read every
  pixel, as cutouts' worth of pixels per second (a warm page cache: the file was
  just written; this is not a cold-disk figure);
- ``cutout_extract``: :func:`lensfind.engine.cutouts.cut_stamps` from the open tile;
- ``zarr_write`` / ``zarr_read`` for float32 and float16 stores
  (:func:`lensfind.engine.store.write_shard_cutouts`, shards of 256);
- ``kernel:<name>``: each perturbation kernel
  (:func:`lensfind.bench.kernels.bench_kernels`), with the model's own rate.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind.bench.report import all_versions, machine_info, machine_slug, spread
from lensfind.errors import ConfigError

SHARD = 256


def write_test_tile(
    data_dir: Path, spec: Any, tile_px: int, seed: int = 0, name: str = "BENCH0001"
) -> str:
    """Write one tile (every band: sky noise, float32, a TAN WCS) in the DES file layout."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from lensfind.simulation.datadir import tile_path

    rng = np.random.default_rng(seed)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [70.0, -50.0]
    wcs.wcs.crpix = [tile_px / 2, tile_px / 2]
    scale = spec.bands[0].pixel_scale_arcsec / 3600.0
    wcs.wcs.cdelt = [-scale, scale]
    for band in spec.bands:
        image = rng.normal(0.0, band.sky_sigma_counts, (tile_px, tile_px)).astype(np.float32)
        fits.PrimaryHDU(image, header=wcs.to_header()).writeto(
            tile_path(data_dir, name, band.name), overwrite=True
        )
    return name


def _rate(
    fn: Callable[[], object], n: int, repeats: int, clear: Callable[[], None] | None = None
) -> dict[str, Any]:
    rates = []
    for _ in range(repeats):
        if clear is not None:
            clear()
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return spread(rates)


def _bench_tile_read(
    root: Path, tile: str, bands: tuple[str, ...], tile_px: int, size: int, repeats: int
) -> dict[str, Any]:
    """``tile_read``: open a tile's band images and read every pixel, in cutouts' worth
    of pixels (``size``^2 per band) per second; warm page cache."""
    from lensfind.engine.tiles import read_tile

    per_tile = (tile_px // size) ** 2  # cutouts' worth of pixels in the tile

    def read_all() -> None:
        with read_tile(root, tile, bands) as t:
            for image in t.images:
                np.array(image, dtype=np.float32)

    return {
        **_rate(read_all, per_tile, repeats),
        "how": f"open + read all pixels of a {len(bands)}x{tile_px}^2 float32 tile; "
        "cutouts' worth of pixels per second; warm page cache",
    }


def _bench_cutouts(
    root: Path, tile: str, bands: tuple[str, ...], tile_px: int, size: int, n_cutouts: int,
    repeats: int,
) -> dict[str, Any]:  # fmt: skip
    """``cutout_extract``: ``cut_stamps`` of ``size`` px at ``n_cutouts`` random positions
    (pixels, seed 1) from the in-memory band images, in cutouts/s."""
    from lensfind.engine.cutouts import cut_stamps
    from lensfind.engine.tiles import read_tile

    rng = np.random.default_rng(1)
    half = size // 2 + 1
    x = rng.uniform(half, tile_px - half, n_cutouts)
    y = rng.uniform(half, tile_px - half, n_cutouts)
    with read_tile(root, tile, bands) as t:
        images = [np.array(im, dtype=np.float32) for im in t.images]
    return {
        **_rate(lambda: cut_stamps(images, x, y, size, bands), n_cutouts, repeats),
        "how": "cut_stamps from in-memory band images, random positions",
    }


def _bench_zarr(
    root: Path, spec: Any, tile: str, stamps: np.ndarray, repeats: int, bar: Any
) -> dict[str, dict[str, Any]]:
    """``zarr_write_<dtype>`` / ``zarr_read_<dtype>`` (float32, float16) of ``stamps``
    (N, bands, H, W) in counts, shards of :data:`SHARD`, in cutouts/s; writes also
    give the store's bytes per cutout. One ``bar`` step per stage."""
    from lensfind.engine.shard import store_scale
    from lensfind.engine.store import read_shard_cutouts, write_shard_cutouts

    n_cutouts, bands = len(stamps), spec.band_names
    ids = np.arange(n_cutouts, dtype=np.int64)
    stages: dict[str, dict[str, Any]] = {}
    for dtype in ("float32", "float16"):
        store = root / f"{dtype}.zarr"
        scale = store_scale(spec) if dtype == "float16" else None

        def write(store: Path = store, dtype: str = dtype, scale: Any = scale) -> None:
            for s in range(0, n_cutouts, SHARD):
                write_shard_cutouts(store, f"s{s:07d}", ids[s : s + SHARD],
                                    stamps[s : s + SHARD], tile=tile, bands=bands,
                                    dtype=dtype, scale=scale)  # fmt: skip

        def clear(store: Path = store) -> None:
            shutil.rmtree(store, ignore_errors=True)

        def read(store: Path = store) -> None:
            for s in range(0, n_cutouts, SHARD):
                read_shard_cutouts(store, f"s{s:07d}")

        stages[f"zarr_write_{dtype}"] = {
            **_rate(write, n_cutouts, repeats, clear),
            "how": f"write_shard_cutouts, shards of {SHARD}, zstd level 1, simulated cutouts",
        }
        nbytes = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        stages[f"zarr_write_{dtype}"]["bytes_per_cutout"] = nbytes / n_cutouts
        bar.update()
        stages[f"zarr_read_{dtype}"] = {
            **_rate(read, n_cutouts, repeats),
            "how": "read_shard_cutouts to float32 counts, warm page cache",
        }
        bar.update()
    return stages


def _bench_kernels_and_model(
    card: Any, sim: np.ndarray, repeats: int, kernels: tuple[str, ...] | None
) -> dict[str, dict[str, Any]]:
    """``kernel:<name>`` for each perturbation kernel on ``sim`` (N, bands, H, W) and
    ``model_onnxruntime_cpu``, the model's scoring rate, in cutouts/s."""
    from lensfind.bench.kernels import bench_kernels
    from lensfind.runtime.scorer import OnnxScorer

    scorer = OnnxScorer(card, threads=os.cpu_count() or 1)
    k = bench_kernels(np.array(sim), scorer, repeats=repeats, names=kernels)
    stages: dict[str, dict[str, Any]] = {}
    for name, r in k["kernels"].items():
        stages[f"kernel:{name}"] = {
            "median": r["cutouts_per_s"], "min": r["min"], "max": r["max"],
            "strength": r["strength"], "over_model": r["over_model"],
            "how": f"probes kernel at its middle strength, {k['n']} cutouts, "
            f"{k['threads']} numba threads",
        }  # fmt: skip
    stages["model_onnxruntime_cpu"] = {
        "median": k["model_cutouts_per_s"], "min": k["model_min"], "max": k["model_max"],
        "how": f"{card.name}, ONNX Runtime CPU, {os.cpu_count()} threads, batches of 256, "
        "normalisation included",
    }  # fmt: skip
    return stages


def _result(
    spec: Any, card: Any, tile_px: int, n_cutouts: int, n_kernel: int, repeats: int,
    command: str | None, stages: dict[str, dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The benchmark record: date, machine, versions, settings and ``stages`` (cutouts/s)."""
    machine = machine_info()
    return {
        "benchmark": "datapath",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "versions": all_versions(),
        "command": command or "lensfind.bench.datapath.bench_datapath()",
        "settings": {
            "survey": spec.name,
            "cutout": [len(spec.band_names), spec.cutout_px, spec.cutout_px],
            "tile_px": tile_px,
            "n_cutouts": n_cutouts,
            "n_kernel": n_kernel,
            "repeats": repeats,
            "model": card.name,
        },
        "stages": stages,
    }


def bench_datapath(
    survey: str = "des_y3",
    tile_px: int = 2000,
    n_cutouts: int = 2048,
    n_kernel: int = 256,
    repeats: int = 5,
    model: str | None = None,
    kernels: tuple[str, ...] | None = None,
    quiet: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Measure every data-path stage (see the module docstring) in cutouts/s.

    Parameters
    ----------
    survey : str
        Survey whose bands and cutout size are used.
    tile_px : int
        Side of the test tile, pixels.
    n_cutouts : int
        Cutouts extracted and written to / read from zarr per repeat.
    n_kernel : int
        Simulated cutouts for the perturbation kernels.
    repeats : int
        Repeats of each stage (medians, with min and max).
    model : str, optional
        Model whose scoring rate is measured beside the kernels (default: the survey's).
    kernels : tuple of str, optional
        Perturbations to time (default: all).
    """
    from lensfind.export.precision import simulated_set
    from lensfind.runtime.shipped import resolve_model
    from lensfind.surveys import get_survey

    if repeats < 1 or n_cutouts < 1 or n_kernel < 1:
        raise ConfigError("repeats, n_cutouts and n_kernel must be >= 1")
    spec = get_survey(survey)
    size, bands = spec.cutout_px, spec.band_names
    if tile_px < size:
        raise ConfigError(f"tile_px must be >= the cutout size {size}, got {tile_px}")
    card = resolve_model(model, spec.name)
    stages: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lensfind-bench-datapath-") as tmp:
        root = Path(tmp)
        tile = write_test_tile(root, spec, tile_px)
        bar = tqdm(total=7, desc="bench datapath", disable=quiet)
        stages["tile_read"] = _bench_tile_read(root, tile, bands, tile_px, size, repeats)
        bar.update()
        stages["cutout_extract"] = _bench_cutouts(root, tile, bands, tile_px, size, n_cutouts,
                                                  repeats)  # fmt: skip
        bar.update()
        sim, _ = simulated_set(card, min(n_kernel, n_cutouts), seed=12)
        stamps = np.resize(np.array(sim), (n_cutouts, *sim.shape[1:]))  # simulated, tiled
        stages.update(_bench_zarr(root, spec, tile, stamps, repeats, bar))
        stages.update(_bench_kernels_and_model(card, sim[:n_kernel], repeats, kernels))
        bar.update()
        bar.close()
    return _result(spec, card, tile_px, n_cutouts, len(sim[:n_kernel]), repeats, command, stages)
