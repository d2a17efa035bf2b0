"""Sky and photon noise at a survey's depth, for simulated stamps and tiles."""

import numpy as np

from lensfind.surveys.spec import SurveySpec


def add_noise(
    images: np.ndarray,
    spec: SurveySpec,
    rng: np.random.Generator,
    band_axis: int = 1,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    """Add sky noise at the survey depth and Poisson noise of the object light.

    Parameters
    ----------
    images : ndarray
        Noiseless images in counts; ``band_axis`` indexes ``spec.bands``.
    spec : SurveySpec
        Gives the sky sigma (from the 10-sigma depth) and gain of each band.
    rng : numpy.random.Generator
        Source of randomness.
    band_axis : int
        Axis of ``images`` that indexes the bands.
    dtype : numpy float type
        Precision of the noise draws and arithmetic (float32: about twice as fast,
        for images as large as a region's tiles; other draws than float64's).

    Returns
    -------
    ndarray
        float32 noisy images (a new array).
    """
    return apply_noise(images, spec, rng.standard_normal(images.shape, dtype=dtype), band_axis)


def apply_noise(
    images: np.ndarray, spec: SurveySpec, draws: np.ndarray, band_axis: int = 1
) -> np.ndarray:
    """:func:`add_noise` with its standard-normal ``draws`` (shape of ``images``) given.

    The draws do not depend on the image, so a caller may make them early, in the
    order of its other random draws, and render the image later (or elsewhere).
    The arithmetic is in the draws' dtype; returns float32 noisy images (a new array).
    """
    dtype = draws.dtype
    shape = [1] * images.ndim
    shape[band_axis] = len(spec.bands)
    sky = np.array([bs.sky_sigma_counts for bs in spec.bands]).reshape(shape)
    gain = np.array([bs.gain_e_per_count for bs in spec.bands]).reshape(shape)
    images = images.astype(dtype, copy=False)
    sigma = np.sqrt((sky**2).astype(dtype) + np.maximum(images, 0.0) / gain.astype(dtype))
    noisy = images + sigma * draws
    return noisy.astype(np.float32, copy=False)
