"""Fit a model's score calibration on a held-out simulated set and store it in its card.

``engine calibrate --model DIR --set HELDOUT.zarr`` scores the set with the
model's raw (uncalibrated) network output, fits the temperature on one part of
it and measures the expected calibration error (ECE) and the negative
log-likelihood before and after on the other part, which the fit never saw.
With ``--eval-set`` the whole of ``--set`` is used for the fit and the other
set for the measurement; without it ``--set`` is split in two halves by a
seeded permutation. The card's ``calibration`` entry then holds the
temperature, the lens fraction of the fitting data and the held-out numbers;
``MODEL_CARD.md`` is rewritten beside it and a reliability diagram
(``calibration.png``) is written.

The ONNX file (and its sha256) does not change; runs record the calibration
they scored with (``model.json`` of the run directory) and refuse to resume
with another.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ModelError
from lensfind.plotting import pyplot
from lensfind.runtime.calibration import (
    DEFAULT_ECE_BINS,
    apply_temperature,
    binary_nll,
    expected_calibration_error,
    fit_temperature,
    reliability,
)
from lensfind.runtime.card import CARD_NAME, load_card
from lensfind.runtime.card_md import MODEL_CARD_MD, write_model_card_md

CALIBRATION_PNG = "calibration.png"
#: Seed of the fit / evaluation split of a single set.
SPLIT_SEED = 0


def _raw_scores(
    model_dir: Path, set_path: Path, threads: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Raw network probabilities and lens labels of a simulated set."""
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.simulation.dataset import read_dataset

    card = load_card(model_dir).uncalibrated()
    data, attrs = read_dataset(set_path)
    if tuple(data.images.shape[1:]) != tuple(card.input_shape):
        raise ModelError(
            f"{set_path}: cutouts {tuple(data.images.shape[1:])}, model {card.name} "
            f"expects {tuple(card.input_shape)}"
        )
    scorer = OnnxScorer(card, threads=threads, input_bands=tuple(attrs["bands"]))
    p = np.concatenate([scorer(data.images[i : i + 256]) for i in range(0, len(data), 256)])
    return p.astype(np.float64), data.truth["is_lens"].astype(np.float64), attrs


def _measures(p: np.ndarray, y: np.ndarray, temperature: float) -> dict[str, float]:
    q = apply_temperature(p, temperature)
    return {
        "ece_before": round(expected_calibration_error(p, y), 6),
        "ece_after": round(expected_calibration_error(q, y), 6),
        "nll_before": round(binary_nll(p, y), 6),
        "nll_after": round(binary_nll(q, y), 6),
    }


def calibrate_model(
    model_dir: Path, set_path: Path, eval_set: Path | None = None, threads: int = 2
) -> dict[str, Any]:
    """Fit the temperature of ``model_dir``'s scores and write it into its card.

    Parameters
    ----------
    model_dir : Path
        An exported model (``model.onnx`` + ``model_card.json``); any existing
        calibration is replaced (the fit uses the raw network output).
    set_path : Path
        Held-out simulated set (``engine simulate``) with the model's input shape.
    eval_set : Path, optional
        A second held-out set to measure on; default: half of ``set_path``.
    threads : int
        ONNX Runtime threads.

    Returns
    -------
    dict
        The card's new ``calibration`` entry.
    """
    p, y, attrs = _raw_scores(model_dir, set_path, threads)
    if eval_set is None:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(p))
        half = len(p) // 2
        fit_idx, eval_idx = order[:half], order[half:]
        p_fit, y_fit, p_eval, y_eval = p[fit_idx], y[fit_idx], p[eval_idx], y[eval_idx]
        eval_name = f"{Path(set_path).name} (other half)"
    else:
        p_fit, y_fit = p, y
        p_eval, y_eval, _ = _raw_scores(model_dir, eval_set, threads)
        eval_name = Path(eval_set).name
    if len(p_fit) < 2 or len(p_eval) < 2:
        raise ModelError(f"{set_path}: too few objects to calibrate on ({len(p)})")
    try:
        temperature = fit_temperature(p_fit, y_fit)
    except ValueError as exc:
        raise ModelError(f"{set_path}: {exc}") from None
    entry: dict[str, Any] = {
        "method": "temperature",
        "temperature": round(temperature, 6),
        "lens_fraction": round(float(y_fit.mean()), 6),
        "set": Path(set_path).name,
        "seed": attrs.get("seed"),
        "n": len(p_fit),
        "eval_set": eval_name,
        "n_eval": len(p_eval),
        "ece_bins": DEFAULT_ECE_BINS,
        **_measures(p_eval, y_eval, temperature),
    }
    card_path = model_dir / CARD_NAME
    raw = json.loads(card_path.read_text())
    raw["calibration"] = entry
    tmp = card_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    tmp.replace(card_path)
    if (model_dir / MODEL_CARD_MD).exists():
        write_model_card_md(raw, model_dir / MODEL_CARD_MD)
    plot_reliability(p_eval, y_eval, temperature, model_dir / CALIBRATION_PNG, raw["name"])
    return entry


def plot_reliability(
    p: np.ndarray, y: np.ndarray, temperature: float, path: Path, title: str
) -> Path:
    """Reliability diagram (lens fraction vs mean score per bin) before and after scaling."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    for probs, label in ((p, "raw"), (apply_temperature(p, temperature), f"T = {temperature:.3f}")):
        n, _, frac, mean_p = reliability(probs, y)
        ok = n > 0
        ece = expected_calibration_error(probs, y)
        ax.plot(mean_p[ok], frac[ok], marker="o", ms=3, label=f"{label} (ECE {ece:.4f})")
    ax.set(xlabel="mean score in bin", ylabel="fraction of lenses",
           title=f"{title}: held-out reliability", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
