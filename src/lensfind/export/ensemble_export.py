"""Ensembles as one model: fit the combination, export one ONNX graph with a card.

An ensemble directory looks like any model directory (``model.onnx`` +
``model_card.json``), so :class:`~lensfind.runtime.scorer.OnnxScorer`, the engine
and the probes use it unchanged. The graph holds every member and the
combination (:class:`~lensfind.training.ensemble.EnsembleModule`); it takes the
cutouts normalised once, which is why all members must share their survey,
bands, input shape and normalisation (:func:`check_compatible`).

The card adds ``ensemble`` (method, combination, weights, fit details, and per
member its name, architecture, ONNX sha256, card sha256 and torch-weights
sha256) and ``ensemble_weights`` (every tensor of the torch form, as ``.npz``
with its sha256, for :func:`load_ensemble_torch`). ``val_metrics`` are measured
on the set the weights or the gate were fitted on (in-sample); pass a
``test_set`` for held-out numbers.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ModelError
from lensfind.export.onnx_export import export_onnx_graph
from lensfind.export.parity import (
    exported_with,
    finish_card,
    random_sample,
    score_in_batches,
    write_card,
)
from lensfind.hashing import sha256_of
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, ModelCard, load_card
from lensfind.runtime.scorer import OnnxScorer

ENSEMBLE_WEIGHTS_NAME = "ensemble_weights.npz"


def check_compatible(cards: list[ModelCard]) -> None:
    """Raise :class:`ModelError` unless all members take the same normalised input."""
    if len(cards) < 2:
        raise ModelError(f"an ensemble needs at least two members, got {len(cards)}")
    ref = cards[0]
    for c in cards[1:]:
        for what, a, b in (
            ("survey", ref.survey, c.survey),
            ("bands", ref.bands, c.bands),
            ("input shape", ref.input_shape, c.input_shape),
            ("normalisation", ref.normalisation, c.normalisation),
        ):
            if a != b:
                raise ModelError(
                    f"{c.directory}: {what} {b} differs from {a} of {ref.directory}; ensemble "
                    "members must share survey, bands, input shape and normalisation"
                )
        if "torch_weights" not in c.raw or "torch_weights" not in ref.raw:
            missing = c if "torch_weights" not in c.raw else ref
            raise ModelError(f"{missing.directory}: member has no torch weights to combine")


def _member_entry(card: ModelCard) -> dict[str, Any]:
    return {
        "name": card.name,
        "arch": card.raw["arch"],
        "path": str(card.directory),
        "sha256": card.sha256,
        "card_sha256": sha256_of(card.directory / CARD_NAME),
        "torch_weights_sha256": card.raw["torch_weights"]["sha256"],
    }


def _probs(module: Any, x: np.ndarray, batch: int = 128) -> np.ndarray:
    from lensfind.training._torch import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(module.member_probabilities(torch.from_numpy(x[i : i + batch])).numpy())
    return np.concatenate(out).astype(np.float64)


@dataclass
class _Fitted:
    """An ensemble's torch form and what fitting it found (:func:`_fit_combination`)."""

    module: Any
    weights: list[float] | None
    fit: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    member_val: dict[str, Any] = field(default_factory=dict)
    val: Any = None
    labels: np.ndarray | None = None


def export_ensemble(
    member_dirs: list[Path],
    out_dir: Path,
    method: str,
    val_set: Path | None = None,
    test_set: Path | None = None,
    name: str | None = None,
    threshold: float = 0.5,
    seed: int = 0,
    gate_options: dict[str, Any] | None = None,
    threads: int = 2,
    quiet: bool = True,
    opset: int = 17,
) -> dict:
    """Fit an ensemble of exported models and export it as one ONNX model with a card.

    Parameters
    ----------
    member_dirs : list of Path
        Model directories (``engine export`` output, with ``weights.npz``).
    out_dir : Path
        The ensemble's model directory.
    method : {"mean", "nelder_mead", "gated"}
        See :mod:`lensfind.training.ensemble`.
    val_set : Path, optional
        Simulated set the weights / gate are fitted on (needed except for ``mean``).
    test_set : Path, optional
        Held-out set for the card's ``test_metrics`` (ONNX Runtime).
    gate_options : dict, optional
        ``epochs``, ``batch_size``, ``lr``, ``width`` of the gate (``gated``).
    """
    from lensfind.training._torch import torch
    from lensfind.training.ensemble import METHODS

    if method not in METHODS:
        raise ModelError(f"unknown ensemble method {method!r} (known: {', '.join(METHODS)})")
    if method != "mean" and val_set is None:
        raise ModelError(f"ensemble method {method!r} needs a validation set (--val-set)")
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    cards = [load_card(Path(d)) for d in member_dirs]
    check_compatible(cards)
    ref = cards[0]
    fitted = _fit_combination(cards, method, val_set, threshold, seed, gate_options, quiet)
    fitted.module.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = _write_graph(fitted.module, ref, out_dir, opset)
    card = _ensemble_card(cards, fitted, method, onnx_path, name, threshold, opset)
    write_card(card, out_dir)
    scorer = OnnxScorer(load_card(out_dir), threads=threads)
    sample = _measure(card, scorer, fitted, ref, test_set, threshold)
    return finish_card(card, out_dir, fitted.module, ref.normalisation, sample, scorer, onnx_path)


