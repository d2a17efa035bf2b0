"""Occlusion maps (Zeiler & Fergus 2014; Wilde et al. 2022, section 5.1) for any scorer.

A square patch of every band is set to ``fill`` at each position of a grid, the
occluded copies are scored in batches, and each pixel gets the mean drop in lens
probability over the patches that cover it. Plain numpy: works for ONNX
:class:`~lensfind.runtime.scorer.Scorer` objects and plain callables without torch.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.saliency.inputs import as_batch, check_batch_size
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE

#: Wilde et al. (2022), section 5.1: a 4x4 pixel mask on a grid of 4 pixel steps
#: (their OU-200 network; 1x1 on a 1 pixel grid for OU-66).
PATCH_PX = 4
STRIDE_PX = 4

ScoreFn = Callable[[np.ndarray], np.ndarray]


def patch_starts(size_px: int, patch_px: int, stride_px: int) -> list[int]:
    """Patch origins along one axis: every ``stride_px`` and a last one flush with the edge.

    The extra flush patch (when the grid does not end on the edge) covers the last
    rows/columns; with ``stride_px <= patch_px`` every pixel is covered at least once.
    """
    if patch_px < 1 or stride_px < 1:
        raise ConfigError(f"patch_px and stride_px must be >= 1, got {patch_px}, {stride_px}")
    if patch_px > size_px:
        raise ConfigError(f"patch_px: {patch_px} px patch larger than the {size_px} px image")
    starts = list(range(0, size_px - patch_px + 1, stride_px))
    if starts[-1] + patch_px < size_px:
        starts.append(size_px - patch_px)
    return starts


@contextmanager
def _score_fn(model_or_callable: Any) -> Iterator[ScoreFn]:
    """A numpy ``(N, B, H, W) -> (N,)`` probability function for a model or callable."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model_or_callable, torch.nn.Module):
        from lensfind.probes.saliency import model as sm

        model = model_or_callable
        with sm.frozen(model):
            device = sm.device_of(model)

            def score(x: np.ndarray) -> np.ndarray:
                with torch.no_grad():  # sigmoid in float64: drops near p = 1 keep their digits
                    z = sm.logits(model, sm.to_tensor(x, device)).to(torch.float64)
                    return np.asarray(torch.sigmoid(z).cpu().numpy())

            yield score
        return
    if not callable(model_or_callable):
        raise ConfigError(
            f"model: expected a torch.nn.Module or a callable, got "
            f"{type(model_or_callable).__name__}"
        )
    yield model_or_callable


def _scores(score: ScoreFn, x: np.ndarray) -> np.ndarray:
    p = np.asarray(score(x), dtype=np.float64).reshape(-1)
    if p.shape != (len(x),):
        raise ConfigError(f"model: returned {p.size} scores for a batch of {len(x)}")
    return p


def occlusion_map(
    model_or_callable: Any,
    images: np.ndarray,
    patch_px: int = PATCH_PX,
    stride_px: int = STRIDE_PX,
    fill: float = 0.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Mean drop in lens probability when a patch covering each pixel is occluded.

    Parameters
    ----------
    model_or_callable : torch.nn.Module or callable
        A one-logit torch model (scored as ``sigmoid(logit)``), or any callable
        mapping a float32 batch ``(N, bands, H, W)`` to lens probabilities ``(N,)``,
        such as an ONNX :class:`~lensfind.runtime.scorer.Scorer`.
    images : ndarray, shape (N, bands, H, W)
        Inputs in the units the model expects: normalised for a torch model, raw
        image counts for a ``Scorer`` (which normalises internally).
    patch_px : int
        Side of the square occluding patch, pixels (paper: 4).
    stride_px : int
        Step of the patch grid, pixels (paper: 4). A last patch flush with the
        right/bottom edge is added where the grid stops short of it. With
        ``stride_px > patch_px`` the pixels between patches are never occluded and
        are NaN in the map.
    fill : float
        Value written into every band under the patch (input units).
    batch_size : int
        Occluded copies scored per call.

    Returns
    -------
    ndarray, shape (N, H, W), float32
        ``p(image) - p(occluded image)`` averaged over the patches covering each
        pixel: positive where hiding the pixel lowers the lens probability (the
        blue, lens-like features of Wilde et al. 2022), negative where it raises it.
    """
    x = as_batch(images)
    batch_size = check_batch_size(batch_size)
    n, _, h, w = x.shape
    ys, xs = patch_starts(h, patch_px, stride_px), patch_starts(w, patch_px, stride_px)
    origins = [(y0, x0) for y0 in ys for x0 in xs]
    count = np.zeros((h, w))
    for y0, x0 in origins:
        count[y0 : y0 + patch_px, x0 : x0 + patch_px] += 1.0
    total = np.zeros((n, h, w))
    jobs = [(i, k) for i in range(n) for k in range(len(origins))]
    with _score_fn(model_or_callable) as score:
        base = np.concatenate(
            [np.empty(0)] + [_scores(score, x[s : s + batch_size]) for s in range(0, n, batch_size)]
        )
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            batch = x[[i for i, _ in chunk]]
            for j, (_, k) in enumerate(chunk):
                y0, x0 = origins[k]
                batch[j, :, y0 : y0 + patch_px, x0 : x0 + patch_px] = fill
            drop = base[[i for i, _ in chunk]] - _scores(score, batch)
            for j, (i, k) in enumerate(chunk):
                y0, x0 = origins[k]
                total[i, y0 : y0 + patch_px, x0 : x0 + patch_px] += drop[j]
    mean = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
    return mean.astype(np.float32)
