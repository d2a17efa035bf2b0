"""Fit and evaluate OU-T-SNE from exported member models and simulated sets.

The seven members of Wilde+22 take different inputs: OU-66 and its band
variants (OU-J, OU-Y, OU-H, OU-JYH) all bands or some NISP bands on the NISP
grid (66 x 66 at 0.3"/px), OU-200 and OU-VIS the VIS grid (200 x 200 at
0.1"/px). So OU-T-SNE reads **paired sets**: the same objects simulated on each
grid (``engine simulate --pixel-scale 0.3 --cutout-px 66`` and ``--pixel-scale
0.1 --cutout-px 200`` with one seed), given as one comma-separated list. Each
member takes the set whose side matches its card's input shape and the bands
its card names, in its order. The sets must hold the same objects (same size,
labels, kinds and Einstein radii), or :class:`~lensfind.errors.ModelError`.

OU-T-SNE is not a graph: its last step (the t-SNE transform of the 7 member
scores) is an optimisation, so it is not exported to ONNX and
``engine scan --model`` cannot take it. It is scored here, from ONNX members
(:class:`~lensfind.runtime.scorer.OnnxScorer`, no torch) and openTSNE:

* :func:`fit_ou_tsne` (``engine ensemble --method ou_tsne``): member scores on
  the reference ("grid") sets, the embedding, the grid, the directory
  (:meth:`~lensfind.training.ou_tsne.model.OuTsneClassifier.save`), and with test
  sets the evaluation;
* :func:`evaluate_ou_tsne` (``engine ou-tsne evaluate``): a saved classifier on
  new paired sets: ``evaluation.json`` / ``EVALUATION.md`` (each member and
  OU-T-SNE: F-beta, precision, recall, AUROC, accuracy at threshold 0.5, beta
  0.03 as Wilde+22 sec. 4), ``scores.parquet`` and ``embedding_test.png``.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind import __version__
from lensfind.errors import ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ModelCard, load_card
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE
from lensfind.simulation.dataset import read_dataset
from lensfind.simulation.simulate import SimulatedSet
from lensfind.training.metrics import evaluate_all
from lensfind.training.ou_tsne.grid import GRID_SIDE, RULES
from lensfind.training.ou_tsne.model import CARD_NAME, OuTsneClassifier

#: Wilde+22 sec. 4: "we used beta = 0.03 in model evaluation".
WILDE_BETA = 0.03
#: Registry architecture -> the paper's model name.
PAPER_NAMES = {"ou66": "OU-66", "ou66_j": "OU-J", "ou66_y": "OU-Y", "ou66_h": "OU-H",
               "ou66_jyh": "OU-JYH", "ou200": "OU-200", "ou200_vis": "OU-VIS"}  # fmt: skip
EVALUATION_JSON = "evaluation.json"
EVALUATION_MD = "EVALUATION.md"
SCORES_NAME = "scores.parquet"
EMBEDDING_PNG = "embedding.png"
EMBEDDING_TEST_PNG = "embedding_test.png"
TABLE_COLUMNS = ("fbeta", "precision", "recall", "auroc", "accuracy")


def read_paired_sets(paths: Sequence[Path]) -> list[tuple[Path, SimulatedSet, dict]]:
    """Read sets of the same objects on different grids; check that they match."""
    sets = [(Path(p), *read_dataset(p)) for p in paths]
    if not sets:
        raise ModelError("OU-T-SNE needs at least one simulated set")
    p0, s0, _ = sets[0]
    for p, s, _ in sets[1:]:
        same = len(s) == len(s0) and all(
            np.array_equal(np.asarray(s.truth[k]), np.asarray(s0.truth[k]), equal_nan=k != "kind")
            for k in ("is_lens", "kind", "theta_e_arcsec")
        )
        if not same:
            raise ModelError(
                f"{p} and {p0} do not hold the same objects (size, labels, kinds or Einstein "
                "radii differ); simulate both grids with the same --seed and --n"
            )
    return sets


def member_input(card: ModelCard, sets: Sequence[tuple[Path, SimulatedSet, dict]]) -> tuple:
    """``(set index, band indices)`` that feed ``card``'s model."""
    _, h, w = card.input_shape
    for i, (_, s, attrs) in enumerate(sets):
        have = list(attrs["bands"])
        if s.images.shape[2:] == (h, w) and all(b in have for b in card.bands):
            return i, [have.index(b) for b in card.bands]
    shown = ", ".join(f"{p.name} ({','.join(a['bands'])} at {s.images.shape[-1]} px)"
                      for p, s, a in sets)  # fmt: skip
    raise ModelError(
        f"{card.directory}: takes {','.join(card.bands)} at {h}x{w} px; none of the sets has "
        f"them: {shown}"
    )


