"""The Markdown training report of a checkpoint directory (``TRAINING_REPORT.md``).

Its tables come from :mod:`lensfind.tables`, shared with ``MODEL_CARD.md``
(:mod:`lensfind.runtime.card_md`).
"""

from pathlib import Path
from typing import Any

from lensfind.tables import config_table, fmt, metrics_table

REPORT_MD = "TRAINING_REPORT.md"


def write_training_report(report: dict[str, Any], path: Path) -> Path:
    """Write the Markdown summary of a training run (``TRAINING_REPORT.md``)."""
    ts = report["train_set"]
    lines = [
        f"# Training report: {report['arch']} on {report['survey']}",
        "",
        "## Data",
        "",
        f"- training set: `{Path(ts['path']).name}` (seed {ts['seed']}, {ts['n']} objects; "
        f"{ts['n_train']} for training, {ts['n_val']} for validation; positives: "
        f"{ts.get('positives', 'simulated')})",
    ]
    if "test_set" in report:
        t = report["test_set"]
        lines.append(f"- test set: `{Path(t['path']).name}` (seed {t['seed']}, {t['n']} objects)")
    lines += [
        f"- bands {', '.join(report['bands'])}, input {report['input_shape']}, "
        f"normalisation {report['normalisation']['kind']}",
        "",
        "## Selection",
        "",
        f"Kept epoch {report['best_epoch']} of {report['epochs_run']} by "
        f"`{report['select_by']}` = {fmt(report['best_value'])}"
        f"{' (stopped early)' if report['stopped_early'] else ''}; training took "
        f"{report['train_seconds']} s.",
        "",
        "| epoch | train loss | val loss | val AUROC | val F-beta | F-beta curve mean "
        "| soft F-beta | kept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for h in report["history"]:
        lines.append(
            f"| {h['epoch']} | {fmt(h['train_loss'])} | {fmt(h['val_loss'])} | "
            f"{fmt(h['val_auroc'])} | {fmt(h['val_fbeta'])} | {fmt(h['fbeta_curve_mean'])} | "
            f"{fmt(h['soft_fbeta'])} | {'*' if h['epoch'] == report['best_epoch'] else ''} |"
        )
    if "test_metrics_torch" in report:
        lines += ["", "## Held-out test metrics (torch)", ""]
        lines += metrics_table(report["test_metrics_torch"])
    plots = report.get("plots", {})
    if plots:
        lines += ["", f"## Plots ({plots.get('evaluated_on', '')})", ""]
        lines += [f"![{k}]({v})" for k, v in plots.items() if k != "evaluated_on"]
    lines += ["", "## Configuration", "", *config_table(report["config"])]
    m = report["machine"]
    lines += ["", f"Machine: {m['platform']}, Python {m['python']}, torch {m['torch']}, "
              f"lensfind {m['lensfind']}.", ""]  # fmt: skip
    path.write_text("\n".join(lines))
    return path
