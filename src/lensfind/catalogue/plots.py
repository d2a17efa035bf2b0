"""Plots of a run's candidates: expected purity per threshold, lenses found per candidate."""

from pathlib import Path
from typing import Any

import numpy as np

from lensfind.plotting import figure


def plot_purity(purity: dict[str, Any], posterior_by_rank: np.ndarray, path: Path) -> Path:
    """Expected purity per threshold, and expected lenses found per candidate inspected.

    ``purity`` is the ``expected_purity`` entry of a run's summary;
    ``posterior_by_rank`` the candidates' posterior lens probabilities, best first.
    """
    rows = purity["thresholds"]
    fig = figure(figsize=(9.5, 3.8))
    left, right = fig.subplots(1, 2)
    x = np.arange(len(rows))
    for key, label in (("expected_purity", "from calibrated scores"),
                       ("expected_purity_selection", "from the selection function")):  # fmt: skip
        y = [np.nan if r.get(key) is None else r[key] for r in rows]
        if any(key in r for r in rows):
            left.plot(x, y, marker="o", ms=4, label=label)
    left.set_xticks(x, [f"{r['threshold']:g}\n({r['n_candidates']})" for r in rows], fontsize=8)
    left.set(xlabel="threshold (candidates)", ylabel="expected purity", ylim=(-0.02, 1.02),
             title=f"prior lens rate {purity['prior_lens_rate']:g}")  # fmt: skip
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    found = np.cumsum(np.asarray(posterior_by_rank, dtype=float))
    k = np.arange(1, found.size + 1)
    right.plot(k, found, label="expected lenses found")
    right.plot(k, k, color="0.6", ls="--", lw=1, label="every candidate a lens")
    right.set(xlabel="candidates inspected (best first)", ylabel="expected lenses found")
    if found.size:
        right.set_ylim(0, max(found[-1], 1.0) * 1.1)
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
