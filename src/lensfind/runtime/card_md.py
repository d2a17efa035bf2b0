"""``MODEL_CARD.md``: the human-readable side of ``model_card.json``.

Written at export beside the JSON card (single models and ensembles); it
summarises what the model takes and returns, the data and seed it was trained
with, its configuration, its held-out metrics and the checksums. The JSON card
stays the source of truth; this file is derived from it.
"""

import json
from pathlib import Path
from typing import Any

from lensfind.tables import config_table, fmt, metrics_table

MODEL_CARD_MD = "MODEL_CARD.md"

_CONFIG_KEYS = ("arch", "loss", "beta", "select_by", "epochs", "batch_size", "optimizer", "lr",
                "schedule", "seed", "positives", "sampling", "class_weighting", "rotation",
                "flip", "shift_px", "zoom_max")  # fmt: skip


def _set_line(kind: str, info: dict[str, Any]) -> str:
    name = Path(str(info.get("path", "?"))).name
    extra = f", positives {info['positives']}" if "positives" in info else ""
    changes = info.get("population_changes")
    if changes:
        extra += "; population as the default but " + ", ".join(
            f"`{k}: {json.dumps(v)}`" for k, v in sorted(changes.items())
        )
    seed, n = info.get("seed"), info.get("n")
    return f"- {kind}: `{name}` (simulated, seed {seed}, {n} objects{extra})"


def _normalisation_text(norm: dict[str, Any]) -> str:
    if norm["kind"] == "asinh":
        return f"asinh (scale {norm['scale']}, softening {norm['softening']})"
    if norm["kind"] == "minmax":
        return "minmax (each band of each cutout scaled to [0, 1] by its own min and max)"
    return str(norm["kind"])


def render_model_card_md(card: dict[str, Any]) -> str:
    """The Markdown text of a model card (see the module docstring)."""
    norm = card["normalisation"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"- architecture: `{card['arch']}`",
        f"- survey: {card['survey']}; bands {', '.join(card['bands'])}; input "
        f"{' x '.join(map(str, card['input_shape']))} (NCHW float32, image counts)",
        f"- normalisation: {_normalisation_text(norm)}",
        f"- output: {card['output']['meaning']}; decision threshold {card['threshold']}",
        f"- ONNX: `{card['onnx_file']}` (opset {card['opset']}), sha256 `{card['sha256']}`",
    ]
    if "torch_weights" in card:
        tw = card["torch_weights"]
        lines.append(f"- torch weights: `{tw['file']}`, sha256 `{tw['sha256']}`")
    ens = card.get("ensemble")
    if ens:
        lines += ["", f"## Ensemble ({ens['method']})", "", ens["combination"], "",
                  "| member | architecture | weight | ONNX sha256 | card sha256 |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for i, m in enumerate(ens["members"]):
            w = fmt(ens["weights"][i]) if ens.get("weights") else "per image"
            lines.append(f"| {m['name']} | `{m['arch']}` | {w} | `{m['sha256'][:16]}...` | "
                         f"`{m['card_sha256'][:16]}...` |")  # fmt: skip
    training = card.get("training", {})
    lines += ["", "## Data", ""]
    if "train_set" in training:
        lines.append(_set_line("training set", training["train_set"]))
    if "val_set" in card:
        lines.append(_set_line("validation set", card["val_set"]))
    if "test_set" in card:
        lines.append(_set_line("test set", card["test_set"]))
    config = training.get("config")
    if config:
        lines += ["", "## Training", ""]
        if "select_by" in training:
            lines.append(f"Kept epoch {training['best_epoch']} of {training['epochs_run']} by "
                         f"`{training['select_by']}` on the validation split; seed "
                         f"{config.get('seed')}; {training['train_seconds']} s on "
                         f"{training['machine']['platform']}.")  # fmt: skip
            lines.append("")
        lines += config_table({k: config[k] for k in _CONFIG_KEYS if k in config})
    for key, title in (("test_metrics", "Held-out metrics (ONNX Runtime)"),
                       ("test_metrics_torch", "Held-out metrics (torch)"),
                       ("val_metrics", "Validation metrics")):  # fmt: skip
        if key in card:
            lines += ["", f"## {title}", "", *metrics_table(card[key])]
            break
    parity = card.get("parity")
    if parity:
        lines += [
            "",
            f"Parity: {parity['runtime']} vs {parity['reference']} on {parity['n']} cutouts, "
            f"max |diff| {parity['max_abs_diff']:.2e} (atol {parity['atol']}).",
        ]
    cal = card.get("calibration")
    if cal:
        lines += [
            "",
            "## Score calibration",
            "",
            f"Temperature scaling, T = {cal['temperature']} (scores are "
            f"sigmoid(logit(p) / T)), fitted on `{cal.get('set')}` ({cal.get('n')} objects, "
            f"lens fraction {cal['lens_fraction']}). On held-out `{cal.get('eval_set')}` "
            f"({cal.get('n_eval')} objects): ECE {cal.get('ece_before')} -> "
            f"{cal.get('ece_after')}, NLL {cal.get('nll_before')} -> {cal.get('nll_after')} "
            f"({cal.get('ece_bins')} bins).",
        ]
    w = card.get("exported_with", {})
    lines += ["", "Exported with " + ", ".join(f"{k} {v}" for k, v in w.items()) + ".", ""]
    return "\n".join(lines)


def write_model_card_md(card: dict[str, Any], path: Path) -> Path:
    """Write :func:`render_model_card_md` of ``card`` to ``path``."""
    path.write_text(render_model_card_md(card))
    return path
