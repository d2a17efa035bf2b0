"""Export (ONNX + model cards) and the runtime scorers used by the engine.

``card`` and ``scorer`` need no torch; ``onnx_export`` needs the ``train`` extra.
"""

from lensfind.export.card import ModelCard, load_card
from lensfind.export.scorer import OnnxScorer, Scorer

__all__ = ["ModelCard", "OnnxScorer", "Scorer", "load_card"]
