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
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.wcs import WCS

from lensfind import __version__
from lensfind.parquet_files import read_parquet
from lensfind.simulation.noise import add_noise
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import simulate
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
    pix = spec.pixel_scale_arcsec
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(config.seed)
    tile_deg = config.tile_px * pix / 3600.0
    cat_cols: dict[str, list] = {}
    truth_cols: dict[str, list] = {}
    next_id = 1_000_001
    half = spec.cutout_px // 2
    seen: dict[str, int] = {}
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
            name = base + ("" if repeat == 0 else chr(ord("a") + repeat - 1))
            wcs = tile_wcs(ra_c, dec_c, config.tile_px, pix)
            # Jittered grid of object centres (0-based pixel coordinates).
            g = np.arange(config.spacing_px / 2, config.tile_px, config.spacing_px)
            gx, gy = np.meshgrid(g, g)
            jit = 0.15 * config.spacing_px
            x = gx.ravel() + rng.uniform(-jit, jit, gx.size)
            y = gy.ravel() + rng.uniform(-jit, jit, gy.size)
            n = x.size
            seeing = float(
                np.clip(np.exp(population.seeing_sigma_ln * rng.standard_normal()), 0.7, 1.5)
            )
            xi, yi = np.round(x).astype(int), np.round(y).astype(int)
            pop = replace(population, center_jitter_px=0.0)
            sim = simulate(
                spec,
                n,
                seed=int(rng.integers(2**31)),
                config=pop,
                seeing_factor=np.full(n, seeing),
                noise=False,
                progress=progress,
                center_offset_px=(x - xi, y - yi),
            )
            # Stamps are rendered at their sub-pixel offsets from their nearest pixel,
            # where they are added into the tile.
            stamps = sim.images
            image = np.zeros((len(spec.bands), config.tile_px, config.tile_px), np.float32)
            for k in range(n):
                _paste(image, stamps[k], xi[k] - half, yi[k] - half)
            noisy = add_noise(image, spec, rng, band_axis=0, dtype=np.float32)
            if config.masked_trail and ti == 0 and tj == 0:
                _mask_trail(noisy[-1], rng)
            for b, band in enumerate(spec.bands):
                hdr = wcs.to_header()
                hdr["TILENAME"] = name
                hdr["BAND"] = band.name
                hdr["MAGZERO"] = (band.zero_point_mag, "AB zero point of the counts")
                hdr["FWHM"] = (band.psf_fwhm_arcsec * seeing, "PSF FWHM, arcsec")
                hdr["BUNIT"] = "counts"
                fits.PrimaryHDU(noisy[b], header=hdr).writeto(tmp / f"{name}_{band.name}.fits")
            ra, dec = wcs.wcs_pix2world(x, y, 0)
            ids = np.arange(next_id, next_id + n)
            next_id += n
            mags = {
                f"mag_{band.name}": band.zero_point_mag
                - 2.5 * np.log10(np.maximum(sim.images[:, b].sum(axis=(1, 2)), 1e-3))
                for b, band in enumerate(spec.bands)
            }
            for key, value in {
                "object_id": ids,
                "ra": ra,
                "dec": dec,
                "tile": np.full(n, name),
                **mags,
                **catalogue_flags(sim.truth["kind"]),
            }.items():
                cat_cols.setdefault(key, []).append(value)
            truth = {
                "object_id": ids,
                **sim.truth,
                "tile": np.full(n, name),
                "x_pix": x,
                "y_pix": y,
            }
            for key, value in truth.items():
                truth_cols.setdefault(key, []).append(value)
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


def _mask_trail(band_image: np.ndarray, rng: np.random.Generator, width_px: int = 3) -> None:
    """Set a straight trail of pixels to NaN (a masked satellite trail), in place."""
    h, w = band_image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0.2, 1.2)
    x0, y0 = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    dist = np.abs((xx - x0) * np.sin(angle) - (yy - y0) * np.cos(angle))
    band_image[dist < width_px / 2] = np.nan
