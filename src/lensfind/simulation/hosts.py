"""Deflector selection for injections: which catalogue objects could be lens galaxies.

An injected lens measures the scan's completeness only if its host could be
the deflector of a real lens of the population asked about. Hosts are chosen
from catalogue columns, never from truth:

- a star flag (DES Y3 Gold ``extended_class``: 0-1 stars, 2-3 galaxies) keeps
  injections out of stars;
- a magnitude range in one band (by default the deflector magnitudes of the
  injected population, e.g. r 17-20.5 for the shipped DES model's training set);
- colour cuts that keep early-type (LRG-like) galaxies, the usual deflectors
  (DES: ``g - r >= 1.0``; discs and star-forming galaxies are bluer);
- SExtractor ``flags`` bits 0-1 (bright neighbours, deblended) mark blends.

Every object gets a host class (:data:`HOST_CLASSES`); a :class:`HostSelection`
says which classes may host. A catalogue without a column needed by a cut is
not cut on it, and the class says so (``unclassified`` without photometry).
The host's mass then follows its light: :func:`light_shape` measures the axis
ratio and position angle of the host from its cutout.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.errors import ConfigError
from lensfind.settings_file import read_yaml
from lensfind.simulation.colours import colour_offset

#: Host classes, from the catalogue: isolated and blended red galaxies, blue
#: galaxies, stars, objects outside the magnitude range, and objects without photometry.
HOST_CLASSES = ("red_isolated", "red_blended", "blue", "star", "out_of_range", "unclassified")


@dataclass(frozen=True)
class HostSelection:
    """Catalogue cuts of the objects that may host an injected lens.

    Attributes
    ----------
    mag_band : str or None
        Band of the magnitude range (catalogue column ``mag_<band>``, AB).
    mag_range : tuple of float or None
        Allowed host magnitudes in ``mag_band`` (AB); None: no magnitude cut.
    colour_cuts : tuple of (str, str, float)
        ``(a, b, min)``: ``mag_a - mag_b >= min`` (AB colours) for a red host.
    star_column : str
        Star/galaxy column; values ``<= star_max`` are stars.
    star_max : int
        Largest value of ``star_column`` that marks a star.
    flags_column : str
        SExtractor-style flags column; ``flags & flags_mask`` marks a blend.
    flags_mask : int
        Bits of ``flags_column`` that mark a blend (1: bright neighbours, 2: deblended).
    classes : tuple of str
        Host classes (:data:`HOST_CLASSES`) that may host an injection.
    """

    mag_band: str | None = "r"
    mag_range: tuple[float, float] | None = None
    colour_cuts: tuple[tuple[str, str, float], ...] = ()
    star_column: str = "extended_class"
    star_max: int = 1
    flags_column: str = "flags"
    flags_mask: int = 3
    classes: tuple[str, ...] = ("red_isolated", "unclassified")

    def __post_init__(self) -> None:
        unknown = set(self.classes) - set(HOST_CLASSES)
        if unknown:
            raise ValueError(f"unknown host classes {sorted(unknown)} (known: {HOST_CLASSES})")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready settings (for the run's summary and the selection file)."""
        return {
            "mag_band": self.mag_band,
            "mag_range": None if self.mag_range is None else list(self.mag_range),
            "colour_cuts": [list(c) for c in self.colour_cuts],
            "star_column": self.star_column, "star_max": self.star_max,
            "flags_column": self.flags_column, "flags_mask": self.flags_mask,
            "classes": list(self.classes),
        }  # fmt: skip


#: Default host cuts per survey (the magnitude range comes from the injected population).
DEFAULT_HOSTS: Mapping[str, HostSelection] = {
    # LRG-like: red-sequence galaxies at z ~ 0.2-0.7 have g - r ~ 1.2-1.8; discs ~0.6-0.9
    "des_y3": HostSelection(mag_band="r", colour_cuts=(("g", "r", 1.0),)),
    # one band: no colour, magnitude and star flag only
    "kids_dr3": HostSelection(mag_band="r"),
    # VIS - H of an early type at z ~ 0.5 is ~1.5; discs ~0.85, star-forming ~0.5
    "euclid_wide": HostSelection(mag_band="VIS", colour_cuts=(("VIS", "H", 1.2),)),
}


