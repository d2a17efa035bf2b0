"""Synthetic survey regions: FITS tiles with planted lenses, a catalogue and truth.

A region is a grid of tiles, one FITS file per tile and band (DES naming,
``DES0340-3000_g.fits``), float32 counts with a TAN WCS. Objects sit on a
jittered grid so that cutouts rarely overlap; each tile has its own seeing.
The directory also holds ``catalog.parquet`` (what a survey catalogue gives:
``object_id``, ``ra``, ``dec``, ``tile``, magnitudes, a star/galaxy class and
deblending flags) and ``truth.parquet``.
"""

import json
import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.wcs import WCS

from lensfind import __version__
from lensfind.parquet_files import read_parquet
from lensfind.simulation.noise import apply_noise
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import SimulatedSet, simulate
from lensfind.surveys.spec import SurveySpec

CATALOG_NAME = "catalog.parquet"
TRUTH_NAME = "truth.parquet"
REGION_META = "region.json"


@dataclass(frozen=True)
class RegionConfig:
    """Size and content of a synthetic region.

    Attributes
    ----------
    tiles_ra, tiles_dec : int
        Tile grid shape.
    tile_px : int
        Tile side, pixels.
    spacing_px : int
        Object grid spacing, pixels (objects are jittered by up to 15% of it).
    lens_fraction : float
        Fraction of objects that are planted lenses.
    ra_deg, dec_deg : float
        Region centre, degrees.
    seed : int
        Seed of everything random in the region.
    masked_trail : bool
        Draw one NaN satellite trail (masked pixels) through the first tile's z band.
    """

    tiles_ra: int = 2
    tiles_dec: int = 2
    tile_px: int = 2400
    spacing_px: int = 100
    lens_fraction: float = 0.05
    ra_deg: float = 55.0
    dec_deg: float = -30.0
    seed: int = 2026
    masked_trail: bool = True


def tile_name(prefix: str, ra_deg: float, dec_deg: float) -> str:
    """DES-style tile name from the tile centre, e.g. ``DES0340-3000``."""
    hh, mm = divmod(round(ra_deg % 360.0 / 15.0 * 60.0) % (24 * 60), 60)
    sign = "-" if dec_deg < 0 else "+"
    dd, dm = divmod(round(abs(dec_deg) * 60.0), 60)
    return f"{prefix}{hh:02d}{mm:02d}{sign}{dd:02d}{dm:02d}"


def tile_wcs(ra_deg: float, dec_deg: float, size_px: int, pixel_scale_arcsec: float) -> WCS:
    """A north-up, east-left TAN WCS centred on ``(ra_deg, dec_deg)``."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.crpix = [(size_px + 1) / 2.0, (size_px + 1) / 2.0]
    scale = pixel_scale_arcsec / 3600.0
    w.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return w


#: Tiles rendered at once (threads: the rendering's FFTs release the GIL).
RENDER_THREADS = 2


@dataclass
class _TilePlan:
    """One tile's centre, objects and random draws, made before it is rendered."""

    name: str
    wcs: WCS
    #: object centres, 0-based tile pixels
    x: np.ndarray
    y: np.ndarray
    #: the tile's PSF FWHM over the survey's
    seeing: float
    #: seed of the objects' simulation
    seed: int
    #: standard-normal noise draws, (bands, tile_px, tile_px) float32
    noise: np.ndarray
    #: ``(angle, x0, y0)`` of a masked satellite trail in the last band, or None
    trail: tuple[float, float, float] | None


def _tile_centres(config: RegionConfig, spec: SurveySpec) -> list[tuple[str, float, float]]:
    """``(name, ra, dec)`` of the region's tiles (degrees), row by row from the south."""
    tile_deg = config.tile_px * spec.pixel_scale_arcsec / 3600.0
    seen: dict[str, int] = {}
    out = []
    for ti in range(config.tiles_dec):
        for tj in range(config.tiles_ra):
            dec_c = config.dec_deg + (ti - (config.tiles_dec - 1) / 2) * tile_deg
            ra_c = config.ra_deg + (tj - (config.tiles_ra - 1) / 2) * tile_deg / np.cos(
                np.deg2rad(dec_c)
            )
            base = tile_name(spec.tile_prefix, ra_c, dec_c)
            # Real tiles are >= 0.7 deg apart; small synthetic ones may share a name.
            repeat = seen.get(base, 0)
            seen[base] = repeat + 1
            out.append((base + ("" if repeat == 0 else chr(ord("a") + repeat - 1)), ra_c, dec_c))
    return out


