"""OU-T-SNE: the t-SNE embedding of member scores, its grid, and new data in it.

t-SNE (van der Maaten & Hinton 2008) optimises the positions of the points it
is given; it has no map from input space to the embedding, and scikit-learn's
``TSNE`` offers no ``transform`` for objects it was not fitted on. Wilde+22 do
not say how they placed their test data ("deriving their locations in the
embedded space"). lensfind uses openTSNE (Policar, Strazar & Zupan 2024), whose
:meth:`openTSNE.TSNEEmbedding.transform` embeds new points into a fixed
reference embedding: each new point's affinities to its nearest reference
points (perplexity 5 by default) are computed in score space, it starts at the
median position of its 25 nearest reference neighbours, and its position alone
is optimised against the reference points, which do not move (new points do
not interact with one another). This is the t-SNE objective itself, restricted
to the new point, rather than a separately trained regressor, so a reference
object's own scores land next to its reference position, and the result for an
object does not depend on which other objects are scored with it.

What is kept (:meth:`OuTsneClassifier.save`): the reference member scores
``(N, M)``, labels and (centred) 2-D embedding, the grid
(:mod:`lensfind.training.ou_tsne.grid`) and the t-SNE settings. openTSNE's affinity
index is rebuilt from the reference scores on load with exact nearest
neighbours, so a loaded classifier places new data exactly as the fitted one
did (the fitted one goes through the same rebuild). No pickle.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import MissingExtraError, ModelError
from lensfind.hashing import sha256_of
from lensfind.training.ou_tsne.grid import GRID_SIDE, TsneGrid, classify, fit_grid

DATA_NAME = "ou_tsne.npz"
CARD_NAME = "ou_tsne_card.json"
#: openTSNE ``transform`` settings (its defaults), recorded in the card.
TRANSFORM = {"perplexity": 5.0, "k": 25, "learning_rate": 0.1, "n_iter": 250,
             "initialization": "median"}  # fmt: skip


def _opentsne() -> Any:
    try:
        import openTSNE
    except ImportError:
        raise MissingExtraError("train", "openTSNE") from None
    return openTSNE


@dataclass
class OuTsneClassifier:
    """A fitted OU-T-SNE classifier: reference scores, embedding and grid.

    Parameters
    ----------
    reference_scores : ndarray (N, M)
        Lens probabilities of the ``M`` members on the reference ("grid") set.
    reference_labels : ndarray (N,) of bool
        Truth of the reference objects.
    reference_embedding : ndarray (N, 2)
        Their t-SNE positions, centred on the middle of their bounding box.
    grid : TsneGrid
        The square values over the embedding.
    members : tuple of str
        Member names, in score-column order.
    perplexity : float
        t-SNE perplexity of the reference embedding.
    seed : int
        Random state of the embedding.
    """

    reference_scores: np.ndarray
    reference_labels: np.ndarray
    reference_embedding: np.ndarray
    grid: TsneGrid
    members: tuple[str, ...]
    perplexity: float = 30.0
    seed: int = 0
    _tsne: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def fit(
        cls,
        scores: np.ndarray,
        labels: np.ndarray,
        members: tuple[str, ...],
        grid_side: int = GRID_SIDE,
        perplexity: float = 30.0,
        seed: int = 0,
    ) -> "OuTsneClassifier":
        """Embed ``scores`` (N, M) with t-SNE (openTSNE defaults) and fit the grid.

        ``perplexity`` must be below ``N / 3`` (openTSNE needs ``3 perplexity``
        neighbours); with fewer objects it is lowered to ``(N - 1) / 3``.
        """
        open_tsne = _opentsne()
        x = _check_scores(scores, len(members))
        y = np.asarray(labels).astype(bool).ravel()
        if len(y) != len(x):
            raise ValueError(f"{len(x)} score rows but {len(y)} labels")
        perplexity = float(min(perplexity, (len(x) - 1) / 3))
        emb = open_tsne.TSNE(perplexity=perplexity, neighbors="exact", random_state=seed,
                             n_jobs=1).fit(x)  # fmt: skip
        pos = np.asarray(emb, dtype=float)
        pos -= (pos.max(axis=0) + pos.min(axis=0)) / 2  # as transform() centres it
        return cls(x, y, pos, fit_grid(pos, y, grid_side), tuple(members), perplexity, seed)

    def _embedding(self) -> Any:
        if self._tsne is None:
            open_tsne = _opentsne()
            aff = open_tsne.affinity.PerplexityBasedNN(
                self.reference_scores, perplexity=self.perplexity, method="exact",
                random_state=self.seed, n_jobs=1,
            )  # fmt: skip
            self._tsne = open_tsne.TSNEEmbedding(
                self.reference_embedding.copy(), aff, random_state=self.seed, n_jobs=1
            )
        return self._tsne

    def embed(self, scores: np.ndarray) -> np.ndarray:
        """Positions ``(N, 2)`` of new objects' member scores in the reference embedding."""
        x = _check_scores(scores, len(self.members))
        if len(x) == 0:
            return np.empty((0, 2))
        return np.asarray(self._embedding().transform(x, **TRANSFORM), dtype=float)

    def predict(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OU-T-SNE scores of new objects.

        Returns
        -------
        score : ndarray (N,)
            Classification value in [0, 1] (:func:`~lensfind.training.ou_tsne.grid.classify`).
        rule : ndarray (N,) of int
            Index into :data:`~lensfind.training.ou_tsne.grid.RULES`.
        position : ndarray (N, 2)
            Embedded positions.
        """
        pos = self.embed(scores)
        score, rule = classify(self.grid, pos)
        return score, rule, pos

    def save(self, out_dir: Path, card: dict[str, Any]) -> dict[str, Any]:
        """Write ``ou_tsne.npz`` and ``ou_tsne_card.json`` (``card`` plus what was fitted)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        g = self.grid
        arrays = {"reference_scores": self.reference_scores,
                  "reference_labels": self.reference_labels.astype(np.uint8),
                  "reference_embedding": self.reference_embedding, "x_edges": g.x_edges,
                  "y_edges": g.y_edges, "fraction": g.fraction, "counts": g.counts,
                  "filled": g.filled}  # fmt: skip
        with open(out_dir / DATA_NAME, "wb") as f:
            np.savez(f, **arrays)
        full = {
            **card,
            "members_order": list(self.members),
            "tsne": {
                "library": "openTSNE",
                "version": _opentsne().__version__,
                "perplexity": self.perplexity,
                "seed": self.seed,
                "neighbors": "exact",
                "other": "openTSNE.TSNE defaults",
                "transform": TRANSFORM,
            },
            "grid": {
                "side": g.side,
                "extent": [g.x_edges[0], g.x_edges[-1], g.y_edges[0], g.y_edges[-1]],
                "squares_with_objects": int((g.counts > 0).sum()),
                "squares_filled": int((np.isfinite(g.filled) & (g.counts == 0)).sum()),
                "squares_undefined": int((~np.isfinite(g.filled)).sum()),
            },
            "reference": {
                "n": len(self.reference_labels),
                "n_lenses": int(self.reference_labels.sum()),
            },
            "data": {"file": DATA_NAME, "sha256": sha256_of(out_dir / DATA_NAME)},
        }
        (out_dir / CARD_NAME).write_text(json.dumps(full, indent=2, default=float))
        return full

    @classmethod
    def load(cls, model_dir: Path) -> tuple["OuTsneClassifier", dict[str, Any]]:
        """Read a classifier written by :meth:`save`; returns it and its card."""
        model_dir = Path(model_dir)
        path = model_dir / CARD_NAME
        try:
            card = json.loads(path.read_text())
            data = model_dir / card["data"]["file"]
            if sha256_of(data) != card["data"]["sha256"]:
                raise ModelError(f"{data}: sha256 does not match {path}")
            with np.load(data, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
        except FileNotFoundError as exc:
            raise ModelError(f"{model_dir}: not an OU-T-SNE classifier ({exc.filename})") from None
        except (KeyError, json.JSONDecodeError, ValueError) as exc:
            raise ModelError(f"{path}: bad OU-T-SNE card or data ({exc})") from None
        grid = TsneGrid(a["x_edges"], a["y_edges"], a["fraction"], a["counts"], a["filled"])
        clf = cls(a["reference_scores"], a["reference_labels"].astype(bool),
                  a["reference_embedding"], grid, tuple(card["members_order"]),
                  float(card["tsne"]["perplexity"]), int(card["tsne"]["seed"]))  # fmt: skip
        return clf, card


def _check_scores(scores: np.ndarray, n_members: int) -> np.ndarray:
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2 or x.shape[1] != n_members:
        raise ValueError(f"member scores must be (N, {n_members}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("member scores contain NaN or inf")
    return np.ascontiguousarray(x)