def member_scores(
    cards: Sequence[ModelCard],
    sets: Sequence[tuple[Path, SimulatedSet, dict]],
    threads: int = 1,
    batch: int = DEFAULT_BATCH_SIZE,
    quiet: bool = True,
) -> np.ndarray:
    """Lens probabilities ``(N, M)`` of every member (ONNX Runtime) on the paired sets."""
    from lensfind.runtime.scorer import OnnxScorer

    n = len(sets[0][1])
    out = np.empty((n, len(cards)))
    for j, card in enumerate(cards):
        k, bands = member_input(card, sets)
        images = sets[k][1].images
        scorer = OnnxScorer(card, threads=threads)
        for i in tqdm(range(0, n, batch), desc=f"score {card.name}", disable=quiet):
            out[i : i + batch, j] = scorer(images[i : i + batch][:, bands])
    return out


def _member_entry(card: ModelCard) -> dict[str, Any]:
    arch = card.raw.get("arch", "")
    return {"name": card.name, "arch": arch, "paper_name": PAPER_NAMES.get(arch, card.name),
            "path": str(card.directory), "bands": list(card.bands),
            "input_shape": list(card.input_shape), "sha256": card.sha256,
            "card_sha256": sha256_of(card.directory / "model_card.json")}  # fmt: skip


def _set_entry(path: Path, s: SimulatedSet, attrs: dict) -> dict[str, Any]:
    return {"path": str(path), "n": int(attrs["n"]), "seed": attrs["seed"],
            "bands": attrs["bands"], "cutout_px": int(s.images.shape[-1])}  # fmt: skip


def evaluation_table(
    labels: np.ndarray,
    scores: np.ndarray,
    names: Sequence[str],
    ou_scores: np.ndarray,
    threshold: float = 0.5,
    beta: float = WILDE_BETA,
) -> list[dict[str, Any]]:
    """One row per member and one for OU-T-SNE: :func:`evaluate_all` at ``threshold``."""
    rows = [{"model": name, **evaluate_all(labels, scores[:, j], threshold, beta)}
            for j, name in enumerate(names)]  # fmt: skip
    rows.append({"model": "OU-T-SNE", **evaluate_all(labels, ou_scores, threshold, beta)})
    return rows


def table_markdown(rows: Sequence[dict[str, Any]], beta: float = WILDE_BETA) -> str:
    """The evaluation as a Markdown table (Wilde+22 Table 5's columns)."""
    head = f"| model | F_beta (beta {beta}) | precision | recall | AUROC | accuracy | n |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        vals = " | ".join(f"{r[c]:.4f}" for c in TABLE_COLUMNS)
        lines.append(f"| {r['model']} | {vals} | {r['n']} |")
    return "\n".join(lines) + "\n"