def _fit_combination(
    cards: list[ModelCard],
    method: str,
    val_set: Path | None,
    threshold: float,
    seed: int,
    gate_options: dict[str, Any] | None,
    quiet: bool,
) -> _Fitted:
    """Load the members and fit ``method``'s weights or gate on ``val_set``.

    Without ``val_set`` (``mean`` only) the members are averaged; with it every
    member's validation metrics are measured too.
    """
    from lensfind.export.torch_weights import load_torch_model
    from lensfind.simulation.dataset import read_dataset
    from lensfind.training.ensemble import EnsembleModule, nelder_mead_weights
    from lensfind.training.metrics import evaluate_all

    ref = cards[0]
    members = [load_torch_model(c) for c in cards]
    fitted = _Fitted(EnsembleModule(members, "mean"), [1.0 / len(members)] * len(members))
    if val_set is None:
        return fitted
    val, vattrs = in_card_order(*read_dataset(val_set), ref)
    labels = np.asarray(val.truth["is_lens"], dtype=bool)
    x_val = ref.normalisation(val.images)
    probs = _probs(fitted.module, x_val)
    fitted.member_val = {f"{i}:{c.name}": evaluate_all(labels, probs[:, i], threshold)
                         for i, c in enumerate(cards)}  # fmt: skip
    fitted.extra["val_set"] = {"path": str(val_set), "n": int(vattrs["n"]), "seed": vattrs["seed"]}
    fitted.val, fitted.labels = val, labels
    if method == "nelder_mead":
        w, fitted.fit = nelder_mead_weights(probs, labels.astype(float))
        fitted.weights = w.tolist()
        fitted.module = EnsembleModule(members, method, weights=fitted.weights)
    elif method == "gated":
        fitted.module, fitted.fit = _fit_gate(members, ref, x_val, probs, labels, seed,
                                              gate_options, quiet)  # fmt: skip
        fitted.weights = None
    return fitted


def _fit_gate(
    members: list[Any],
    ref: ModelCard,
    x_val: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    seed: int,
    gate_options: dict[str, Any] | None,
    quiet: bool,
) -> tuple[Any, dict[str, Any]]:
    """Train a :class:`GatingCNN` over ``members``; return the gated module and its fit."""
    from lensfind.training.ensemble import EnsembleModule
    from lensfind.training.gating import GatingCNN, train_gate

    opts = {"epochs": 5, "batch_size": 64, "lr": 1e-3, "width": 16, **(gate_options or {})}
    gate = GatingCNN(len(ref.bands), len(members), int(opts["width"]))
    fit = train_gate(gate, x_val, probs, labels, epochs=int(opts["epochs"]),
                     batch_size=int(opts["batch_size"]), lr=float(opts["lr"]),
                     seed=seed, quiet=quiet)  # fmt: skip
    fit["gate"] = {"arch": "GatingCNN", "width": int(opts["width"]), **opts}
    return EnsembleModule(members, "gated", gate=gate), fit


def _write_graph(module: Any, ref: ModelCard, out_dir: Path, opset: int) -> Path:
    """Write ``model.onnx`` and the torch tensors (``ensemble_weights.npz``); return the graph."""
    onnx_path = export_onnx_graph(module, ref.input_shape, out_dir / ONNX_NAME, opset)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    with open(out_dir / ENSEMBLE_WEIGHTS_NAME, "wb") as f:
        np.savez(f, **state)
    return onnx_path