def default_hosts(survey: str) -> HostSelection:
    """The documented default host selection of ``survey`` (magnitude and star cuts only
    for a survey without one)."""
    return DEFAULT_HOSTS.get(survey, HostSelection(mag_band=None))


@dataclass(frozen=True)
class HostClasses:
    """The host class of each catalogue object and what the selection made of them."""

    host_class: np.ndarray
    eligible: np.ndarray
    #: catalogue columns a cut needed but the catalogue lacks (that cut was not applied)
    missing: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Objects per host class (every class, zeros included)."""
        return {c: int((self.host_class == c).sum()) for c in HOST_CLASSES}


def _column(columns: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray | None:
    if name not in columns:
        return None
    return np.asarray(columns[name], dtype=float).reshape(n)


def classify_hosts(
    columns: Mapping[str, np.ndarray], selection: HostSelection, n: int
) -> HostClasses:
    """Host class of ``n`` catalogue objects from their ``columns`` (name -> array).

    Order of precedence: star, unclassified (no magnitude where one is needed),
    out_of_range, blue (a colour cut fails), red_blended, red_isolated.
    """
    out = np.full(n, "red_isolated", dtype=object)
    missing: list[str] = []
    mags: dict[str, np.ndarray] = {}
    needed = {b for cut in selection.colour_cuts for b in cut[:2]}
    if selection.mag_band is not None and selection.mag_range is not None:
        needed.add(selection.mag_band)
    for band in sorted(needed):
        col = _column(columns, f"mag_{band}", n)
        if col is None:
            missing.append(f"mag_{band}")
        else:
            mags[band] = col
    no_phot = np.zeros(n, dtype=bool)
    for band in needed:
        no_phot |= ~np.isfinite(mags[band]) if band in mags else True
    flags = _column(columns, selection.flags_column, n)
    if flags is None:
        missing.append(selection.flags_column)
    else:
        out[(np.nan_to_num(flags).astype(np.int64) & selection.flags_mask) != 0] = "red_blended"
    blue = np.zeros(n, dtype=bool)
    for a, b, lo in selection.colour_cuts:
        if a in mags and b in mags:
            blue |= ~(mags[a] - mags[b] >= lo)
    out[blue] = "blue"
    if selection.mag_range is not None and selection.mag_band in mags:
        m = mags[selection.mag_band]
        out[~((m >= selection.mag_range[0]) & (m <= selection.mag_range[1]))] = "out_of_range"
    out[no_phot] = "unclassified"
    star = _column(columns, selection.star_column, n)
    if star is None:
        missing.append(selection.star_column)
    else:
        out[np.nan_to_num(star, nan=np.inf) <= selection.star_max] = "star"
    eligible = np.isin(out, list(selection.classes))
    return HostClasses(out.astype(str), eligible, tuple(missing))


def light_shape(
    images: np.ndarray,
    sky_sigma: float | np.ndarray = 0.0,
    fraction: float = 1e-3,
    n_sigma: float = 3.0,
    radius_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Axis ratio and major-axis angle of the central object of each stamp.

    Second moments of the footprint above an isophote (every pixel counts
    once): the isophote is at ``max(fraction * peak, n_sigma * sky_sigma)``,
    within ``radius_px`` of the stamp centre, pixel ``(H // 2, W // 2)``. The
    isophotes of an elliptical Sersic profile are ellipses of its axis ratio,
    so the footprint has that axis ratio whatever the profile's index, once the
    isophote lies outside the seeing-limited core (a 3-sigma sky isophote of a
    deflector does); intensity-weighted moments would see the core, made round
    by the PSF, for de Vaucouleurs profiles.

    Parameters
    ----------
    images : ndarray (N, H, W)
        One band of the cutouts, counts, sky-subtracted.
    sky_sigma : float or ndarray (N,)
        Sky noise per pixel, counts: the isophote is ``n_sigma`` of it.
    fraction : float
        Lowest isophote as a fraction of the peak within ``radius_px``.
    n_sigma : float
        Lowest isophote in units of ``sky_sigma``.
    radius_px : float, optional
        Radius of the measured area, pixels (default: a quarter of the stamp side).

    Returns
    -------
    q : ndarray (N,)
        Minor/major axis ratio in [0.05, 1]; 1 where nothing is above the isophote.
    phi : ndarray (N,)
        Major-axis angle, radians in [0, pi), from +x (columns) toward +y (rows),
        the convention of :func:`lensfind.simulation.profiles.sersic`.
    """
    img = np.asarray(images, dtype=float)
    n, h, w = img.shape
    y, x = np.mgrid[0:h, 0:w].astype(float)
    x -= w // 2
    y -= h // 2
    inside = x**2 + y**2 <= (radius_px or h / 4.0) ** 2
    peak = np.where(inside, img, -np.inf).max(axis=(1, 2))
    level = np.maximum(fraction * peak, n_sigma * np.broadcast_to(sky_sigma, (n,)))
    wgt = (inside & (img >= level[:, None, None]) & (img > 0)).astype(float)
    norm = wgt.sum(axis=(1, 2))
    safe = np.where(norm > 0, norm, 1.0)
    cx = (wgt * x).sum(axis=(1, 2)) / safe
    cy = (wgt * y).sum(axis=(1, 2)) / safe
    dx, dy = x - cx[:, None, None], y - cy[:, None, None]
    mxx = (wgt * dx**2).sum(axis=(1, 2)) / safe
    myy = (wgt * dy**2).sum(axis=(1, 2)) / safe
    mxy = (wgt * dx * dy).sum(axis=(1, 2)) / safe
    tr, diff = mxx + myy, np.hypot(mxx - myy, 2 * mxy)
    lam1, lam2 = 0.5 * (tr + diff), 0.5 * (tr - diff)
    valid = (norm > 0) & (lam1 > 0)
    q = np.where(valid, np.sqrt(np.clip(lam2, 0.0, None) / np.where(valid, lam1, 1.0)), 1.0)
    phi = np.where(valid, np.mod(0.5 * np.arctan2(2 * mxy, mxx - myy), np.pi), 0.0)
    return np.clip(q, 0.05, 1.0), phi


