"""Injecting simulated lensed sources into survey cutouts (injection-recovery).

A lensed source is rendered alone (SIE + shear deflector at the stamp centre,
no deflector light) with the PSF of the target cutout and added to it with its
own Poisson noise; the cutout's galaxy plays the deflector. The injected
copies measure which lenses a scan could have found: its selection function.
"""

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.fft import next_fast_len

from lensfind.simulation.hosts import HostSelection, classify_hosts, with_magnitude_range
from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.population_file import population_to_dict
from lensfind.simulation.simulate import reference_band, simulate
from lensfind.surveys.spec import SurveySpec

#: Truth columns of an injection.
INJECTION_COLUMNS = (
    "theta_e_arcsec",
    "mag_g_source",
    "mag_g_source_intrinsic",
    "magnification",
    "source_snr",
    "psf_fwhm_arcsec",
)


@dataclass(frozen=True)
class InjectionPlan:
    """What a scan injects, where, and how often (the same for every shard; picklable).

    Attributes
    ----------
    rate : float
        Fraction of the eligible hosts that get injected copies (by id and seed).
    seed : int
        Seed of the choice of hosts and of the lenses.
    copies : int
        Lensed copies per chosen host, each with its own lens.
    population : PopulationConfig
        The injected population (the selection function is conditional on it).
    hosts : HostSelection
        Which catalogue objects may host (deflector cuts, resolved magnitude range).
    """

    rate: float
    seed: int
    copies: int
    population: PopulationConfig
    hosts: HostSelection


def plan_for_catalogue(
    population: PopulationConfig,
    hosts: HostSelection,
    rate: float,
    minimum: int,
    seed: int,
    columns: Mapping[str, np.ndarray],
    n: int,
) -> tuple["InjectionPlan | None", dict[str, Any]]:
    """The injection plan of a catalogue of ``n`` objects (None: no injections), and its
    summary entries (settings, host classes, eligible hosts, effective rate and copies).

    The hosts' magnitude range, if unset, is the population's deflector magnitudes;
    the rate rises, then the copies per host, to at least ``minimum`` injections
    (:func:`effective_rate`).
    """
    hosts = with_magnitude_range(hosts, population.lens_mag_r_range)
    classes = classify_hosts(columns, hosts, n)
    n_eligible = int(classes.eligible.sum())
    eff, copies = effective_rate(rate, minimum, n_eligible)
    summary: dict[str, Any] = {
        "inject_rate": rate, "inject_seed": seed, "inject_rate_effective": eff,
        "inject_copies": copies, "inject_min": minimum,
        "population": population_to_dict(population), "host_selection": hosts.to_dict(),
        "host_classes": classes.counts(), "n_hosts_eligible": n_eligible,
        "host_columns_missing": list(classes.missing),
    }  # fmt: skip
    if eff <= 0:
        return None, summary
    return InjectionPlan(eff, seed, copies, population, hosts), summary


#: Most lensed copies of one host (small scans with few eligible hosts).
MAX_COPIES = 8