def _plan_tile(
    name: str,
    ra_c: float,
    dec_c: float,
    trail: bool,
    spec: SurveySpec,
    config: RegionConfig,
    population: PopulationConfig,
    rng: np.random.Generator,
) -> _TilePlan:
    """Draw one tile's object positions, seeing, simulation seed, noise and trail."""
    # Jittered grid of object centres (0-based pixel coordinates).
    g = np.arange(config.spacing_px / 2, config.tile_px, config.spacing_px)
    gx, gy = np.meshgrid(g, g)
    jit = 0.15 * config.spacing_px
    x = gx.ravel() + rng.uniform(-jit, jit, gx.size)
    y = gy.ravel() + rng.uniform(-jit, jit, gy.size)
    seeing = float(np.clip(np.exp(population.seeing_sigma_ln * rng.standard_normal()), 0.7, 1.5))
    seed = int(rng.integers(2**31))
    shape = (len(spec.bands), config.tile_px, config.tile_px)
    noise = rng.standard_normal(shape, dtype=np.float32)
    side = config.tile_px
    trail_at = None
    if trail:
        angle = rng.uniform(0.2, 1.2)
        trail_at = (angle, rng.uniform(0.3, 0.7) * side, rng.uniform(0.3, 0.7) * side)
    wcs = tile_wcs(ra_c, dec_c, config.tile_px, spec.pixel_scale_arcsec)
    return _TilePlan(name, wcs, x, y, seeing, seed, noise, trail_at)


def _render_tile(
    tile: _TilePlan,
    spec: SurveySpec,
    population: PopulationConfig,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, SimulatedSet]:
    """``(noisy tile (bands, H, W) float32, the objects' simulation)`` of a planned tile."""
    n = tile.x.size
    xi, yi = np.round(tile.x).astype(int), np.round(tile.y).astype(int)
    sim = simulate(
        spec,
        n,
        seed=tile.seed,
        config=population,
        seeing_factor=np.full(n, tile.seeing),
        noise=False,
        progress=progress,
        center_offset_px=(tile.x - xi, tile.y - yi),
    )
    # Stamps are rendered at their sub-pixel offsets from their nearest pixel,
    # where they are added into the tile.
    half = spec.cutout_px // 2
    image = np.zeros(tile.noise.shape, np.float32)
    for k in range(n):
        _paste(image, sim.images[k], xi[k] - half, yi[k] - half)
    return apply_noise(image, spec, tile.noise, band_axis=0), sim


