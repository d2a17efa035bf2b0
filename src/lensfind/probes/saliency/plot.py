"""PNG figures of saliency maps: each input (asinh colour composite) beside its maps.

matplotlib is imported lazily through its object-oriented API with the Agg canvas,
so saving a figure neither needs a display nor changes the pyplot backend.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError, MissingExtraError
from lensfind.probes.saliency.inputs import as_batch

#: Softening of the asinh stretch: the brightest 0.5 per cent sit at asinh(Q)/asinh(Q).
ASINH_Q = 10.0


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is in the test extra
        raise MissingExtraError("test", "matplotlib") from exc
    return Figure, FigureCanvasAgg


def asinh_display(image: np.ndarray, rgb_bands: Sequence[int] | None = None) -> np.ndarray:
    """An image ``(bands, H, W)`` as display values in [0, 1]: ``(H, W, 3)`` or ``(H, W)``.

    Three bands (default: the first three, reversed, so ``g, r, i`` become blue,
    green, red for bands ordered blue to red) make a colour composite; fewer give
    the first band alone. The stretch is ``asinh(Q t) / asinh(Q)`` of ``t`` scaled
    between the 1st and 99.5th percentiles of the shown bands.
    """
    bands = image.shape[0]
    if rgb_bands is None:
        rgb_bands = (2, 1, 0) if bands >= 3 else (0,)
    if any(not 0 <= b < bands for b in rgb_bands) or len(rgb_bands) not in (1, 3):
        raise ConfigError(f"rgb_bands: {tuple(rgb_bands)} invalid for {bands} band(s)")
    shown = image[list(rgb_bands)].astype(np.float64)
    lo, hi = np.percentile(shown, [1.0, 99.5])
    t = np.clip((shown - lo) / (hi - lo if hi > lo else 1.0), 0.0, None)
    v = np.clip(np.arcsinh(ASINH_Q * t) / np.arcsinh(ASINH_Q), 0.0, 1.0)
    return np.moveaxis(v, 0, -1) if len(rgb_bands) == 3 else v[0]


def _as_maps(maps: Any, n: int, hw: tuple[int, ...]) -> dict[str, np.ndarray]:
    named = dict(maps) if isinstance(maps, Mapping) else {"saliency": maps}
    out = {}
    for name, m in named.items():
        a = np.asarray(m, dtype=np.float64)
        if a.ndim == 4:  # band-resolved (guided backprop): signed sum over bands
            a = a.sum(axis=1)
        if a.shape != (n, *hw):
            raise ConfigError(f"maps[{name!r}]: expected ({n}, {hw[0]}, {hw[1]}), got {a.shape}")
        out[str(name)] = a
    return out


def save_saliency_png(
    images: np.ndarray,
    maps: "np.ndarray | Mapping[str, np.ndarray]",
    path: str | Path,
    titles: Sequence[str] | None = None,
    *,
    rgb_bands: Sequence[int] | None = None,
    bar_labels: Mapping[str, str] | None = None,
    dpi: int = 100,
) -> Path:
    """Save a PNG with one row per object: the input, then each saliency map.

    Parameters
    ----------
    images : ndarray, shape (N, bands, H, W)
        The inputs the maps explain.
    maps : ndarray or mapping of name to ndarray
        One map per object, ``(N, H, W)`` or band-resolved ``(N, bands, H, W)``
        (shown summed over bands); a mapping gives one column per entry, titled by
        its key. Maps are shown with a diverging colour map, each panel scaled to
        its own largest ``|value|`` with 0 white: blue positive (supports the lens
        class, e.g. occluding it lowers the lens probability), red negative, as in
        Wilde et al. (2022).
    path : str or Path
        Output PNG file.
    titles : sequence of str, optional
        One title per object, shown above its input (e.g. its ID and score).
    rgb_bands : sequence of int, optional
        Bands shown as red, green, blue (see :func:`asinh_display`).
    bar_labels : mapping of name to str, optional
        Colour-bar label per map column: its quantity and what its sign means.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    x = as_batch(images)
    n, _, h, w = x.shape
    columns = _as_maps(maps, n, (h, w))
    if titles is not None and len(titles) != n:
        raise ConfigError(f"titles: expected {n} titles, got {len(titles)}")
    if n == 0:
        raise ConfigError("images: nothing to plot (N = 0)")
    figure_cls, canvas_cls = _matplotlib()
    ncol = 1 + len(columns)
    fig = figure_cls(figsize=(2.4 * ncol, 2.4 * n), layout="constrained")
    canvas_cls(fig)
    axes = fig.subplots(n, ncol, squeeze=False)
    for i in range(n):
        shown = asinh_display(x[i], rgb_bands)
        axes[i][0].imshow(shown, origin="lower", cmap=None if shown.ndim == 3 else "gray")
        axes[i][0].set_title(titles[i] if titles is not None else "input", fontsize=8)
        for j, (name, m) in enumerate(columns.items(), start=1):
            finite = np.abs(m[i][np.isfinite(m[i])])
            scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            im = axes[i][j].imshow(m[i], origin="lower", cmap="RdBu", vmin=-scale, vmax=scale)
            axes[i][j].set_title(name, fontsize=8)
            bar = fig.colorbar(im, ax=axes[i][j], shrink=0.8)
            bar.ax.tick_params(labelsize=6)
            if bar_labels and name in bar_labels:
                bar.set_label(bar_labels[name], fontsize=6)
            bar.ax.yaxis.get_offset_text().set_fontsize(6)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    out = Path(path)
    fig.savefig(out, dpi=dpi, format="png")
    return out
