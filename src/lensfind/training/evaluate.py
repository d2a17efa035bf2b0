"""Any exported model on any labelled simulated set: metrics, ROC and F-beta (``engine evaluate``).

The model runs in ONNX Runtime through its card (its own band order and
normalisation; the set's bands are reordered to it), so this module needs no
torch: it uses only the numpy metrics and matplotlib plots of this package.
The set is read block by block, so its size is bounded by the disk, not the
memory. Writes to the output directory:

* ``metrics.json``: :func:`~lensfind.training.metrics.evaluate_all` at the top
  level (``auroc``, ``tpr0``, ``tpr10``, ``fbeta``, ``precision``, ``recall``,
  ``n``, ``n_lenses``, ...), plus ``model``, ``set``, ``by_kind`` (when the set
  records ``kind``) and ``plots``;
* ``roc.png`` and ``fbeta_threshold.png``;
* ``scores.parquet``: one row per object (``index``, ``is_lens``, ``kind``, ``score``).
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError, ModelError
from lensfind.runtime.card import ModelCard
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE, OnnxScorer
from lensfind.runtime.shipped import resolve_model
from lensfind.training.metrics import DEFAULT_BETA, auroc, evaluate_all
from lensfind.training.plots import FBETA, ROC, plot_fbeta, plot_roc
from lensfind.versions import versions

METRICS_NAME = "metrics.json"
SCORES_NAME = "scores.parquet"
#: Cutouts read from the set at a time.
READ_BLOCK = 1024


class LabelledSet:
    """A simulated set (``engine simulate``) opened for reading in blocks.

    Attributes
    ----------
    attrs : dict
        The set's attributes (``survey``, ``bands``, ``seed``, ``n``, ...).
    is_lens : ndarray of bool
        Labels, ``(N,)``.
    kind : ndarray of str or None
        Object kinds (``truth/kind``), when the set records them.
    """

    def __init__(self, path: Path) -> None:
        import zarr

        self.path = Path(path)
        try:
            root = zarr.open_group(str(self.path), mode="r")
            self.attrs = dict(root.attrs)
            self._images = zarr.open_array(str(self.path / "images"), mode="r")
            self.is_lens = np.asarray(
                zarr.open_array(str(self.path / "label"), mode="r")[:], dtype=bool
            )
            self.kind: np.ndarray | None = None
            if "kind" in set(zarr.open_group(str(self.path / "truth"), mode="r").array_keys()):
                codes = np.asarray(zarr.open_array(str(self.path / "truth" / "kind"), mode="r")[:])
                self.kind = np.asarray(self.attrs["kinds"])[codes]
            self.bands = tuple(str(b) for b in self.attrs["bands"])
        except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path}: not a lensfind simulated set ({exc})") from None
        if self._images.ndim != 4 or self._images.shape[0] != len(self.is_lens):
            raise ConfigError(
                f"{self.path}: images {self._images.shape} do not match {len(self.is_lens)} labels"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, bands, H, W)`` of the set's cutouts."""
        return tuple(int(s) for s in self._images.shape)

    def blocks(self, size: int = READ_BLOCK) -> Iterator[np.ndarray]:
        """The cutouts (counts, float32) in blocks of ``size``, in order."""
        for start in range(0, self.shape[0], size):
            yield np.asarray(self._images[start : start + size], dtype=np.float32)