def make_region(
    out_dir: Path,
    spec: SurveySpec,
    config: RegionConfig | None = None,
    population: PopulationConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a synthetic region to ``out_dir`` (built in a temporary sibling, then renamed).

    Returns ``out_dir``. ``progress`` is called with the number of objects rendered.
    """
    config = config or RegionConfig()
    population = population or PopulationConfig(lens_fraction=config.lens_fraction)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(config.seed)
    cat_cols: dict[str, list] = {}
    truth_cols: dict[str, list] = {}
    next_id = 1_000_001
    pop = replace(population, center_jitter_px=0.0)

    def finish(tile: _TilePlan, rendered: Future) -> None:
        nonlocal next_id
        noisy, sim = rendered.result()
        if tile.trail is not None:
            _mask_trail(noisy[-1], *tile.trail)
        for b, band in enumerate(spec.bands):
            hdr = tile.wcs.to_header()
            hdr["TILENAME"] = tile.name
            hdr["BAND"] = band.name
            hdr["MAGZERO"] = (band.zero_point_mag, "AB zero point of the counts")
            hdr["FWHM"] = (band.psf_fwhm_arcsec * tile.seeing, "PSF FWHM, arcsec")
            hdr["BUNIT"] = "counts"
            fits.PrimaryHDU(noisy[b], header=hdr).writeto(tmp / f"{tile.name}_{band.name}.fits")
        ra, dec = tile.wcs.wcs_pix2world(tile.x, tile.y, 0)
        n = tile.x.size
        ids = np.arange(next_id, next_id + n)
        next_id += n
        mags = {
            f"mag_{band.name}": band.zero_point_mag
            - 2.5 * np.log10(np.maximum(sim.images[:, b].sum(axis=(1, 2)), 1e-3))
            for b, band in enumerate(spec.bands)
        }
        names = np.full(n, tile.name)
        for key, value in {
            "object_id": ids,
            "ra": ra,
            "dec": dec,
            "tile": names,
            **mags,
            **catalogue_flags(sim.truth["kind"]),
        }.items():
            cat_cols.setdefault(key, []).append(value)
        truth = {"object_id": ids, **sim.truth, "tile": names, "x_pix": tile.x, "y_pix": tile.y}
        for key, value in truth.items():
            truth_cols.setdefault(key, []).append(value)

    # Tiles are planned in order (every draw of ``rng``, the noise's included, in the
    # order of a one-tile-at-a-time loop: the region does not depend on the threads) and
    # rendered RENDER_THREADS at a time; they are written in order.
    in_flight: deque[tuple[_TilePlan, Future]] = deque()
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        for k, (name, ra_c, dec_c) in enumerate(_tile_centres(config, spec)):
            tile = _plan_tile(name, ra_c, dec_c, k == 0 and config.masked_trail, spec, config,
                              population, rng)  # fmt: skip
            in_flight.append((tile, pool.submit(_render_tile, tile, spec, pop, progress)))
            if len(in_flight) >= RENDER_THREADS:
                finish(*in_flight.popleft())
        while in_flight:
            finish(*in_flight.popleft())
    _write_parquet(tmp / CATALOG_NAME, cat_cols)
    _write_parquet(tmp / TRUTH_NAME, truth_cols)
    meta = {
        "survey": spec.name,
        "bands": list(spec.band_names),
        "region": asdict(config),
        "population": json.loads(json.dumps(asdict(population), default=dict)),
        "lensfind_version": __version__,
        "n_objects": next_id - 1_000_001,
    }
    (tmp / REGION_META).write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def catalogue_flags(kinds: np.ndarray) -> dict[str, np.ndarray]:
    """What a survey pipeline would flag: ``extended_class`` (DES Y3 Gold convention: 0
    for stars, 3 for galaxies) and SExtractor ``flags`` (2, deblended: a galaxy with a
    close companion of its own brightness class; 0 otherwise)."""
    kinds = np.asarray(kinds)
    return {
        "extended_class": np.where(kinds == "star", 0, 3).astype(np.int16),
        "flags": np.where(kinds == "pair", 2, 0).astype(np.int16),
    }


def region_lens_fraction(data_dir: Path) -> float | None:
    """The planted-lens fraction of a synthetic region (None: not a synthetic region).

    The fraction of ``truth.parquet``'s objects that are lenses (what was
    planted, not the nominal ``lens_fraction`` it was drawn with).
    """
    path = Path(data_dir) / TRUTH_NAME
    if not path.is_file():
        return None
    is_lens = read_parquet(path, columns=["is_lens"])["is_lens"].to_numpy(zero_copy_only=False)
    return float(np.mean(is_lens)) if len(is_lens) else None


def _write_parquet(path: Path, cols: dict[str, list]) -> None:
    table = pa.table({k: np.concatenate(v) for k, v in cols.items()})
    pq.write_table(table, path)


def _paste(image: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> None:
    """Add ``stamp (B, h, w)`` into ``image (B, H, W)`` at corner ``(x0, y0)``, clipped."""
    _, h, w = stamp.shape
    _, H, W = image.shape
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + w, W), min(y0 + h, H)
    if xa >= xb or ya >= yb:
        return
    image[:, ya:yb, xa:xb] += stamp[:, ya - y0 : yb - y0, xa - x0 : xb - x0]


def _mask_trail(
    band_image: np.ndarray, angle: float, x0: float, y0: float, width_px: int = 3
) -> None:
    """Set a straight trail of pixels through ``(x0, y0)`` at ``angle`` (radians) to NaN
    (a masked satellite trail), in place."""
    h, w = band_image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.abs((xx - x0) * np.sin(angle) - (yy - y0) * np.cos(angle))
    band_image[dist < width_px / 2] = np.nan
