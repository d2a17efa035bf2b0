"""How a reduced-precision model's sensitivity-probe scores differ from its fp32 original.

The mean correct-class score of both models on the same simulated 50/50 set,
unperturbed and under each of the paper's perturbations at the middle of its
grid; the changes are written into the reduced-precision model's card.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.probes.perturbations import PERTURBATIONS
from lensfind.probes.sensitivity import make_probe_set, score_all
from lensfind.probes.stats import correct_class_score
from lensfind.runtime.card import CARD_NAME, ModelCard
from lensfind.runtime.scorer import OnnxScorer
from lensfind.surveys import get_survey

#: the paper's image perturbations compared (the PSF probe re-simulates; left out)
COMPARED = ("colour", "blur", "noise", "annulus", "disk")


def probe_mean_changes(
    reference: ModelCard, other: ModelCard, n: int = 256, seed: int = 0
) -> dict[str, Any]:
    """Mean ``s_k`` of both models, unperturbed and per perturbation, and their change."""
    spec = get_survey(reference.survey)
    ps = make_probe_set(spec, n, seed)
    sky = np.array([b.sky_sigma_counts for b in spec.bands], dtype=np.float32)
    ref = OnnxScorer(reference, threads=2, input_bands=spec.band_names)
    new = OnnxScorer(other, threads=2, input_bands=spec.band_names)
    cases: dict[str, tuple[float, np.ndarray]] = {"none": (0.0, ps.images)}
    for name in COMPARED:
        pert = PERTURBATIONS[name]
        p = pert.strengths[len(pert.strengths) // 2]
        cases[name] = (p, pert.apply(ps.images, p, seed=seed, sky_sigma=sky, fill="zero"))
    out: dict[str, Any] = {"n": n, "seed": seed, "set": "simulated 50/50", "probes": {}}
    for name, (p, images) in cases.items():
        a = correct_class_score(score_all(ref, images), ps.is_lens).mean()
        b = correct_class_score(score_all(new, images), ps.is_lens).mean()
        out["probes"][name] = {"strength": p, "mean_s_k_reference": float(a),
                               "mean_s_k": float(b), "change": float(b - a)}  # fmt: skip
    return out


def record_probe_changes(reference: ModelCard, model_dir: Path, other: ModelCard) -> dict:
    """Measure :func:`probe_mean_changes` and store it in ``model_dir``'s card."""
    changes = probe_mean_changes(reference, other)
    path = model_dir / CARD_NAME
    card = json.loads(path.read_text())
    card["probe_mean_score_change"] = {"reference_sha256": reference.sha256, **changes}
    path.write_text(json.dumps(card, indent=2))
    return changes
