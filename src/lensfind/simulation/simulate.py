"""Simulate batches of labelled stamps with their truth parameters."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from lensfind.simulation.noise import add_noise
from lensfind.simulation.population import (
    COMPOUND_TRUTH,
    LENS_KINDS,
    RARE_KINDS,
    PopulationConfig,
    sample_scene,
)
from lensfind.simulation.render import render, source_snr
from lensfind.surveys.spec import SurveySpec

TRUTH_COLUMNS = (
    "is_lens",
    "kind",
    "theta_e_arcsec",
    "mag_g_source",
    "mag_r_lens",
    "psf_fwhm_arcsec",
    "alpha",
    "magnification",
    "source_snr",
    "mag_g_source_intrinsic",
)


@dataclass(frozen=True)
class SimulatedSet:
    """Stamps ``(N, bands, H, W)`` float32 in counts and per-object truth columns."""

    images: np.ndarray
    truth: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def reference_band(spec: SurveySpec) -> int:
    """Index of the band used for single-band truth (r if present, else the first)."""
    return spec.band_names.index("r") if "r" in spec.band_names else 0


def _simulate_chunk(
    spec: SurveySpec,
    kinds: np.ndarray,
    rng: np.random.Generator,
    config: PopulationConfig,
    seeing_factor: np.ndarray | None,
    size_px: int,
    noise: bool,
    source_only: bool = False,
    rare_truth: bool = False,
    dtype: np.dtype | type = np.float64,
    deflector_shape: tuple[np.ndarray, np.ndarray] | None = None,
    supersample: int | str = "auto",
    center_offset_px: tuple[np.ndarray, np.ndarray] | None = None,
) -> SimulatedSet:
    scene, partial = sample_scene(spec, kinds, rng, config, seeing_factor, deflector_shape)
    if center_offset_px is not None:
        pix = spec.pixel_scale_arcsec
        dx, dy = (np.asarray(a, dtype=scene.center_x_arcsec.dtype) for a in center_offset_px)
        scene = replace(scene, center_x_arcsec=dx * pix, center_y_arcsec=dy * pix)
    rend = render(scene, spec, size_px=size_px, supersample=supersample, psf=config.psf,
                  source_only=source_only, dtype=dtype)  # fmt: skip
    lens = np.isin(kinds, LENS_KINDS)
    snr = source_snr(rend, spec)
    boost = np.ones(len(kinds))
    if config.min_source_snr > 0:
        faint = lens & (snr < config.min_source_snr)
        boost[faint] = config.min_source_snr / np.maximum(snr[faint], 1e-6)
    source_light = rend.source_light * boost[:, None, None, None]
    total = source_light if source_only else rend.lens_light + source_light
    ref = reference_band(spec)

    intrinsic_flux = scene.source.flux.sum(axis=1)
    if scene.second is not None:
        intrinsic_flux = intrinsic_flux + scene.second.source.flux.sum(axis=1)
    lensed_flux = rend.source_flux_unconvolved.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(lens, lensed_flux / intrinsic_flux, np.nan)
        mag_g_source = partial["mag_g_source_intrinsic"] - 2.5 * np.log10(boost * mu)
        alpha = np.where(
            lens,
            source_light[:, ref].max(axis=(1, 2)) / rend.lens_light[:, ref].max(axis=(1, 2)),
            np.nan,
        )
    truth: dict[str, np.ndarray] = {
        "is_lens": lens,
        "kind": kinds.astype(str),
        "theta_e_arcsec": np.where(lens, scene.theta_e_arcsec, np.nan),
        "mag_g_source": mag_g_source,
        "mag_r_lens": partial["mag_r_lens"],
        "psf_fwhm_arcsec": scene.psf_fwhm_arcsec[:, ref],
        "alpha": alpha,
        "magnification": mu,
        "source_snr": np.where(lens, snr * boost, np.nan),
        "mag_g_source_intrinsic": partial["mag_g_source_intrinsic"],
    }
    for j, band in enumerate(spec.bands):
        truth[f"psf_fwhm_{band.name}_arcsec"] = scene.psf_fwhm_arcsec[:, j]
    if rare_truth:
        for key in COMPOUND_TRUTH:
            truth[key] = partial.get(key, np.full(len(kinds), np.nan))
    images = add_noise(total, spec, rng) if noise else total.astype(np.float32)
    return SimulatedSet(images, truth)


def simulate(
    spec: SurveySpec,
    n: int,
    seed: int,
    config: PopulationConfig | None = None,
    kinds: np.ndarray | None = None,
    seeing_factor: np.ndarray | None = None,
    size_px: int | None = None,
    noise: bool = True,
    chunk: int = 64,
    progress: Callable[[int], None] | None = None,
    source_only: bool = False,
    dtype: np.dtype | type = np.float64,
    deflector_shape: tuple[np.ndarray, np.ndarray] | None = None,
    supersample: int | str = "auto",
    center_offset_px: tuple[np.ndarray, np.ndarray] | None = None,
) -> SimulatedSet:
    """Simulate ``n`` labelled stamps, reproducibly from ``seed``.

    Parameters
    ----------
    spec : SurveySpec
        Survey to simulate (its bands must share one pixel grid).
    n : int
        Number of objects.
    seed : int
        Seed: the same ``(seed, n, chunk, config)`` give identical bytes. With
        ``kinds`` given, object ``i`` depends only on ``seed`` and ``i // chunk``;
        drawn kinds depend on ``n`` too.
    config : PopulationConfig, optional
        Population parameters (defaults: 50% lenses).
    kinds : ndarray of str, optional
        Fix the kind of each object instead of drawing them.
    seeing_factor : ndarray (n,), optional
        PSF FWHM relative to the survey median, per object.
    size_px : int, optional
        Stamp side (default: the survey cutout size).
    noise : bool
        Add sky + Poisson noise (False for stamps that go into noisy tiles).
    chunk : int
        Objects rendered per vectorised batch.
    progress : callable, optional
        Called with the number of objects finished after each chunk.
    source_only : bool
        Return only the lensed-source light (no deflector, stars or companions):
        the stamps to inject into real cutouts. The truth is unchanged.
    dtype : numpy float type
        Precision of the rendering (float32: about 1.3x faster, for stamps that
        are added to float32 cutouts); the stamps are float32 either way.
    deflector_shape : (ndarray (n,), ndarray (n,)), optional
        Axis ratio and angle (rad) of each deflector's light (e.g. measured on an
        injection's host); the mass follows them (``sample_scene``).
    supersample : int or "auto"
        Sub-pixels per pixel side (:func:`lensfind.simulation.render.render`): "auto"
        refines each pixel as far as its light needs (within 0.5% of converged).
    center_offset_px : (ndarray (n,), ndarray (n,)), optional
        Each object's centre in pixels from the stamp's centre pixel (``size // 2``),
        along columns and rows, in place of the population's random jitter
        (``config.center_jitter_px`` should then be 0): objects rendered where a
        region's tile has them, with no resampling afterwards.

    Sets with rare kinds (``kinds`` or ``config.lens_mix``) also get the
    compound-lens truth columns (``z_lens``, ``z_source1``, ``z_source2``,
    ``sigma_lens_kms``, ``sigma_source1_kms``, ``theta_e_source1_arcsec``,
    ``beta12``; NaN for other kinds).
    """
    config = config or PopulationConfig()
    size = size_px or spec.cutout_px
    root = np.random.SeedSequence(seed)
    kinds = (
        config.draw_kinds(n, np.random.default_rng(root.spawn(1)[0])) if kinds is None else kinds
    )
    if len(kinds) != n:
        raise ValueError(f"kinds has {len(kinds)} entries for n={n}")
    rare_truth = config.has_rare_kinds or bool(np.isin(kinds, RARE_KINDS).any())
    n_chunks = (n + chunk - 1) // chunk
    seeds = np.random.SeedSequence(seed, spawn_key=(1,)).spawn(n_chunks)
    images = np.empty((n, len(spec.bands), size, size), dtype=np.float32)
    truth: dict[str, np.ndarray] = {}
    for c in range(n_chunks):
        sl = slice(c * chunk, min(n, (c + 1) * chunk))
        part = _simulate_chunk(
            spec,
            np.asarray(kinds[sl]),
            np.random.default_rng(seeds[c]),
            config,
            None if seeing_factor is None else np.asarray(seeing_factor[sl]),
            size,
            noise,
            source_only,
            rare_truth,
            dtype,
            None if deflector_shape is None else tuple(np.asarray(a)[sl] for a in deflector_shape),
            supersample,
            None
            if center_offset_px is None
            else tuple(np.asarray(a)[sl] for a in center_offset_px),
        )
        images[sl] = part.images
        for key, value in part.truth.items():
            if key not in truth:
                truth[key] = np.empty(n, dtype=value.dtype if value.dtype.kind != "U" else object)
            truth[key][sl] = value
        if progress is not None:
            progress(sl.stop - sl.start)
    truth["kind"] = truth["kind"].astype(str)
    return SimulatedSet(images, truth)
