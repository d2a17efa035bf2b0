"""Markdown tables of metrics and settings, shared by training reports and model cards."""

from typing import Any

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
