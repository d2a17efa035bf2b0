"""Plots of the rare-lens probe: recall bars with Wilson 95% intervals, score
histograms and ECDFs per class."""

from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.plotting import pyplot
from lensfind.probes.plots import _col


def plot_rare_recall(summary: pa.Table, path: Path) -> Path:
    """Recall per class (false-positive rate for non-lenses) per model, with error bars."""
    plt = pyplot()
    classes = list(dict.fromkeys(_col(summary, "class").tolist()))
    models = list(dict.fromkeys(_col(summary, "model").tolist()))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 * len(classes) + 2, 3.6))
    for i, m in enumerate(models):
        sel = _col(summary, "model") == m
        f, lo, hi = (_col(summary, k)[sel] for k in ("frac_above", "ci_lo", "ci_hi"))
        x = np.arange(len(classes)) + (i - (len(models) - 1) / 2) * width
        ax.bar(x, f, width, yerr=np.clip([f - lo, hi - f], 0, None), capsize=3, label=m)
    ax.set_xticks(np.arange(len(classes)), classes)
    thr = float(_col(summary, "threshold")[0])
    ax.set_ylabel(f"fraction with p >= {thr:g}")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_rare_scores(scores: pa.Table, summary: pa.Table, path: Path) -> Path:
    """Score histogram and ECDF per class (first model), with the threshold."""
    plt = pyplot()
    model = _col(summary, "model")[0]
    thr = float(_col(summary, "threshold")[0])
    sel = _col(scores, "model") == model
    cls, s = _col(scores, "class")[sel], _col(scores, "score")[sel].astype(float)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(0, 1, 26)
    for name in dict.fromkeys(cls.tolist()):
        v = np.sort(s[cls == name])
        a.hist(v, bins=bins, histtype="step", lw=1.5, label=name)
        b.plot(v, np.arange(1, v.size + 1) / v.size, label=name)
    for ax in (a, b):
        ax.axvline(thr, color="0.4", ls="--", lw=1)
        ax.set_xlabel(f"lens probability ({model})")
        ax.grid(alpha=0.3)
    a.set_ylabel("objects")
    a.set_yscale("log")
    b.set_ylabel("cumulative fraction")
    b.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
