"""The OU-T-SNE embedding and its grid as a PNG (matplotlib, Agg, no pyplot state)."""

from pathlib import Path

import numpy as np

from lensfind.training.ou_tsne.model import OuTsneClassifier


def plot_embedding(
    clf: OuTsneClassifier,
    path: Path,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Reference embedding coloured by label (left), grid values (right); test points if given.

    Parameters
    ----------
    clf : OuTsneClassifier
        A fitted classifier.
    path : Path
        PNG to write.
    test : (ndarray (N, 2), ndarray (N,)), optional
        Embedded test positions and their labels, drawn as a third panel.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.figure import Figure

    ncols = 2 if test is None else 3
    fig = Figure(figsize=(5.0 * ncols, 4.4), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    g = clf.grid
    extent = (g.x_edges[0], g.x_edges[-1], g.y_edges[0], g.y_edges[-1])

    def scatter(ax, pos: np.ndarray, y: np.ndarray, title: str) -> None:
        y = np.asarray(y, dtype=bool)
        ax.scatter(*pos[~y].T, s=3, c="tab:red", alpha=0.6, lw=0, label="non-lens")
        ax.scatter(*pos[y].T, s=3, c="tab:blue", alpha=0.6, lw=0, label="lens")
        ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="t-SNE 1", ylabel="t-SNE 2", title=title)
        ax.legend(markerscale=4, fontsize=8, loc="upper right")

    scatter(axes[0], clf.reference_embedding, clf.reference_labels,
            f"reference (grid) set, N = {len(clf.reference_labels)}")  # fmt: skip
    im = axes[1].imshow(g.filled.T, origin="lower", extent=extent, aspect="auto",
                        cmap="coolwarm_r", vmin=0, vmax=1, interpolation="nearest")  # fmt: skip
    axes[1].set(xlabel="t-SNE 1", ylabel="t-SNE 2",
                title=f"{g.side}x{g.side} grid: lens fraction (8-neighbour fill)")  # fmt: skip
    fig.colorbar(im, ax=axes[1], label="classification value")
    if test is not None:
        pos, y = test
        scatter(axes[2], pos, y, f"test set (openTSNE transform), N = {len(y)}")
    fig.savefig(path, dpi=110)
    return path
