"""The OU-T-SNE grid classifier of Wilde et al. 2022 (sec. 3.3): pure functions.

Wilde+22 embed the 7 lens scores of OU-J, OU-Y, OU-H, OU-JYH, OU-VIS, OU-66 and
OU-200 in 2-D with t-SNE, divide the embedding into a 100 x 100 grid, and give
each square "a classification value between zero and one based upon the
fraction of lenses within the square". An object is classified by the value of
the square its embedding falls in. A square with no reference object takes "the
mean of the eight surrounding grid values if they are defined" (the 8-neighbour
fill rule, :func:`fill_empty`).

Choices where the paper is silent (recorded in :class:`TsneGrid` and the card):

* the grid spans the bounding box of the reference embedding, ``n`` equal
  intervals per axis (the squares are not square unless the box is);
* the fill is one pass over the empty squares using only the squares that hold
  reference objects (filled values do not feed other fills);
* a point outside the box is classified by the nearest edge square;
* a square still undefined after the fill (no defined neighbour) takes the value
  of the nearest defined square (by centre distance in grid units) -- a rule of
  ours; :func:`classify` reports how many points needed it.

numpy only; the embedding itself is :mod:`lensfind.training.ou_tsne.model`.
"""

from dataclasses import dataclass

import numpy as np

#: Grid side of Wilde+22 sec. 3.3.
GRID_SIDE = 100
#: How a point got its value (:func:`classify`).
RULES = ("square", "filled", "nearest")


@dataclass(frozen=True)
class TsneGrid:
    """A fitted grid over a 2-D embedding.

    Attributes
    ----------
    x_edges, y_edges : ndarray (n + 1,)
        Square edges along the two embedding axes (embedding units).
    fraction : ndarray (n, n)
        Lens fraction of the reference objects in each square, ``[ix, iy]``;
        NaN where a square holds none.
    counts : ndarray (n, n) of int
        Reference objects per square.
    filled : ndarray (n, n)
        ``fraction`` with empty squares filled by :func:`fill_empty` (NaN where
        no neighbour was defined).
    """

    x_edges: np.ndarray
    y_edges: np.ndarray
    fraction: np.ndarray
    counts: np.ndarray
    filled: np.ndarray

    @property
    def side(self) -> int:
        return int(self.fraction.shape[0])


def fill_empty(values: np.ndarray) -> np.ndarray:
    """Fill NaN squares with the mean of their defined 8 neighbours (Wilde+22 sec. 3.3).

    Parameters
    ----------
    values : ndarray (n, m)
        Square values, NaN where undefined.

    Returns
    -------
    ndarray (n, m)
        A copy in which each NaN square with at least one defined neighbour (of
        the up to 8 around it; fewer at the edges) holds their mean. Only squares
        defined in ``values`` count as neighbours (one pass, no propagation); a
        NaN square without defined neighbours stays NaN.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"a grid is 2-D, got shape {values.shape}")
    defined = np.isfinite(values)
    padded_v = np.pad(np.where(defined, values, 0.0), 1)
    padded_d = np.pad(defined.astype(float), 1)
    total = np.zeros_like(values)
    count = np.zeros_like(values)
    n, m = values.shape
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx == 0 and dy == 0:
                continue
            total += padded_v[1 + dx : 1 + dx + n, 1 + dy : 1 + dy + m]
            count += padded_d[1 + dx : 1 + dx + n, 1 + dy : 1 + dy + m]
    out = values.copy()
    fill = ~defined & (count > 0)
    out[fill] = total[fill] / count[fill]
    return out


def fit_grid(embedding: np.ndarray, labels: np.ndarray, n: int = GRID_SIDE) -> TsneGrid:
    """Lens fraction per square of an ``n x n`` grid over the reference embedding.

    Parameters
    ----------
    embedding : ndarray (N, 2)
        Reference positions in the embedding (embedding units).
    labels : ndarray (N,)
        1 (or True) for lenses, 0 otherwise.
    n : int
        Squares per axis (Wilde+22: 100).

    Returns
    -------
    TsneGrid
        Edges over the bounding box of ``embedding``, the fractions, counts and the
        8-neighbour-filled values.
    """
    emb = np.asarray(embedding, dtype=float)
    y = np.asarray(labels).astype(bool).ravel()
    if emb.ndim != 2 or emb.shape[1] != 2 or len(emb) != len(y) or len(y) == 0:
        raise ValueError(f"embedding {emb.shape} and labels {y.shape} do not match (N, 2), (N,)")
    if n < 1:
        raise ValueError(f"grid side must be >= 1, got {n}")
    if not np.isfinite(emb).all():
        raise ValueError("embedding contains NaN or inf")
    edges = []
    for axis in (0, 1):
        lo, hi = float(emb[:, axis].min()), float(emb[:, axis].max())
        if hi <= lo:  # all points on a line: a unit-wide box around them
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(np.linspace(lo, hi, n + 1))
    counts, _, _ = np.histogram2d(emb[:, 0], emb[:, 1], bins=edges)
    lenses, _, _ = np.histogram2d(emb[y, 0], emb[y, 1], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(counts > 0, lenses / counts, np.nan)
    return TsneGrid(edges[0], edges[1], fraction, counts.astype(np.int64), fill_empty(fraction))


def cell_index(grid: TsneGrid, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ix, iy)`` of the square of each point; points outside go to the nearest edge square.

    A point on an inner edge belongs to the square above it, the upper box edge to
    the last square (as :func:`numpy.histogram2d` counts them).
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got {p.shape}")
    n = grid.side
    ix = np.clip(np.searchsorted(grid.x_edges, p[:, 0], side="right") - 1, 0, n - 1)
    iy = np.clip(np.searchsorted(grid.y_edges, p[:, 1], side="right") - 1, 0, n - 1)
    return ix, iy


def _nearest_defined(values: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    di, dj = np.nonzero(np.isfinite(values))
    if di.size == 0:
        raise ValueError("the grid has no defined square")
    d2 = (ix[:, None] - di[None, :]) ** 2 + (iy[:, None] - dj[None, :]) ** 2
    k = np.argmin(d2, axis=1)
    return values[di[k], dj[k]]


def classify(grid: TsneGrid, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classification values of embedded points (Wilde+22 sec. 3.3).

    Parameters
    ----------
    grid : TsneGrid
        From :func:`fit_grid`.
    points : ndarray (N, 2)
        Positions in the same embedding (e.g. the out-of-sample transform).

    Returns
    -------
    scores : ndarray (N,)
        Lens fraction of the point's square; for an empty square, its
        8-neighbour fill; failing that, the nearest defined square's fraction.
    rule : ndarray (N,) of int
        Index into :data:`RULES` of the rule that gave each score.
    """
    ix, iy = cell_index(grid, points)
    scores = grid.filled[ix, iy].copy()
    rule = np.where(grid.counts[ix, iy] > 0, 0, 1)
    missing = ~np.isfinite(scores)
    if missing.any():
        scores[missing] = _nearest_defined(grid.fraction, ix[missing], iy[missing])
        rule[missing] = 2
    return scores, rule