def _ensemble_card(
    cards: list[ModelCard],
    fitted: _Fitted,
    method: str,
    onnx_path: Path,
    name: str | None,
    threshold: float,
    opset: int,
) -> dict[str, Any]:
    """The ensemble's card, before its metrics and parity."""
    from lensfind.training.ensemble import COMBINATION

    ref = cards[0]
    return {
        "format_version": 1,
        "name": name or f"ensemble-{method}-{ref.survey}",
        "arch": "ensemble",
        "survey": ref.survey,
        "bands": list(ref.bands),
        "input_shape": list(ref.input_shape),
        "input": ref.raw.get("input", {"name": "cutouts", "layout": "NCHW float32"}),
        "output": {"name": "lens_probability", "meaning": "P(lens) per cutout, in [0, 1]"},
        "normalisation": ref.normalisation.to_dict(),
        "threshold": threshold,
        "onnx_file": ONNX_NAME,
        "opset": opset,
        "sha256": sha256_of(onnx_path),
        "ensemble": {
            "method": method,
            "combination": COMBINATION[method],
            "weights": fitted.weights,
            "members": [_member_entry(c) for c in cards],
            "fit": fitted.fit,
        },
        "ensemble_weights": {
            "file": ENSEMBLE_WEIGHTS_NAME,
            "format": "npz state dict",
            "sha256": sha256_of(onnx_path.parent / ENSEMBLE_WEIGHTS_NAME),
        },
        **fitted.extra,
        "exported_with": exported_with(),
    }


def _measure(
    card: dict[str, Any],
    scorer: OnnxScorer,
    fitted: _Fitted,
    ref: ModelCard,
    test_set: Path | None,
    threshold: float,
) -> np.ndarray:
    """Record the exported graph's validation and test metrics; return the parity inputs."""
    from lensfind.simulation.dataset import read_dataset
    from lensfind.training.metrics import evaluate_all

    if fitted.val is not None:
        p = score_in_batches(scorer, fitted.val.images, 256)
        card["val_metrics"] = evaluate_all(fitted.labels, p, threshold)
        card["member_val_metrics"] = fitted.member_val
        sample = fitted.val.images[:256]
    else:
        sample = random_sample(ref.input_shape)
    if test_set is not None:
        test, tattrs = in_card_order(*read_dataset(test_set), ref)
        p = score_in_batches(scorer, test.images, 256)
        card["test_set"] = {"path": str(test_set), "n": int(tattrs["n"]), "seed": tattrs["seed"]}
        card["test_metrics"] = evaluate_all(test.truth["is_lens"], p, threshold)
    return sample


def in_card_order(data: Any, attrs: dict, card: ModelCard) -> tuple[Any, dict]:
    """A read set (:func:`~lensfind.simulation.dataset.read_dataset`) with its cutouts'
    bands put in ``card``'s order."""
    from lensfind.simulation.dataset import survey_of

    order = band_order(survey_of(attrs).band_names, card.bands, f"model {card.name}")
    return dataclasses.replace(data, images=take_bands(data.images, order)), attrs


def load_ensemble_torch(model_dir: Path) -> Any:
    """The torch form (:class:`EnsembleModule`, eval mode) of an exported ensemble.

    Built from the card alone: member architectures and the gate from
    ``ensemble``, every tensor from ``ensemble_weights`` (sha256 checked).
    """
    from lensfind.training._torch import torch
    from lensfind.training.architectures import build_model
    from lensfind.training.ensemble import EnsembleModule
    from lensfind.training.gating import GatingCNN

    card = load_card(Path(model_dir))
    ens, entry = card.raw.get("ensemble"), card.raw.get("ensemble_weights")
    if not ens or not entry:
        raise ModelError(f"{card.directory}: not an ensemble model (no 'ensemble' in its card)")
    path = card.directory / entry["file"]
    if not path.is_file() or sha256_of(path) != entry["sha256"]:
        raise ModelError(f"{path}: missing, or sha256 does not match the model card")
    bands, size, _ = card.input_shape
    members = [build_model(m["arch"], bands=bands, size_px=size) for m in ens["members"]]
    gate = None
    if ens["method"] == "gated":
        gate = GatingCNN(bands, len(members), int(ens["fit"]["gate"]["width"]))
    module = EnsembleModule(members, ens["method"], weights=ens["weights"], gate=gate)
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k].copy()) for k in npz.files}
    module.load_state_dict(state, strict=True)
    return module.eval()