def score_set(
    scorer: OnnxScorer, data: LabelledSet, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Lens probabilities ``(N,)`` of every cutout of ``data`` (the set's band order)."""
    scorer = scorer.with_input_bands(data.bands)
    batch = scorer.settings.batch_size
    parts = []
    for block in data.blocks():
        for i in range(0, len(block), batch):
            parts.append(scorer(np.ascontiguousarray(block[i : i + batch]), overwrite=True))
        if progress is not None:
            progress(len(block))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


def by_kind(
    is_lens: np.ndarray, kind: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, dict[str, Any]]:
    """Per object kind: counts, mean score and the fraction called a lens at ``threshold``.

    Kinds of lenses also get ``recall`` (that fraction) and ``auroc_vs_non_lenses``
    (their scores against every non-lens of the set); kinds of non-lenses get
    ``false_positive_rate``.
    """
    out: dict[str, dict[str, Any]] = {}
    others = scores[~is_lens]
    for k in sorted(set(kind.tolist())):
        sel = kind == k
        s, lens = scores[sel], is_lens[sel]
        called = float((s >= threshold).mean())
        row: dict[str, Any] = {
            "n": int(sel.sum()),
            "n_lenses": int(lens.sum()),
            "mean_score": float(s.mean()),
            "called_lens_fraction": called,
        }
        if lens.all():
            row["recall"] = called
            if len(others):
                y = np.r_[np.ones(len(s), bool), np.zeros(len(others), bool)]
                row["auroc_vs_non_lenses"] = auroc(y, np.r_[s, others])
        elif not lens.any():
            row["false_positive_rate"] = called
        out[str(k)] = row
    return out


def _model_entry(card: ModelCard) -> dict[str, Any]:
    return {
        "name": card.name, "directory": str(card.directory), "sha256": card.sha256,
        "arch": card.raw.get("arch"), "survey": card.survey, "bands": list(card.bands),
        "input_shape": list(card.input_shape), "normalisation": card.normalisation.to_dict(),
    }  # fmt: skip


def evaluate_model(
    model: str | Path,
    set_path: Path,
    out_dir: Path,
    threshold: float | None = None,
    beta: float = DEFAULT_BETA,
    threads: int = 2,
    provider: str = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score a labelled simulated set with a model and write its metrics and plots.

    Parameters
    ----------
    model : str or Path
        Model directory or shipped model name.
    set_path : Path
        Simulated set with labels (``engine simulate``); its bands must include
        the model's (they are reordered to the card's order) and its cutouts
        must have the model's size.
    out_dir : Path
        Output directory (``metrics.json``, ``roc.png``, ``fbeta_threshold.png``,
        ``scores.parquet``).
    threshold : float, optional
        Decision threshold of the threshold metrics (default: the card's).
    beta : float
        Beta of the F-beta scores (vL: 0.17).
    threads, provider, batch_size
        ONNX Runtime intra-op threads, execution provider and batch size.
    progress : callable, optional
        Called with the number of cutouts scored after each block.

    Returns
    -------
    dict
        What ``metrics.json`` holds.

    Raises
    ------
    ModelError
        The set lacks a band of the model, or its cutouts have another size.
    ConfigError
        Not a simulated set, or a set without both lenses and non-lenses.
    """
    from lensfind.runtime.scorer import SessionSettings

    card = resolve_model(model, survey="")
    data = LabelledSet(set_path)
    card.checked_input_bands(data.bands)
    if tuple(data.shape[2:]) != tuple(card.input_shape[1:]):
        raise ModelError(
            f"{set_path}: cutouts {data.shape[2]}x{data.shape[3]} px; model {card.name} takes "
            f"{card.input_shape[1]}x{card.input_shape[2]} px"
        )
    n_lens = int(data.is_lens.sum())
    if n_lens == 0 or n_lens == len(data.is_lens):
        raise ConfigError(
            f"{set_path}: {n_lens} lens(es) and {len(data.is_lens) - n_lens} non-lens(es); "
            "an evaluation needs both"
        )
    threshold = card.threshold if threshold is None else float(threshold)
    settings = SessionSettings(threads=threads, batch_size=batch_size)
    scores = score_set(OnnxScorer(card, provider=provider, settings=settings), data, progress)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = evaluate_all(data.is_lens, scores, threshold, beta)
    title = f"{card.name} on {data.path.name}"
    result["model"] = _model_entry(card)
    result["set"] = {
        "path": str(data.path), "survey": data.attrs.get("survey"), "bands": list(data.bands),
        "cutout_px": data.shape[2], "pixel_scale_arcsec": data.attrs.get("pixel_scale_arcsec"),
        "n": data.shape[0], "seed": data.attrs.get("seed"),
    }  # fmt: skip
    if data.kind is not None:
        result["by_kind"] = by_kind(data.is_lens, data.kind, scores, threshold)
    result["plots"] = {
        "roc": plot_roc(data.is_lens, scores, out_dir / ROC, f"ROC, {title}").name,
        "fbeta": plot_fbeta(data.is_lens, scores, out_dir / FBETA, f"F-beta, {title}", beta).name,
    }
    result["scores"] = _write_scores(out_dir / SCORES_NAME, data, scores)
    result["runtime"] = {"provider": provider, "threads": threads, "versions": versions()}
    (out_dir / METRICS_NAME).write_text(json.dumps(result, indent=2))
    return result


def _write_scores(path: Path, data: LabelledSet, scores: np.ndarray) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {
        "index": np.arange(len(scores), dtype=np.int64),
        "is_lens": data.is_lens,
        "score": scores.astype(np.float32),
    }
    if data.kind is not None:
        columns["kind"] = data.kind.astype(str)
    pq.write_table(pa.table(columns), path)
    return path.name
