"""The scoring protocol and its ONNX Runtime implementation.

A :class:`Scorer` takes raw cutouts in image counts, float32 ``(N, bands, H, W)``
in the band order of its model card, and returns lens probabilities ``(N,)``.
Normalisation is part of the scorer, so probes and the engine can perturb
physical images and any model applies its own preprocessing.
"""

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from lensfind.errors import ModelError
from lensfind.export.card import ModelCard, load_card


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns a batch of cutouts into lens probabilities."""

    card: ModelCard

    def __call__(self, cutouts: np.ndarray) -> np.ndarray: ...


class OnnxScorer:
    """Score cutouts with ONNX Runtime.

    Parameters
    ----------
    model : ModelCard or path
        A loaded card, or a model directory.
    threads : int
        Intra-op threads of the session (1 per Dask worker process is right for
        CPU scans where workers already fill the cores).
    providers : list of str, optional
        ONNX Runtime execution providers; default CPU.
    """

    def __init__(
        self, model: ModelCard | Path, threads: int = 1, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        self.card = model if isinstance(model, ModelCard) else load_card(Path(model))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = providers or ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(
            str(self.card.onnx_path), sess_options=opts, providers=providers
        )
        missing = [p for p in providers if p not in self._session.get_providers()]
        if missing:
            raise ModelError(f"{self.card.onnx_path}: execution provider(s) {missing} not active")
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def __call__(self, cutouts: np.ndarray) -> np.ndarray:
        expected = self.card.input_shape
        if cutouts.ndim != 4 or tuple(cutouts.shape[1:]) != expected:
            raise ModelError(
                f"{self.card.name}: expected cutouts (N, {', '.join(map(str, expected))}), "
                f"got {tuple(cutouts.shape)}"
            )
        if len(cutouts) == 0:
            return np.empty(0, dtype=np.float32)
        x = self.card.normalisation(np.ascontiguousarray(cutouts, dtype=np.float32))
        (p,) = self._session.run([self._output], {self._input: x})
        return np.asarray(p, dtype=np.float32).reshape(-1)