def effective_rate(rate: float, minimum: int, n_eligible: int) -> tuple[float, int]:
    """Injection rate and copies per host that give at least ``minimum`` injections.

    ``rate`` 0 stays 0 (injections off); else the rate rises to
    ``minimum / n_eligible``, and past 1 every host gets several copies (at most
    :data:`MAX_COPIES`).
    """
    if rate <= 0 or n_eligible == 0:
        return (rate if n_eligible else 0.0), 1
    if rate * n_eligible >= minimum:
        return rate, 1
    if n_eligible >= minimum:
        return minimum / n_eligible, 1
    return 1.0, min(MAX_COPIES, -(-minimum // n_eligible))


def injection_population(population: PopulationConfig) -> PopulationConfig:
    """``population`` as injected: every object a lens, centred on its host."""
    return replace(population, lens_fraction=1.0, center_jitter_px=0.0)


@dataclass(frozen=True)
class Injections:
    """Noiseless lensed-source stamps ``(N, bands, H, W)`` float32 in counts, and truth."""

    sources: np.ndarray
    truth: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.sources.shape[0])


def simulate_sources(
    spec: SurveySpec,
    n: int,
    seed: int,
    seeing_factor: float | np.ndarray | None = None,
    config: PopulationConfig | None = None,
    deflector_shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> Injections:
    """Render ``n`` lensed sources to inject, reproducibly from ``seed``.

    Parameters
    ----------
    spec : SurveySpec
        Survey (its bands on one pixel grid); stamps are ``spec.cutout_px`` wide.
    n : int
        Number of sources.
    seed : int
        Seed of the draws.
    seeing_factor : float or ndarray (n,), optional
        PSF FWHM of the target cutouts as a multiple of the survey median; drawn
        from the population's seeing distribution when None.
    config : PopulationConfig, optional
        Deflector and source parameter ranges (default: the default population,
        the one the shipped models are trained on), injected as
        :func:`injection_population`.
    deflector_shape : (ndarray (n,), ndarray (n,)), optional
        Axis ratio and angle (rad) of each host's light: the mass follows them.

    Returns
    -------
    Injections
        Source stamps and the truth columns :data:`INJECTION_COLUMNS`
        (``mag_g_source`` is the lensed, observed g magnitude, AB).
    """
    config = injection_population(config or PopulationConfig())
    if seeing_factor is not None:
        seeing_factor = np.broadcast_to(np.asarray(seeing_factor, dtype=float), (n,)).copy()
    size = spec.cutout_px
    small = min(size, source_stamp_px(spec, config, seeing_factor))
    sim = simulate(
        spec,
        n,
        seed,
        config=config,
        kinds=np.full(n, "lens"),
        seeing_factor=seeing_factor,
        size_px=small,
        noise=False,
        source_only=True,
        dtype=np.float32,  # added to float32 cutouts: float64 would only cost time
        deflector_shape=deflector_shape,
    )
    sources = np.zeros((n, len(spec.bands), size, size), dtype=np.float32)
    o = size // 2 - small // 2
    sources[:, :, o : o + small, o : o + small] = sim.images
    truth = {c: np.asarray(sim.truth[c], dtype=float) for c in INJECTION_COLUMNS}
    return Injections(sources, truth)


def source_stamp_px(
    spec: SurveySpec, config: PopulationConfig, seeing_factor: np.ndarray | None
) -> int:
    """Side (pixels) of a stamp that holds every lensed image with its PSF wings.

    Images lie within ``theta_E + |beta|`` of the centre (``|beta| <= 0.6
    theta_E`` for the population), plus four source effective radii and four PSF
    FWHM, rounded up to a fast FFT length; rendering on this stamp instead of the
    cutout makes injection cheap.
    """
    theta_max = config.theta_e_range_arcsec[1]
    reff_max = config.source_r_eff_range_arcsec[1]
    seeing = 1.8 if seeing_factor is None else float(np.max(seeing_factor, initial=1.0))
    fwhm = seeing * max(b.psf_fwhm_arcsec for b in spec.bands)
    radius_arcsec = 1.6 * theta_max + 3 * reff_max + 2 * fwhm
    return int(next_fast_len(2 * int(np.ceil(radius_arcsec / spec.pixel_scale_arcsec))))


def inject(cutouts: np.ndarray, sources: np.ndarray, spec: SurveySpec, seed: int) -> np.ndarray:
    """Add source stamps and their Poisson noise to cutouts (a new float32 array).

    Parameters
    ----------
    cutouts : ndarray (N, bands, H, W)
        Survey cutouts in counts (already carrying sky and object noise).
    sources : ndarray (N, bands, H, W)
        Noiseless lensed-source light in counts.
    spec : SurveySpec
        Gives the gain (e-/count) of each band for the source's photon noise.
    seed : int
        Seed of the noise.
    """
    if cutouts.shape != sources.shape:
        raise ValueError(f"cutouts {cutouts.shape} and sources {sources.shape} differ")
    gain = np.array([b.gain_e_per_count for b in spec.bands], dtype=np.float32)
    rng = np.random.default_rng(seed)
    out = np.array(cutouts, dtype=np.float32)
    # only the box where any source has light needs the source and noise (the
    # source stamps are much smaller than the cutouts)
    lit = sources.any(axis=(0, 1))
    rows = np.flatnonzero(lit.any(axis=1))
    cols = np.flatnonzero(lit.any(axis=0))
    if rows.size:
        box = (..., slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        src = np.asarray(sources[box], dtype=np.float32)
        light = np.maximum(src, 0.0) / gain[None, :, None, None]
        noise = np.sqrt(light) * rng.standard_normal(src.shape, dtype=np.float32)
        out[box] += src + noise
    return out


def seeing_factor_of(spec: SurveySpec, fwhm_arcsec: float | None) -> float | None:
    """A measured PSF FWHM (arcsec, reference band) as a multiple of the survey median."""
    if fwhm_arcsec is None or not np.isfinite(fwhm_arcsec) or fwhm_arcsec <= 0:
        return None
    return float(fwhm_arcsec / spec.bands[reference_band(spec)].psf_fwhm_arcsec)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + _MIX
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def choose_hosts(object_ids: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Which objects get an injected copy: a fraction ``rate``, fixed by id and seed.

    The choice depends only on each object's id and the seed, so it is the same
    whatever the sharding, worker or resume.
    """
    if rate <= 0:
        return np.zeros(len(object_ids), dtype=bool)
    ids = np.asarray(object_ids).astype(np.int64).view(np.uint64)
    u = _splitmix64(ids ^ _splitmix64(np.array([seed], dtype=np.uint64)))
    return (u >> np.uint64(11)).astype(np.float64) / float(1 << 53) < rate


def batch_seed(seed: int, key: str) -> int:
    """A 32-bit seed for one batch of injections (e.g. one shard) from the run seed."""
    return int(np.random.SeedSequence([seed, zlib.crc32(key.encode())]).generate_state(1)[0])


@dataclass(frozen=True)
class InjectedBatch:
    """Cutouts with injected lenses and one truth row per injection."""

    images: np.ndarray
    truth: dict[str, np.ndarray]


def inject_lenses(
    spec: SurveySpec,
    cutouts: np.ndarray,
    seed: int,
    psf_fwhm_arcsec: float | None = None,
    host_mag_r: np.ndarray | None = None,
    population: PopulationConfig | None = None,
    host_shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> InjectedBatch:
    """Inject one simulated lensed source into each cutout.

    Parameters
    ----------
    spec : SurveySpec
        Survey of the cutouts.
    cutouts : ndarray (N, bands, H, W)
        Host cutouts in counts, centred on the host galaxy.
    seed : int
        Seed of the sources and their noise.
    psf_fwhm_arcsec : float, optional
        Measured PSF FWHM of the cutouts' tile, reference band; the survey's
        seeing distribution is drawn from when unknown.
    host_mag_r : ndarray (N,), optional
        Catalogue magnitude of each host (the deflector), reported as ``mag_r_lens``.
    population : PopulationConfig, optional
        The injected population (default: the default population).
    host_shape : (ndarray (N,), ndarray (N,)), optional
        Axis ratio and angle (rad) of each host's light
        (:func:`lensfind.simulation.hosts.light_shape`): the mass follows them.
    """
    n = len(cutouts)
    sources = simulate_sources(spec, n, seed, seeing_factor_of(spec, psf_fwhm_arcsec),
                               population, host_shape)  # fmt: skip
    images = inject(cutouts, sources.sources, spec, seed + 1)
    truth = dict(sources.truth)
    truth["mag_r_lens"] = (
        np.full(n, np.nan) if host_mag_r is None else np.asarray(host_mag_r, dtype=float)
    )
    return InjectedBatch(images, truth)
