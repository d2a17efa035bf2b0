"""What every fp32 exporter ends with: the torch/ONNX Runtime parity record and the card.

:func:`finish_card` is the last step of :func:`~lensfind.export.onnx_export.export_checkpoint`
and :func:`~lensfind.export.ensemble_export.export_ensemble`: it scores the same inputs
with the torch module and the exported graph, records the agreement as the card's
``parity`` (raising :class:`ModelError` outside :data:`PARITY_ATOL`/:data:`PARITY_RTOL`),
then writes ``model_card.json`` and ``MODEL_CARD.md``.
"""

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lensfind import __version__
from lensfind.errors import ModelError
from lensfind.runtime.card import CARD_NAME
from lensfind.runtime.card_md import MODEL_CARD_MD, write_model_card_md

# torch (CPU, fp32) vs ONNX Runtime (CPU, fp32) on the same inputs, in probability.
PARITY_ATOL = 1e-5
PARITY_RTOL = 1e-4


def exported_with() -> dict[str, str]:
    """The card's ``exported_with``: lensfind, torch, onnx and Python versions."""
    import onnx

    from lensfind.training._torch import torch

    return {
        "lensfind": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }


def write_card(card: dict, out_dir: Path) -> None:
    """Write ``card`` as ``out_dir/model_card.json``."""
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2))


def score_in_batches(scorer: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                     batch: int) -> np.ndarray:  # fmt: skip
    """``scorer`` over ``images`` ``batch`` cutouts at a time, concatenated."""
    return np.concatenate([scorer(images[i : i + batch]) for i in range(0, len(images), batch)])


def random_sample(input_shape: tuple[int, ...]) -> np.ndarray:
    """64 fixed random cutouts (seed 0, N(0, 5)): parity inputs when no set is given."""
    return np.random.default_rng(0).normal(0, 5, (64, *input_shape)).astype(np.float32)


def parity_record(
    reference: Any,
    normalise: Callable[[np.ndarray], np.ndarray],
    sample: np.ndarray,
    scorer: Callable[[np.ndarray], np.ndarray],
    onnx_path: Path,
) -> dict[str, Any]:
    """The card's ``parity``: torch ``reference`` vs ONNX Runtime ``scorer`` on ``sample``.

    ``reference`` takes normalised cutouts (``normalise(sample)``), ``scorer`` the raw
    ones; both return P(lens). Raises :class:`ModelError` when they disagree beyond
    :data:`PARITY_ATOL`/:data:`PARITY_RTOL`.
    """
    from lensfind.training._torch import torch

    with torch.inference_mode():
        want = reference(torch.from_numpy(normalise(sample))).numpy()
    got = scorer(sample)
    err = float(np.max(np.abs(want - got)))
    record = {
        "reference": "torch fp32 CPU",
        "runtime": "onnxruntime CPU fp32",
        "n": len(sample),
        "max_abs_diff": err,
        "atol": PARITY_ATOL,
        "rtol": PARITY_RTOL,
    }
    if not np.allclose(got, want, atol=PARITY_ATOL, rtol=PARITY_RTOL):
        raise ModelError(f"{onnx_path}: ONNX Runtime disagrees with torch (max |diff| {err:.2e})")
    return record


def finish_card(
    card: dict,
    out_dir: Path,
    reference: Any,
    normalise: Callable[[np.ndarray], np.ndarray],
    sample: np.ndarray,
    scorer: Callable[[np.ndarray], np.ndarray],
    onnx_path: Path,
) -> dict:
    """Add the :func:`parity_record` to ``card``, write it and ``MODEL_CARD.md``; return it."""
    card["parity"] = parity_record(reference, normalise, sample, scorer, onnx_path)
    card["model_card_md"] = MODEL_CARD_MD
    write_card(card, out_dir)
    write_model_card_md(card, out_dir / MODEL_CARD_MD)
    return card
