"""Export a trained checkpoint to ONNX with a model card and a parity check."""

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lensfind.export.parity import (  # noqa: F401 (PARITY_ATOL/RTOL: re-exported)
    PARITY_ATOL,
    PARITY_RTOL,
    exported_with,
    finish_card,
    random_sample,
    score_in_batches,
    write_card,
)
from lensfind.export.torch_weights import WEIGHTS_NAME, save_weights
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ONNX_NAME, load_card
from lensfind.runtime.normalisation import AsinhNormalisation
from lensfind.runtime.scorer import OnnxScorer

if TYPE_CHECKING:
    import torch


def export_onnx_graph(
    module: "torch.nn.Module", input_shape: tuple[int, int, int], path: Path, opset: int = 17
) -> Path:
    """Export ``module`` (normalised cutouts -> P(lens)) as a checked ONNX graph.

    The graph's input is ``cutouts`` ``(batch, bands, H, W)`` float32 with a
    dynamic batch axis; its output is ``lens_probability`` ``(batch,)``.
    """
    import onnx

    from lensfind.training._torch import torch

    example = torch.zeros(2, *input_shape)
    # The TorchScript exporter is deprecated in torch >= 2.9 but, unlike the dynamo
    # exporter, needs no onnxscript and emits a plain opset-17 graph; silence only
    # its own deprecation notices.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript")
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            input_names=["cutouts"],
            output_names=["lens_probability"],
            dynamic_axes={"cutouts": {0: "batch"}, "lens_probability": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))
    return path


def export_probability_graph(
    model: "torch.nn.Module", input_shape: tuple[int, int, int], path: Path, opset: int = 17
) -> "torch.nn.Module":
    """Export ``sigmoid(model(x))`` of a logit model; return that probability module."""
    from lensfind.training._torch import torch

    wrapped = torch.nn.Sequential(model, torch.nn.Sigmoid()).eval()
    export_onnx_graph(wrapped, input_shape, path, opset)
    return wrapped


_TRAINING_KEYS = (
    "config",
    "train_set",
    "history",
    "best_val_auroc",
    "train_seconds",
    "machine",
    # recorded by lensfind >= 0.2 training runs
    "select_by",
    "best_epoch",
    "best_value",
    "epochs_run",
    "stopped_early",
    "val_metrics",
    "test_set",
)


def export_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    name: str | None = None,
    test_set: Path | None = None,
    opset: int = 17,
    threshold: float = 0.5,
) -> dict:
    """Export ``checkpoint`` to ``out_dir/model.onnx`` + ``model_card.json``.

    The exported graph takes normalised cutouts (``cutouts``, dynamic batch) and
    returns the lens probability (``lens_probability``, sigmoid included). The
    parity of torch and ONNX Runtime is checked on held-out (or random) inputs
    and recorded; with ``test_set`` the card also records the exported model's
    held-out metrics, measured with ONNX Runtime.
    """
    from lensfind.training.loop import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    bands, size, _ = meta["input_shape"]

    onnx_path = out_dir / ONNX_NAME
    wrapped = export_probability_graph(model, (bands, size, size), onnx_path, opset)
    norm = AsinhNormalisation.from_dict(meta["normalisation"])
    card = _checkpoint_card(meta, norm, onnx_path, name, threshold, opset)
    card["torch_weights"] = save_weights(model, out_dir / WEIGHTS_NAME)
    if "test_metrics_torch" in meta:
        card["test_metrics_torch"] = meta["test_metrics_torch"]
    write_card(card, out_dir)

    scorer = OnnxScorer(load_card(out_dir), threads=2)
    if test_set is not None:
        sample = _test_metrics(card, scorer, test_set, meta, threshold)
    else:
        sample = random_sample((bands, size, size))
    return finish_card(card, out_dir, wrapped, norm, sample, scorer, onnx_path)


def _checkpoint_card(
    meta: dict,
    norm: AsinhNormalisation,
    onnx_path: Path,
    name: str | None,
    threshold: float,
    opset: int,
) -> dict:
    """The card of an exported checkpoint, before weights, metrics and parity."""
    return {
        "format_version": 1,
        "name": name or f"{meta['arch']}-{meta['survey']}",
        "arch": meta["arch"],
        "survey": meta["survey"],
        "bands": meta["bands"],
        "input_shape": meta["input_shape"],
        "input": {
            "name": "cutouts",
            "units": "image counts, normalised as below",
            "layout": "NCHW float32",
        },
        "output": {"name": "lens_probability", "meaning": "P(lens) per cutout, in [0, 1]"},
        "normalisation": norm.to_dict(),
        "threshold": threshold,
        "onnx_file": ONNX_NAME,
        "opset": opset,
        "sha256": sha256_of(onnx_path),
        "training": {k: meta[k] for k in _TRAINING_KEYS if k in meta},
        "exported_with": exported_with(),
    }


def _test_metrics(
    card: dict, scorer: OnnxScorer, test_set: Path, meta: dict, threshold: float
) -> np.ndarray:
    """Record ``test_set`` and its ONNX Runtime metrics in ``card``; return parity inputs."""
    from lensfind.simulation.dataset import read_dataset
    from lensfind.training.metrics import DEFAULT_BETA, evaluate_all

    test, tattrs = read_dataset(test_set)
    raw = test.images
    scores = score_in_batches(scorer, raw, 512)
    card["test_set"] = {
        "path": str(test_set),
        "n": int(tattrs["n"]),
        "seed": tattrs["seed"],
        "population": tattrs["population"],
    }
    beta = float(meta["config"].get("beta", DEFAULT_BETA))
    card["test_metrics"] = evaluate_all(test.truth["is_lens"], scores, threshold, beta)
    return raw[:256]
