"""Vectorised rendering of lens and non-lens stamps: light, lensing, PSF.

Geometry is evaluated once per object on a supersampled grid and shared by all
bands (colours are per-band fluxes of each component); the PSF is applied exactly
in Fourier space at native resolution, where point sources are added as phase
ramps so that they land at their sub-pixel positions. By default the supersampling
adapts to the light (:func:`_refine`): compact, cuspy sources near caustics get as many
sub-pixels as they need, where they need them; smooth or empty pixels get one.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import cast

import numpy as np
import scipy.fft

from lensfind.simulation.lensing import ray_trace
from lensfind.simulation.multiplane import double_source_plane_trace
from lensfind.simulation.profiles import gaussian_otf, moffat_kernel, sersic, spiral_modulation
from lensfind.simulation.scene import Scene, SersicComponents
from lensfind.surveys.spec import SurveySpec


@dataclass(frozen=True)
class Rendered:
    """Noiseless, PSF-convolved stamps in counts, ``(N, bands, H, W)`` float64.

    ``lens_light`` is everything not lensed (galaxies, stars); ``source_light`` is
    the lensed background source. ``source_flux_unconvolved`` is the lensed source
    flux per band before the PSF, summed over the stamp (counts).
    """

    lens_light: np.ndarray
    source_light: np.ndarray
    source_flux_unconvolved: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.lens_light + self.source_light


def _pixel_grid(
    size_px: int, pixel_scale_arcsec: float, supersample: int, dtype: np.dtype | type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled sub-pixel centres ``(x, y)`` in arcsec; pixel ``size_px // 2`` is at 0.

    ``x`` grows with the column index and ``y`` with the row index.
    """
    idx = np.arange(size_px * supersample)
    c = ((idx + 0.5) / supersample - 0.5 - size_px // 2) * pixel_scale_arcsec
    gx, gy = np.meshgrid(c.astype(dtype), c.astype(dtype), indexing="xy")
    return gx, gy


def _bin(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks of the last two axes."""
    *lead, h, w = image.shape
    return image.reshape(*lead, h // factor, factor, w // factor, factor).sum(axis=(-3, -1))


def _component(
    comp: SersicComponents, x: np.ndarray, y: np.ndarray, pixel_area: float
) -> np.ndarray:
    """Unit-flux shape of a Sersic batch on grids ``x, y`` (N, h, w); counts per sub-pixel."""
    e = (slice(None), None, None)
    return pixel_area * sersic(
        x - comp.dx_arcsec[e],
        y - comp.dy_arcsec[e],
        comp.r_eff_arcsec[e],
        comp.n[e],
        comp.q[e],
        comp.phi[e],
    )


#: sub-pixels evaluated together: the grids of a group of objects and their temporaries
#: (about ten float64 arrays) stay in a core's L2 cache; whole batches at once stream
#: every temporary through memory (1.7x the time of an injection, 1.3x of a simulation)
_GROUP_SUBPIXELS = 2**16

#: ``supersample="auto"`` (:func:`_refine`): a pixel is refined while its error estimate
#: exceeds ``_AUTO_REL`` of the light seen through the PSF there (at least
#: ``_AUTO_FLOOR`` of that light's peak); ``_AUTO_TRIGGER`` x the second differences of
#: the pixel-centre image estimate the error of unrefined pixels; at most
#: ``2**_AUTO_LEVELS`` sub-pixels a side (float32: ``2**_AUTO_LEVELS_FLOAT32``, which its
#: coordinates still resolve). Measured within 0.25% (L2 and flux) of converged renders.
_AUTO_REL = 1e-2
_AUTO_FLOOR = 0.05
_AUTO_TRIGGER = 0.25
_AUTO_LEVELS = 16
_AUTO_LEVELS_FLOAT32 = 10
_AUTO_MAX_CELLS = 4096  # a pixel with this many cells at one level splits them no further
_ROW = 64  # refined cells of an object gather its parameters once per _ROW cells

_E = (slice(None), None, None)


def render(
    scene: Scene,
    spec: SurveySpec,
    size_px: int | None = None,
    supersample: int | str = "auto",
    psf: str = "gaussian",
    source_only: bool = False,
    dtype: np.dtype | type = np.float64,
) -> Rendered:
    """Render a batch of objects as noiseless, PSF-convolved stamps.

    Objects are rendered a few at a time (each object's stamp depends only on
    its own parameters), so that their grids stay in cache.

    Parameters
    ----------
    scene : Scene
        Parameters of ``N`` objects (fluxes in counts of ``spec``'s bands).
    spec : SurveySpec
        Survey whose bands (all on one pixel grid) are rendered.
    size_px : int, optional
        Stamp side in pixels (default: the survey's cutout size).
    supersample : int or "auto"
        Sub-pixels per pixel side used to integrate light over pixels; "auto"
        refines each pixel as far as its light needs (:func:`_refine`), within
        0.5% (relative L2 and flux) of a converged render at about the cost of 2.
    psf : {"gaussian", "moffat"}
        PSF shape; the FWHM comes from ``scene.psf_fwhm_arcsec``.
    source_only : bool
        Render only the lensed source (``lens_light`` is zero): for injections.
    dtype : numpy float type
        Precision of the grids and of the returned stamps.
    """
    integer = isinstance(supersample, int | np.integer) and not isinstance(supersample, bool)
    if supersample != "auto" and not (integer and supersample >= 1):
        raise ValueError(f"supersample must be a positive int or 'auto', not {supersample!r}")
    size = size_px or spec.cutout_px
    scene = scene.astype(dtype)
    auto = supersample == "auto"
    group = max(1, _GROUP_SUBPIXELS // (size * (1 if auto else int(supersample))) ** 2)
    parts = [slice(start, start + group) for start in range(0, len(scene), group)]
    if auto:
        return _render_auto(scene, spec, size, psf, source_only, parts)
    return _stack([_render_group(scene.take(sl), spec, size, int(supersample), psf, source_only)
                   for sl in parts], dtype)  # fmt: skip


def _stack(parts: list[Rendered], dtype: np.dtype | type) -> Rendered:
    """The renders of consecutive groups of objects as one (of ``dtype``)."""
    if len(parts) == 1:
        return parts[0]
    return Rendered(*(np.concatenate([getattr(p, f.name) for p in parts], dtype=dtype)
                      for f in fields(Rendered)))  # fmt: skip


def _main_light(scene: Scene, x: np.ndarray, y: np.ndarray, area: float) -> np.ndarray:
    """The main galaxy with its arms at ``x, y`` (N, h, w) about the object centre."""
    m = scene.main
    return _component(m, x, y, area) * spiral_modulation(
        x - m.dx_arcsec[_E], y - m.dy_arcsec[_E], scene.arm_amplitude[_E],
        scene.arm_pitch_rad[_E], scene.arm_phase_rad[_E],
    )  # fmt: skip


def _lensed_light(
    scene: Scene, x: np.ndarray, y: np.ndarray, area: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """The lensed source and the second source (None without one) at ``x, y``."""
    e, second = _E, scene.second
    if second is None:
        bx, by = ray_trace(x, y, scene.theta_e_arcsec[e], scene.mass_q[e], scene.mass_phi[e],
                           scene.gamma1[e], scene.gamma2[e])  # fmt: skip
        return _component(scene.source, bx, by, area), None
    bx, by, bx2, by2 = double_source_plane_trace(
        x, y, scene.theta_e_arcsec[e], scene.mass_q[e], scene.mass_phi[e],
        scene.gamma1[e], scene.gamma2[e], second.theta_e_arcsec[e], second.q[e],
        second.phi[e], scene.source.dx_arcsec[e], scene.source.dy_arcsec[e],
        second.beta12[e],
    )  # fmt: skip
    return _component(scene.source, bx, by, area), _component(second.source, bx2, by2, area)


#: each light component: its unit-flux light at points (scene, x, y, area), band fluxes
_LIGHTS: dict[str, tuple[Callable[..., np.ndarray], Callable[[Scene], np.ndarray]]] = {
    "main": (_main_light, lambda s: s.main.flux),
    "companion": (lambda s, x, y, a: _component(s.companion, x, y, a), lambda s: s.companion.flux),
    "source": (lambda *a: _lensed_light(*a)[0], lambda s: s.source.flux),
    "source2": (lambda *a: cast(np.ndarray, _lensed_light(*a)[1]), lambda s: s.second.source.flux),
}


def _render_group(
    scene: Scene, spec: SurveySpec, size: int, supersample: int, psf: str, source_only: bool
) -> Rendered:
    """:func:`render` for all of ``scene`` at once (its arrays' precision)."""
    shapes = _shapes(scene, spec.pixel_scale_arcsec, size, supersample, source_only)
    return _observe(scene, spec, size, psf, source_only, shapes)


def _render_auto(
    scene: Scene, spec: SurveySpec, size: int, psf: str, source_only: bool, parts: list[slice]
) -> Rendered:
    """:func:`render` with ``supersample="auto"``: pixel-centre light one group of objects
    (``parts``) at a time, refined (:func:`_refine`) for all at once, observed by group."""
    pix = spec.pixel_scale_arcsec
    base = [_shapes(scene.take(sl), pix, size, 1, source_only) for sl in parts]
    fwhm_px = scene.psf_fwhm_arcsec.min(axis=1) / pix
    shapes: dict[str, np.ndarray | None] = {}
    for name in base[0]:
        shapes[name] = None
        if base[0][name] is not None:
            light, flux = _LIGHTS[name]
            active = (flux(scene) > 0).any(axis=1)
            image = np.concatenate([b[name] for b in base])
            shapes[name] = _refine(image, light, scene, active, pix, fwhm_px)
    return _stack([
        _observe(scene.take(sl), spec, size, psf, source_only,
                 {k: None if v is None else v[sl] for k, v in shapes.items()})
        for sl in parts
    ], scene.center_x_arcsec.dtype)  # fmt: skip


def _shapes(
    scene: Scene, pix: float, size: int, ss: int, source_only: bool
) -> dict[str, np.ndarray | None]:
    """Unit-flux light of each component integrated over pixels with ``ss x ss``
    sub-pixels: ``(N, size, size)`` per name of :data:`_LIGHTS` (None: no second source)."""
    gx, gy = _pixel_grid(size, pix, ss, scene.center_x_arcsec.dtype)
    x = gx[None] - scene.center_x_arcsec[_E]
    y = gy[None] - scene.center_y_arcsec[_E]
    sub_area = (pix / ss) ** 2
    shapes: dict[str, np.ndarray | None] = {}
    if not source_only:
        shapes["main"] = _bin(_main_light(scene, x, y, sub_area), ss)
        shapes["companion"] = _bin(_component(scene.companion, x, y, sub_area), ss)
    source, source2 = _lensed_light(scene, x, y, sub_area)
    shapes["source"] = _bin(source, ss)
    shapes["source2"] = None if source2 is None else _bin(source2, ss)
    return shapes


def _observe(
    scene: Scene, spec: SurveySpec, size: int, psf: str, source_only: bool,
    shapes: dict[str, np.ndarray | None],
) -> Rendered:  # fmt: skip
    """Stamps from the pixel-integrated unit-flux ``shapes``: band fluxes, PSF, point sources."""
    pix = spec.pixel_scale_arcsec
    n_obj, n_band = len(scene), len(spec.bands)
    e, b = _E, (slice(None), slice(None), None, None)
    source, source2, second = shapes["source"], shapes["source2"], scene.second
    assert source is not None
    if source_only:
        lens_light = np.zeros((n_obj, n_band, size, size), dtype=source.dtype)
    else:
        main, companion = shapes["main"], shapes["companion"]
        assert main is not None and companion is not None
        lens_light = (
            scene.main.flux[b] * main[:, None] + scene.companion.flux[b] * companion[:, None]
        )
    source_flux = scene.source.flux * source.sum(axis=(-2, -1))[:, None]
    if second is not None:
        assert source2 is not None
        source_flux = source_flux + second.source.flux * source2.sum(axis=(-2, -1))[:, None]

    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    fxr = np.fft.rfftfreq(size)[None, :]
    fwhm_px = scene.psf_fwhm_arcsec / pix
    if psf == "gaussian":
        otf_r = gaussian_otf(fwhm_px[b], fy, fxr)
    elif psf == "moffat":
        otf_r = np.fft.rfft2(moffat_kernel(fwhm_px, size))
    else:
        raise ValueError(f"unknown PSF shape {psf!r} (gaussian, moffat)")

    if source_only:
        lens_conv = lens_light
    else:
        lens_conv = np.fft.irfft2(np.fft.rfft2(lens_light) * otf_r, s=(size, size))
        # Point sources at the object centre: a phase ramp puts them at sub-pixel offsets
        # (a complex transform, for the objects that have one).
        pts = np.flatnonzero((scene.point_flux > 0).any(axis=1))
        if pts.size:
            otf = (
                gaussian_otf(fwhm_px[pts][b], fy, fx)
                if psf == "gaussian"
                else np.fft.fft2(moffat_kernel(fwhm_px[pts], size))
            )
            c0 = size // 2
            ox = scene.center_x_arcsec[pts] / pix
            oy = scene.center_y_arcsec[pts] / pix
            ramp = np.exp(-2j * np.pi * (fx * (c0 + ox)[e] + fy * (c0 + oy)[e]))
            point = scene.point_flux[pts][b] * ramp[:, None]
            lens_conv[pts] += np.fft.ifft2(point * otf).real
    # The source's shape is the same in every band: one real FFT per object, then
    # each band's PSF and flux (conv(f S, P) = f conv(S, P)).
    source_conv = scene.source.flux[b] * np.fft.irfft2(
        np.fft.rfft2(source)[:, None] * otf_r, s=(size, size)
    )
    if second is not None:
        source_conv = source_conv + second.source.flux[b] * np.fft.irfft2(
            np.fft.rfft2(source2)[:, None] * otf_r, s=(size, size)
        )
    assert lens_conv.shape == (n_obj, n_band, size, size)
    return Rendered(lens_conv, source_conv, source_flux)


def _refine(
    image: np.ndarray, light: Callable[..., np.ndarray], scene: Scene, active: np.ndarray,
    pix: float, fwhm_px: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Adaptive supersampling of the pixel-centre image ``(N, H, W)`` of one light component.

    Pixels whose sampling error (estimated by :func:`_curvature`) exceeds the
    tolerance (:func:`_tolerance`) are split into 2 x 2 cells, and each cell again
    while the split changed its light by more than the tolerance (halved at each
    level) and the changes within its pixel add up to more than the pixel's
    tolerance. Cells left as they are get their Richardson-extrapolated light. An
    adaptive quadrature: it follows cusps, compact images and arcs near caustics down
    to ``pix / 2**_AUTO_LEVELS`` and leaves smooth or empty pixels alone. Only the
    objects with ``active`` set are refined; returns a new image.
    """
    size, dtype = image.shape[-1], image.dtype
    levels = _AUTO_LEVELS if dtype == np.float64 else _AUTO_LEVELS_FLOAT32
    tol, peak = _tolerance(image, fwhm_px)
    pid = np.flatnonzero(active[:, None, None] & (_curvature(image) > tol))  # sorted by object
    tol = tol.ravel()
    # what a pixel sees of its own light through the PSF (its peak): a lower bound of the
    # light seen there, to raise the tolerance where refining finds light the centres missed
    own = np.minimum(1.0, 4.0 * np.log(2.0) / (np.pi * fwhm_px**2))
    obj, row, col = np.unravel_index(pid, image.shape)
    centres = ((np.arange(size) - size // 2) * pix).astype(dtype)
    x = centres[col] - scene.center_x_arcsec[obj]
    y = centres[row] - scene.center_y_arcsec[obj]
    value, out = image.ravel()[pid], image.copy().ravel()
    for level in range(1, levels + 1):
        if pid.size == 0:
            break
        side = pix / 2**level
        offset = np.array([-0.5, 0.5], dtype=dtype) * dtype.type(side)
        xs = np.broadcast_to(x[:, None, None] + offset[None, None, :], (x.size, 2, 2))
        ys = np.broadcast_to(y[:, None, None] + offset[None, :, None], (y.size, 2, 2))
        cells = _cell_light(light, scene, obj, xs, ys, side**2)
        # on both diagonals the parent's centre lies midway between two cells: the
        # change of its light is the sum of the two second differences, its error
        # estimate their sizes (a peak between the samples can make them cancel)
        diag = cells[:, 0, 0] + cells[:, 1, 1] - value / 2
        anti = cells[:, 0, 1] + cells[:, 1, 0] - value / 2
        change = np.abs(diag) + np.abs(anti)
        first = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])  # pid is sorted
        count = np.diff(np.r_[first, pid.size])
        p, o = pid[first], obj[first]
        seen = own[o] * np.abs(out[p] + np.add.reduceat(diag + anti, first))
        np.maximum.at(peak, o, seen)
        tol[p] = np.maximum(tol[p], _AUTO_REL * np.maximum(seen, _AUTO_FLOOR * peak[o]))
        t = tol[pid]
        in_pixel = np.repeat(np.add.reduceat(change, first), count)
        done = (change <= t / 2 ** (level - 1)) | (in_pixel <= t)
        # cut short (a safeguard against blow-ups, the last level): kept, not extrapolated
        short = np.repeat(count >= _AUTO_MAX_CELLS, count) | (level == levels)
        split = ~done & ~short
        gain = np.where(done, 4.0 / 3.0, 1.0).astype(dtype) * (diag + anti)
        out[p] += np.add.reduceat(gain, first)
        k = np.flatnonzero(split)
        pid, obj = np.repeat(pid[k], 4), np.repeat(obj[k], 4)
        x, y, value = xs[k].ravel(), ys[k].ravel(), cells[k].ravel()
    return out.reshape(image.shape)


def _cell_light(
    light: Callable[..., np.ndarray], scene: Scene, obj: np.ndarray, x: np.ndarray,
    y: np.ndarray, area: float,
) -> np.ndarray:  # fmt: skip
    """``light`` at the points ``x, y`` (M, 2, 2) of the cells of objects ``obj`` (sorted).

    The cells of each object are laid out in rows of ``_ROW`` (the last one padded
    with the object centre), so that parameters are gathered (and profile constants
    computed) once per row rather than once per cell.
    """
    m, n = obj.size, len(scene)
    counts = np.bincount(obj, minlength=n)
    rows = -(-counts // _ROW)
    # slot of each cell: its object's first slot plus its rank among the object's cells
    slot = np.arange(m) + ((np.cumsum(rows) - rows) * _ROW - (np.cumsum(counts) - counts))[obj]
    px = np.zeros((int(rows.sum()) * _ROW, 4), x.dtype)
    py = np.zeros_like(px)
    px[slot], py[slot] = x.reshape(m, 4), y.reshape(m, 4)
    px, py = px.reshape(-1, _ROW, 4), py.reshape(-1, _ROW, 4)
    owner = np.repeat(np.arange(n), rows)
    step = max(1, _GROUP_SUBPIXELS // (4 * _ROW))  # rows evaluated together, in cache
    values = np.concatenate([
        light(scene.take(owner[i : i + step]), px[i : i + step], py[i : i + step], area)
        for i in range(0, owner.size, step)
    ])  # fmt: skip
    return values.reshape(-1, 4)[slot].reshape(m, 2, 2)


def _tolerance(image: np.ndarray, fwhm_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed error per pixel: ``_AUTO_REL`` of the light seen through the narrowest PSF
    (a Gaussian of FWHM ``fwhm_px`` per object), and no less than ``_AUTO_FLOOR`` of
    that at its peak (errors in faint parts barely count in the whole stamp); and that
    peak per object."""
    size = image.shape[-1]
    otf = gaussian_otf(fwhm_px[_E], np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    seen = np.abs(
        scipy.fft.irfft2(scipy.fft.rfft2(image) * otf.astype(image.dtype), s=(size, size))
    )
    peak = seen.max(axis=(-2, -1)).astype(np.float64)
    return _AUTO_REL * np.maximum(seen, _AUTO_FLOOR * peak[_E]), peak


def _curvature(image: np.ndarray) -> np.ndarray:
    """Error estimate of pixel-centre sampling: ``_AUTO_TRIGGER`` x the largest second
    difference (along rows plus along columns) in each pixel's 3 x 3 neighbourhood."""
    p = np.pad(image, ((0, 0), (1, 1), (1, 1)))
    rows = np.abs(p[:, 2:, 1:-1] + p[:, :-2, 1:-1] - 2 * image)
    cols = np.abs(p[:, 1:-1, 2:] + p[:, 1:-1, :-2] - 2 * image)
    d2, (h, w) = np.pad(rows + cols, ((0, 0), (1, 1), (1, 1))), image.shape[-2:]
    # The 3 x 3 maximum as a maximum over rows, then over columns (separable).
    band = np.maximum(np.maximum(d2[:, :h], d2[:, 1 : h + 1]), d2[:, 2:])
    near = np.maximum(np.maximum(band[:, :, :w], band[:, :, 1 : w + 1]), band[:, :, 2:])
    return _AUTO_TRIGGER * near


def source_snr(rendered: Rendered, spec: SurveySpec) -> np.ndarray:
    """Matched-filter S/N of the lensed source against sky noise, all bands, ``(N,)``."""
    sky = np.array([bs.sky_sigma_counts for bs in spec.bands])[None, :, None, None]
    return np.sqrt(((rendered.source_light / sky) ** 2).sum(axis=(1, 2, 3)))
