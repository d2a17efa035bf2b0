"""Markdown reports: the training report of a checkpoint directory, and metric tables.

:func:`metrics_table` is shared with the model card (``MODEL_CARD.md``) written at
export (:mod:`lensfind.export.card_md`).
"""

from pathlib import Path
from typing import Any

REPORT_MD = "TRAINING_REPORT.md"

#: Metrics shown in tables, in this order, with their meaning.
METRIC_ROWS = (
    ("n", "objects"),
    ("n_lenses", "lenses among them"),
    ("auroc", "area under the ROC curve"),
    ("accuracy", "(TP + TN) / N at the threshold"),
    ("precision", "TP / (TP + FP) at the threshold"),
    ("recall", "TP / (TP + FN) at the threshold"),
    ("f1", "F1 at the threshold"),
    ("fbeta", "F-beta at the threshold (vL eq. 3.18)"),
    ("fbeta_curve_mean", "mean F-beta over thresholds 0..1 (vL eq. 3.21)"),
    ("soft_fbeta", "F-beta of soft counts (vL sec. 3.5.2)"),
    ("tpr0", "TPR before the first false positive (Metcalf+19)"),
    ("tpr10", "TPR before the tenth false positive (Metcalf+19)"),
    ("tpr_at_fpr_1e-3", "TPR at FPR <= 1e-3"),
    ("tpr_at_fpr_1e-2", "TPR at FPR <= 1e-2"),
)


def fmt(value: Any) -> str:
    """A number for a table: integers as they are, floats to 4 decimals."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def metrics_table(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines of a metric / value / meaning table (known metrics only)."""
    thr = metrics.get("threshold")
    beta = metrics.get("beta")
    lines = [f"Threshold {fmt(thr)}, beta {fmt(beta)}.", "", "| metric | value | meaning |",
             "| --- | --- | --- |"]  # fmt: skip
    lines += [f"| {k} | {fmt(metrics[k])} | {m} |" for k, m in METRIC_ROWS if k in metrics]
    return lines


def config_table(config: dict[str, Any]) -> list[str]:
    """Markdown lines of a setting / value table."""
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | `{v}` |" for k, v in config.items()]
    return lines


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
