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
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.card import ONNX_NAME, load_card
from lensfind.runtime.normalisation import Normalisation, normalisation_from_dict
from lensfind.runtime.scorer import OnnxScorer
from lensfind.training.metrics import DEFAULT_BETA, evaluate_all

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
    # fine-tuned models (engine train --finetune): labels, counts, parent
    "finetune",
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
    norm = normalisation_from_dict(meta["normalisation"])
    card = _checkpoint_card(meta, norm, onnx_path, name, threshold, opset)
    card["torch_weights"] = save_weights(model, out_dir / WEIGHTS_NAME)
    if "test_metrics_torch" in meta:
        card["test_metrics_torch"] = meta["test_metrics_torch"]
    write_card(card, out_dir)

    scorer = OnnxScorer(load_card(out_dir), threads=2)
    if test_set is not None:
        beta = float(meta["config"].get("beta", DEFAULT_BETA))
        sample = record_test_metrics(card, scorer, test_set, threshold, beta)
    else:
        sample = random_sample((bands, size, size))
    return finish_card(card, out_dir, wrapped, norm, sample, scorer, onnx_path)


def _checkpoint_card(
    meta: dict,
    norm: Normalisation,
    onnx_path: Path,
    name: str | None,
    threshold: float,
    opset: int,
) -> dict:
    """The card of an exported checkpoint, before weights, metrics and parity."""
    return base_card(
        name=name or f"{meta['arch']}-{meta['survey']}", arch=meta["arch"],
        survey=meta["survey"], bands=meta["bands"], input_shape=meta["input_shape"], norm=norm,
        onnx_path=onnx_path, threshold=threshold, opset=opset,
        training={k: meta[k] for k in _TRAINING_KEYS if k in meta},
    )  # fmt: skip


def base_card(
    *,
    name: str,
    arch: str,
    survey: str,
    bands: list[str] | tuple[str, ...],
    input_shape: list[int] | tuple[int, ...],
    norm: Normalisation,
    onnx_path: Path,
    threshold: float,
    opset: int,
    training: dict,
) -> dict:
    """A single network's model card, before weights, metrics and parity.

    ``bands`` are in the network's channel order and ``norm`` is its input
    normalisation: the input convention every scorer applies.
    """
    return {
        "format_version": 1,
        "name": name,
        "arch": arch,
        "survey": survey,
        "bands": list(bands),
        "input_shape": list(input_shape),
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
        "training": training,
        "exported_with": exported_with(),
    }


def record_test_metrics(
    card: dict, scorer: OnnxScorer, test_set: Path, threshold: float, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """Record ``test_set`` and its ONNX Runtime metrics in ``card``; return parity inputs.

    The set's cutouts are scored in its own band order (``scorer`` reorders them
    to the card's); the parity inputs returned are in the card's order.
    """
    from lensfind.simulation.dataset import read_dataset, survey_of
    from lensfind.simulation.population_file import population_changes

    test, tattrs = read_dataset(test_set)
    bands = survey_of(tattrs).band_names
    raw = test.images
    scores = score_in_batches(scorer.with_input_bands(bands), raw, 512)
    card["test_set"] = {
        "path": str(test_set),
        "n": int(tattrs["n"]),
        "seed": tattrs["seed"],
        "population": tattrs["population"],
        "population_changes": population_changes(tattrs["population"]),
        "pixel_scale_arcsec": tattrs.get("pixel_scale_arcsec"),
    }
    card["test_metrics"] = evaluate_all(test.truth["is_lens"], scores, threshold, beta)
    return take_bands(raw[:256], band_order(bands, scorer.card.bands, scorer.card.name))