def hosts_from_dict(data: Mapping[str, object], base: HostSelection) -> HostSelection:
    """``base`` with the fields of ``data`` (a YAML mapping of :class:`HostSelection` fields)."""
    known = {f.name for f in dataclasses.fields(HostSelection)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"host selection: unknown keys {unknown} (known: {sorted(known)})")
    values: dict[str, object] = dict(data)
    if values.get("mag_range") is not None:
        lo, hi = (float(v) for v in values["mag_range"])  # type: ignore[union-attr]
        values["mag_range"] = (lo, hi)
    if "colour_cuts" in values:
        values["colour_cuts"] = tuple(
            (str(a), str(b), float(c)) for a, b, c in values["colour_cuts"]
        )  # type: ignore[union-attr,misc]
    if "classes" in values:
        values["classes"] = tuple(str(c) for c in values["classes"])  # type: ignore[union-attr]
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


def with_magnitude_range(
    selection: HostSelection, lens_mag_r_range: tuple[float, float]
) -> HostSelection:
    """``selection`` with its magnitude range, if unset, from a population's deflector r
    magnitudes (AB), moved to ``selection.mag_band`` by the red early-type colour."""
    if selection.mag_range is not None or selection.mag_band is None:
        return selection
    shift = colour_offset("red", selection.mag_band)
    lo, hi = lens_mag_r_range
    return dataclasses.replace(selection, mag_range=(lo + shift, hi + shift))


def load_hosts(path: Path, base: HostSelection) -> HostSelection:
    """``base`` with the fields of a YAML file of :class:`HostSelection` fields."""
    data = read_yaml(path)
    try:
        return hosts_from_dict(data, base)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: bad host selection ({exc})") from None


def host_columns(objects: pa.Table) -> dict[str, np.ndarray]:
    """The numeric columns of a catalogue table, which host classes are made from."""
    return {
        name: objects.column(name).to_numpy(zero_copy_only=False)
        for name in objects.column_names
        if pa.types.is_integer(objects.schema.field(name).type)
        or pa.types.is_floating(objects.schema.field(name).type)
    }
