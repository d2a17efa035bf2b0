"""Occlusion maps of a run's candidates, computed on demand with the run's ONNX model.

The maps are :func:`lensfind.probes.saliency.occlusion_map` (Wilde et al. 2022,
section 5.1: a 4x4 px patch on a 4 px grid) of an ONNX Runtime scorer, so no
torch is needed; each map is computed once per server and kept. They measure the
drop in the lens *log-odds* ``ln(p / (1 - p))``, not in probability: the top
candidates of a scan sit at p > 0.9999, where hiding even the arcs moves the
probability by ~1e-5 but the log-odds by whole units.
"""

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lensfind.inspect.run_view import InspectError, InspectRun

if TYPE_CHECKING:
    from lensfind.runtime.scorer import OnnxScorer

__all__ = ["SaliencyMaps"]


class SaliencyMaps:
    """Occlusion maps of ``run``'s candidates.

    Parameters
    ----------
    run : InspectRun
        The run whose cutouts are explained.
    model : str or Path, optional
        Model directory or shipped name; default the run's own model (its
        summary's ``model``, checked against the run's ``model_sha256``).
    """

    def __init__(self, run: InspectRun, model: str | Path | None = None) -> None:
        self.run = run
        self.model = model
        self._scorer: OnnxScorer | None = None
        self._maps: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def scorer(self) -> "OnnxScorer":
        """The ONNX Runtime scorer of the model, for the store's bands (loaded once)."""
        if self._scorer is None:
            from lensfind.errors import ModelError
            from lensfind.runtime.scorer import OnnxScorer
            from lensfind.runtime.shipped import resolve_model

            summary = self.run.summary
            name = self.model or summary.get("model")
            if not name:
                raise InspectError(f"{self.run.run_dir}: summary.json names no model; pass --model")
            try:
                card = resolve_model(name, str(summary.get("survey", "")))
            except ModelError as exc:
                raise InspectError(f"saliency needs the run's model: {exc}; pass --model") from None
            run_sha = summary.get("model_sha256")
            if self.model is None and run_sha and card.sha256 != run_sha:
                raise InspectError(
                    f"model {name!r} is not the one that scored {self.run.run_dir} "
                    f"(sha256 {card.sha256[:12]} != {run_sha[:12]}); pass --model"
                )
            if run_sha and card.sha256 != run_sha:
                print(f"warning: saliency from {card.name}, not the model that scored the run",
                      file=sys.stderr)  # fmt: skip
            self._scorer = OnnxScorer(card, threads=1, input_bands=self.run.bands)
        return self._scorer

    def occlusion(self, object_id: int) -> np.ndarray:
        """The candidate's occlusion map ``(H, W)``: drop in lens log-odds per pixel (nats)."""
        from lensfind.probes.saliency import occlusion_map
        from lensfind.runtime.calibration import logit

        oid = int(object_id)
        with self._lock:
            if oid not in self._maps:
                cutout = self.run.cutout(oid)
                scorer = self.scorer()
                self._maps[oid] = occlusion_map(lambda x: logit(scorer(x)), cutout[None])[0]
            return self._maps[oid]