def evaluate_ou_tsne(
    model_dir: Path,
    test_sets: Sequence[Path],
    out_dir: Path | None = None,
    threads: int = 1,
    quiet: bool = True,
) -> dict[str, Any]:
    """Score paired test sets with a saved OU-T-SNE classifier and its members.

    Writes ``evaluation.json``, ``EVALUATION.md``, ``scores.parquet`` (per object:
    index, label, member scores, embedded ``x, y``, ``ou_tsne`` score and the
    ``rule`` that gave it) and ``embedding_test.png`` to ``out_dir`` (default
    ``model_dir``). Members are read from the card's paths and checked against
    its sha256s.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lensfind.training.ou_tsne.plot import plot_embedding

    clf, card = OuTsneClassifier.load(model_dir)
    out_dir = Path(out_dir or model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cards = []
    for m in card["members"]:
        c = load_card(Path(m["path"]))
        if c.sha256 != m["sha256"]:
            raise ModelError(f"{c.onnx_path}: sha256 differs from the one in {model_dir}")
        cards.append(c)
    sets = read_paired_sets(test_sets)
    labels = np.asarray(sets[0][1].truth["is_lens"], dtype=bool)
    scores = member_scores(cards, sets, threads, quiet=quiet)
    ou, rule, pos = clf.predict(scores)
    names = [m["paper_name"] for m in card["members"]]
    threshold, beta = float(card["threshold"]), float(card["beta"])
    rows = evaluation_table(labels, scores, names, ou, threshold, beta)
    result = {
        "model": str(model_dir),
        "test_sets": [_set_entry(p, s, a) for p, s, a in sets],
        "threshold": threshold,
        "beta": beta,
        "rows": rows,
        "rules": {r: int((rule == i).sum()) for i, r in enumerate(RULES)},
        "lensfind": __version__,
    }
    import json

    (out_dir / EVALUATION_JSON).write_text(json.dumps(result, indent=2, default=float))
    note = ", ".join(f"{v} by {k}" for k, v in result["rules"].items())
    (out_dir / EVALUATION_MD).write_text(
        f"# OU-T-SNE evaluation\n\n{table_markdown(rows, beta)}\n"
        f"Threshold {threshold}; {len(labels)} objects ({int(labels.sum())} lenses); "
        f"OU-T-SNE values: {note}.\n"
    )
    cols: dict[str, Any] = {"index": np.arange(len(labels)), "is_lens": labels}
    cols.update({name: scores[:, j] for j, name in enumerate(names)})
    cols.update({"x": pos[:, 0], "y": pos[:, 1], "ou_tsne": ou,
                 "rule": np.asarray(RULES)[rule]})  # fmt: skip
    pq.write_table(pa.table(cols), out_dir / SCORES_NAME)
    plot_embedding(clf, out_dir / EMBEDDING_TEST_PNG, test=(pos, labels))
    return result


def fit_ou_tsne(
    member_dirs: Sequence[Path],
    grid_sets: Sequence[Path],
    out_dir: Path,
    test_sets: Sequence[Path] | None = None,
    grid_side: int = GRID_SIDE,
    perplexity: float = 30.0,
    seed: int = 0,
    threshold: float = 0.5,
    beta: float = WILDE_BETA,
    threads: int = 1,
    quiet: bool = True,
) -> dict[str, Any]:
    """Fit OU-T-SNE on the members' scores of ``grid_sets`` and save it to ``out_dir``.

    Parameters
    ----------
    member_dirs : sequence of Path
        Exported models (``engine export``), e.g. Wilde+22's seven.
    grid_sets : sequence of Path
        Paired sets (module docstring) whose member scores the embedding and grid
        are fitted on; held out from the members' training.
    test_sets : sequence of Path, optional
        Paired held-out sets: :func:`evaluate_ou_tsne` is run on them.
    grid_side, perplexity, seed
        Grid squares per axis (100), t-SNE perplexity and random state.
    threshold, beta : float
        Decision threshold and F-beta's beta of the evaluation (0.5, 0.03).

    Returns
    -------
    dict
        The card (``ou_tsne_card.json``), with ``test`` (the evaluation) if run.
    """
    import json

    from lensfind.training.ou_tsne.plot import plot_embedding

    cards = [load_card(Path(d)) for d in member_dirs]
    if len(cards) < 2:
        raise ModelError(f"OU-T-SNE needs at least two members, got {len(cards)}")
    sets = read_paired_sets(grid_sets)
    labels = np.asarray(sets[0][1].truth["is_lens"], dtype=bool)
    scores = member_scores(cards, sets, threads, quiet=quiet)
    names = tuple(PAPER_NAMES.get(c.raw.get("arch", ""), c.name) for c in cards)
    clf = OuTsneClassifier.fit(scores, labels, names, grid_side, perplexity, seed)
    ou, _, _ = clf.predict(scores)
    card = {
        "format_version": 1,
        "method": "ou_tsne",
        "paper": "Wilde et al. 2022 sec. 3.3",
        "survey": cards[0].survey,
        "threshold": threshold,
        "beta": beta,
        "members": [_member_entry(c) for c in cards],
        "grid_sets": [_set_entry(p, s, a) for p, s, a in sets],
        "grid_set_metrics": evaluation_table(labels, scores, names, ou, threshold, beta),
        "scoring": "members with ONNX Runtime on paired sets, then openTSNE transform into "
        "the reference embedding, then the grid (lensfind.training.ou_tsne.run)",
        "lensfind": __version__,
    }
    card = clf.save(Path(out_dir), card)
    plot_embedding(clf, Path(out_dir) / EMBEDDING_PNG)
    if test_sets:
        card["test"] = evaluate_ou_tsne(Path(out_dir), test_sets, None, threads, quiet)
        (Path(out_dir) / CARD_NAME).write_text(json.dumps(card, indent=2, default=float))
    return card
