"""Plots of probe results in the style of Jacobs et al. (2022): mean correct-class
score against the parameter with its standard error as error bars and the
population standard deviation as a band (clipped to [0, 1]), the 0.5 line, one
curve per model, one panel per test set; heat maps for 2-D surfaces;
completeness curves."""

import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa

from lensfind.plotting import figure, pyplot
from lensfind.probes.sensitivity import TEST_SETS, ProbeResult

_TITLES = {"lenses": "lenses", "nonlenses": "non-lenses", "mix": "50/50 mix"}


def _col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table[name].to_pylist())


def plot_curves(result: ProbeResult, path: Path) -> Path:
    """Mean ``s_k`` against the bin centre or strength, per test set and model.

    Error bars: the standard error of the mean (``sem``); shaded: mean +- the
    population standard deviation, clipped to [0, 1] (``s_k`` cannot leave it).
    Bins under the probe's ``min_count`` are left out. Long axis labels are
    wrapped and dense tick labels rotated, so neighbouring panels never overlap.
    """
    plt = pyplot()
    t = result.table
    x = _col(t, "p") if "p" in t.column_names else _col(t, "centre")
    sets = [s for s in TEST_SETS if s in set(_col(t, "test_set").tolist())]
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, ts in zip(axes[0], sets, strict=True):
        for model in dict.fromkeys(_col(t, "model").tolist()):
            sel = (_col(t, "model") == model) & (_col(t, "test_set") == ts)
            if "ok" in t.column_names:
                sel &= _col(t, "ok").astype(bool)
            xs, mean, std = x[sel], _col(t, "mean")[sel], _col(t, "std")[sel]
            order = np.argsort(xs, kind="stable")
            xs, mean, std, sem = xs[order], mean[order], std[order], _col(t, "sem")[sel][order]
            line = ax.errorbar(xs, mean, yerr=np.nan_to_num(sem), marker="o", ms=3, capsize=2,
                               label=model)  # fmt: skip
            ax.fill_between(xs, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1),
                            color=line[0].get_color(), alpha=0.15, lw=0)  # fmt: skip
        ax.axhline(0.5, color="0.4", lw=1, ls="--")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(textwrap.fill(result.x_label, 40), fontsize=9)
        if len(np.unique(x)) > 6:
            ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.set_title(_TITLES.get(ts, ts))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean correct-class score $s_k$\n(bars: std. error; band: std.)")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"sensitivity to {result.name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_surface(result: ProbeResult, path: Path, value: str = "mean") -> Path:
    """Heat map of a 2-D surface (first model), ``value`` per cell, with counts written in."""
    plt = pyplot()
    t = result.table
    model = _col(t, "model")[0]
    sel = _col(t, "model") == model
    xs, ys = _col(t, "centre")[sel], _col(t, "y_centre")[sel]
    v, n = _col(t, value)[sel], _col(t, "n")[sel]
    ux, uy = np.unique(xs), np.unique(ys)
    grid = np.full((len(uy), len(ux)), np.nan)
    for xi, yi, vi, ni in zip(xs, ys, v, n, strict=True):
        if ni > 0:
            grid[np.searchsorted(uy, yi), np.searchsorted(ux, xi)] = vi
    fig, ax = plt.subplots(figsize=(6, 4.5))
    categories = result.meta.get("x_categories")
    if categories:  # one column per category, labelled
        grid = np.full((len(uy), len(categories)), np.nan)
        for xi, yi, vi, ni in zip(xs, ys, v, n, strict=True):
            if ni > 0:
                grid[np.searchsorted(uy, yi), round(xi)] = vi
        x_lo, x_hi = -0.5, len(categories) - 0.5
    else:
        x_lo, x_hi = float(ux.min()), float(ux.max())
    extent = (x_lo, x_hi, float(uy.min()), float(uy.max()))
    im = ax.imshow(grid, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis",
                   extent=extent, interpolation="nearest")  # fmt: skip
    if categories:
        ax.set_xticks(range(len(categories)), categories)
    fig.colorbar(im, ax=ax, label=f"{value} ({model})")
    ax.set_xlabel(str(result.meta.get("x", result.x_label)))
    ax.set_ylabel(str(result.meta.get("y", "")))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: Axis labels (with units) of the selection-function parameters.
LABELS = {
    "theta_e_arcsec": "Einstein radius θ_E [arcsec]",
    "mag_g_source": "lensed source g [AB mag]",
    "mag_g_source_intrinsic": "unlensed source g [AB mag]",
    "mag_r_lens": "deflector r [AB mag]",
    "psf_fwhm_arcsec": "seeing FWHM [arcsec]",
}


def plot_completeness(
    table: pa.Table, path: Path, threshold: float, title: str = "", min_count: int = 30
) -> Path:
    """Completeness (Wilson 95% intervals) against each parameter, n per bin above it.

    Bins with fewer than ``min_count`` injections are drawn hollow.
    """
    params = list(dict.fromkeys(_col(table, "parameter").tolist()))
    fig = figure(figsize=(3.9 * len(params), 3.9))
    axes = fig.subplots(1, len(params), squeeze=False)
    for ax, param in zip(axes[0], params, strict=True):
        sel = (_col(table, "parameter") == param) & (_col(table, "n") > 0)
        x, c = _col(table, "centre")[sel], _col(table, "completeness")[sel]
        lo, hi = _col(table, "ci_lo")[sel], _col(table, "ci_hi")[sel]
        n = _col(table, "n")[sel]
        ax.errorbar(x, c, yerr=np.clip([c - lo, hi - c], 0, None), fmt="none", capsize=2,
                    color="tab:blue")  # fmt: skip
        full = n >= min_count
        ax.plot(x[full], c[full], "o", ms=4, color="tab:blue", label=f"n >= {min_count}")
        ax.plot(x[~full], c[~full], "o", ms=4, mfc="white", color="tab:blue",
                label=f"n < {min_count}")  # fmt: skip
        for xi, ni in zip(x, n, strict=True):
            ax.annotate(str(int(ni)), (xi, 1.02), ha="center", fontsize=6, color="0.35")
        ax.set_ylim(-0.05, 1.1)
        ax.set_xlabel(LABELS.get(param, param))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"completeness (p >= {threshold:g})")
    axes[0][0].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title + " (numbers: injections per bin)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_completeness_map(
    injections: pa.Table,
    path: Path,
    threshold: float,
    title: str = "",
    x: str = "theta_e_arcsec",
    y: str = "mag_g_source",
    widths: tuple[float, float] = (0.25, 0.5),
) -> Path:
    """2-D completeness map (``x`` by ``y``), the number of injections in each cell."""
    xv, yv = _col(injections, x).astype(float), _col(injections, y).astype(float)
    hit = _col(injections, "score").astype(float) >= threshold
    ok = np.isfinite(xv) & np.isfinite(yv)
    xe = np.arange(np.floor(xv[ok].min() / widths[0]) * widths[0], xv[ok].max() + widths[0],
                   widths[0])  # fmt: skip
    ye = np.arange(np.floor(yv[ok].min() / widths[1]) * widths[1], yv[ok].max() + widths[1],
                   widths[1])  # fmt: skip
    n, _, _ = np.histogram2d(xv[ok], yv[ok], bins=[xe, ye])
    k, _, _ = np.histogram2d(xv[ok], yv[ok], bins=[xe, ye], weights=hit[ok].astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, k / n, np.nan)
    fig = figure(figsize=(6.4, 4.8))
    ax = fig.subplots()
    mesh = ax.pcolormesh(xe, ye, frac.T, vmin=0, vmax=1, cmap="viridis", shading="flat")
    for i in range(len(xe) - 1):
        for j in range(len(ye) - 1):
            if n[i, j]:
                ax.text(0.5 * (xe[i] + xe[i + 1]), 0.5 * (ye[j] + ye[j + 1]), str(int(n[i, j])),
                        ha="center", va="center", fontsize=6,
                        color="k" if frac[i, j] > 0.6 else "w")  # fmt: skip
    fig.colorbar(mesh, ax=ax, label=f"completeness (p >= {threshold:g})")
    ax.set(xlabel=LABELS.get(x, x), ylabel=LABELS.get(y, y))
    ax.invert_yaxis()  # bright sources at the top
    if title:
        ax.set_title(title.replace(": ", ":\n", 1) + "\n(numbers: injections per cell)",
                     fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
