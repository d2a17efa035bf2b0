"""Survey data directories and the embedded default region.

A data directory holds::

    catalog.parquet | catalog.fits   objects: object_id, ra, dec (deg) [, tile, ...]
    | catalog.hats/                  or a HATS catalogue (HEALPix-partitioned Parquet)
    <TILE>_<band>.fits               one image per tile and band (DES naming), with WCS
    truth.parquet                    optional: planted-lens truth (synthetic regions)

With no ``--data``, a scan uses the embedded default: a deterministic synthetic
region of the survey generated once into ``$LENSFIND_CACHE/regions/``.
"""

from pathlib import Path

from tqdm.auto import tqdm

from lensfind.cache import cache_dir
from lensfind.errors import CatalogError
from lensfind.simulation.region import CATALOG_NAME, RegionConfig, make_region
from lensfind.surveys.spec import SurveySpec

#: Bumped when the region's content changes (v2: catalogue star class and blend flags;
#: v3: converged ("auto") supersampling of every profile; v4: objects rendered at
#: their sub-pixel positions, float32 tile noise).
DEFAULT_REGION_VERSION = "v4"
HATS_CATALOG_NAME = "catalog.hats"


def catalog_path(data_dir: Path) -> Path:
    """The catalogue of a data directory (Parquet preferred, then FITS, then HATS)."""
    if not data_dir.is_dir():
        raise CatalogError(f"{data_dir}: data directory not found")
    for name in (CATALOG_NAME, "catalog.fits", "catalog.fit"):
        if (data_dir / name).is_file():
            return data_dir / name
    if (data_dir / HATS_CATALOG_NAME).is_dir():
        return data_dir / HATS_CATALOG_NAME
    raise CatalogError(f"{data_dir}: no catalog.parquet, catalog.fits or {HATS_CATALOG_NAME}/")


def tile_path(data_dir: Path, tile: str, band: str) -> Path:
    """Path of the image of ``tile`` in ``band`` (DES convention ``<TILE>_<band>.fits``)."""
    return data_dir / f"{tile}_{band}.fits"


def default_region(spec: SurveySpec, quiet: bool = False) -> Path:
    """The embedded default region of ``spec``, generated on first use.

    A survey on another pixel grid than its registry entry's (``spec.on_grid``,
    e.g. Euclid's NISP grid) has a region of its own.
    """
    from lensfind.surveys.registry import get_survey

    grid = (
        "" if spec == get_survey(spec.name) else f"-{spec.pixel_scale_arcsec:g}as{spec.cutout_px}"
    )
    path = cache_dir() / "regions" / f"{spec.name}{grid}-default-{DEFAULT_REGION_VERSION}"
    if (path / CATALOG_NAME).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    config = RegionConfig()
    n = config.tiles_ra * config.tiles_dec * (config.tile_px // config.spacing_px) ** 2
    with tqdm(
        total=n,
        desc=f"generating the embedded {spec.name} region (once)",
        unit="obj",
        disable=quiet,
    ) as bar:
        make_region(path, spec, config, progress=bar.update)
    return path
