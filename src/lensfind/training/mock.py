"""Mock lenses as in van Lohuizen (2021, sec. 4.2): a real galaxy plus a simulated source.

:func:`mock_lenses` is vL eq. 4.2, ``m = l + s * max(l) * alpha / max(s)``: the
lensed-source stamp ``s`` is rescaled so that its peak is ``alpha`` times the
peak of the deflector image ``l`` and added to it; ``alpha`` is uniform in
[0.02, 0.3] (:func:`draw_alpha`). The maxima are taken per object over all bands
and pixels (vL work in one band, where this is the same), so a multi-band
source keeps its colours. :func:`sqrt_stretch` is vL's optional contrast stretch
(min-max scaling, eq. 4.1, then a square root); lensfind's training does not use
it, because the network's input normalisation (arcsinh, recorded in the model
card and applied by every scorer) already lifts faint features and must be the
same at training and scoring time.
"""

import numpy as np

from lensfind.simulation.population import PopulationConfig
from lensfind.simulation.simulate import simulate
from lensfind.surveys.spec import SurveySpec

#: vL sec. 4.2: the source peak is 2% to 30% of the lens peak.
ALPHA_RANGE = (0.02, 0.3)


def draw_alpha(
    rng: np.random.Generator, n: int, low: float = ALPHA_RANGE[0], high: float = ALPHA_RANGE[1]
) -> np.ndarray:
    """``n`` source-to-lens peak ratios, uniform in ``[low, high)``."""
    return rng.uniform(low, high, n)


def mock_lenses(
    lenses: np.ndarray, sources: np.ndarray, alpha: np.ndarray, sqrt: bool = False
) -> np.ndarray:
    """vL eq. 4.2: ``m = l + s * max(l) * alpha / max(s)`` per object.

    Parameters
    ----------
    lenses : ndarray (N, bands, H, W)
        Deflector images ``l`` (image counts, noise included).
    sources : ndarray (N, bands, H, W)
        Lensed-source stamps ``s`` (counts, noiseless), same shape.
    alpha : ndarray (N,) or float
        Peak ratio of the added source to the lens.
    sqrt : bool
        Apply :func:`sqrt_stretch` to the result (vL's display stretch).

    Returns
    -------
    ndarray (N, bands, H, W), float32
    """
    lenses = np.asarray(lenses, dtype=np.float64)
    sources = np.asarray(sources, dtype=np.float64)
    if lenses.shape != sources.shape or lenses.ndim != 4:
        raise ValueError(f"lenses {lenses.shape} and sources {sources.shape}: need equal (N,B,H,W)")
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (lenses.shape[0],))
    l_max = lenses.max(axis=(1, 2, 3))
    s_max = sources.max(axis=(1, 2, 3))
    if (s_max <= 0).any():
        raise ValueError("a source stamp without positive flux cannot be rescaled")
    scale = l_max * alpha / s_max
    m = lenses + sources * scale[:, None, None, None]
    return (sqrt_stretch(m) if sqrt else m).astype(np.float32)


def sqrt_stretch(images: np.ndarray) -> np.ndarray:
    """Min-max scale each cutout to [0, 1] (vL eq. 4.1), then take the square root."""
    x = np.asarray(images, dtype=np.float64)
    axes = tuple(range(1, x.ndim))
    lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    return np.sqrt((x - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)


def source_stamps(spec: SurveySpec, n: int, seed: int) -> np.ndarray:
    """``n`` noiseless lensed-source stamps ``(n, bands, H, W)`` of the survey's lens population.

    Rendered by :func:`lensfind.simulation.simulate` with ``source_only=True`` (no
    deflector, no companions); the same ``(spec, n, seed)`` give the same stamps.
    """
    kinds = np.full(n, "lens")
    config = PopulationConfig(lens_fraction=1.0)
    return simulate(spec, n, seed, config, kinds=kinds, noise=False, source_only=True).images
