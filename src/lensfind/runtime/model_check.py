"""Checking a model before a run: it loads, takes its card's input, and answers with probabilities.

A model that cannot score must stop a run before its first shard, with one
line naming the file, rather than fail every object of the run. The check is
cheap (one session, which the run then reuses, and one batch of
:data:`DRY_BATCH` cutouts): a blank cutout and unit-variance noise (counts),
the inputs every lens finder has to score.
"""

import numpy as np

from lensfind.errors import ModelError
from lensfind.runtime.scorer import OnnxScorer

#: Cutouts of the check's batch (half blank, half noise).
DRY_BATCH = 4


def check_graph_input(scorer: OnnxScorer) -> None:
    """Check the ONNX graph's declared input against the card's ``input_shape``.

    Raises :class:`ModelError` naming the file when the graph takes another
    rank, channel count or cutout size (symbolic dimensions match anything).
    """
    card = scorer.card
    graph = scorer.session.get_inputs()[0]
    shape = list(graph.shape)
    wrong = len(shape) != 4 or any(
        isinstance(d, int) and d != e for d, e in zip(shape[1:], card.input_shape, strict=True)
    )
    if wrong:
        raise ModelError(
            f"{card.onnx_path}: the graph's input {graph.name!r} has shape {shape}; its card "
            f"says (batch, {', '.join(map(str, card.input_shape))}) ({', '.join(card.bands)})"
        )


def check_scorer(scorer: OnnxScorer) -> None:
    """Score a dry batch and check the outputs are ``DRY_BATCH`` finite probabilities in [0, 1].

    Raises
    ------
    ModelError
        Naming the model file: a graph input that is not the card's, a batch
        the session cannot run, an output of another shape than ``(N,)`` or
        ``(N, 1)``, or scores that are NaN, infinite or outside [0, 1].
    """
    check_graph_input(scorer)
    card = scorer.card
    n_in = len(scorer.input_bands)
    x = np.zeros((DRY_BATCH, n_in, *card.input_shape[1:]), dtype=np.float32)
    x[DRY_BATCH // 2 :] = np.random.default_rng(0).standard_normal(x[DRY_BATCH // 2 :].shape)
    try:
        p = scorer(x, overwrite=True)
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime raises its own types
        raise ModelError(
            f"{card.onnx_path}: cannot score a batch of {DRY_BATCH} test cutouts "
            f"({type(exc).__name__}: {exc})"
        ) from None
    bad = ~np.isfinite(p)
    if bad.any():
        raise ModelError(
            f"{card.onnx_path}: returns non-finite scores (NaN/inf) for {int(bad.sum())} of "
            f"{DRY_BATCH} test cutouts (blank and noise); it cannot score"
        )
    if ((p < 0) | (p > 1)).any():
        raise ModelError(
            f"{card.onnx_path}: returns scores in [{p.min():.3g}, {p.max():.3g}] for test "
            "cutouts; a lens finder's output must be a probability in [0, 1]"
        )
