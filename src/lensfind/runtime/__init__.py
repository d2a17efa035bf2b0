"""The model runtime, torch-free: what the engine, the probes and the benchmarks score with.

- :mod:`~lensfind.runtime.card`: model cards (``model_card.json``) and their checks.
- :mod:`~lensfind.runtime.normalisation`: input normalisations (``asinh``, ``minmax``).
- :mod:`~lensfind.runtime.bands`: a survey's band order -> a model's channel order.
- :mod:`~lensfind.runtime.calibration`, :mod:`~lensfind.runtime.calibrate`: score calibration.
- :mod:`~lensfind.runtime.scorer`: the :class:`Scorer` protocol and ONNX Runtime scorer.
- :mod:`~lensfind.runtime.tensorrt_scorer`, :mod:`~lensfind.runtime.cuda`: the GPU path.
- :mod:`~lensfind.runtime.fp16`: fp16 copies of ONNX graphs.
- :mod:`~lensfind.runtime.shipped`: the models shipped in ``lensfind/models/``.
"""

from lensfind.runtime.card import ModelCard, load_card
from lensfind.runtime.scorer import OnnxScorer, Scorer

__all__ = ["ModelCard", "OnnxScorer", "Scorer", "load_card"]
