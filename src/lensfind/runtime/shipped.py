"""Shipped models: one directory per model with ``model.onnx`` + ``model_card.json``."""

from pathlib import Path

from lensfind.errors import ModelError
from lensfind.runtime.card import CARD_NAME, ModelCard, load_card

#: The package-data directory of shipped models (``lensfind/models/<name>/``).
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def shipped_models() -> list[str]:
    """Names of the models shipped with lensfind (their directory names)."""
    return sorted(p.parent.name for p in MODELS_DIR.glob(f"*/{CARD_NAME}"))


def resolve_model(name_or_path: str | Path | None, survey: str) -> ModelCard:
    """Load a model by directory path or shipped name; ``None`` gives the survey's default.

    An existing directory (or ``.onnx`` file beside a card) wins over a shipped
    name; ``None`` always means the shipped default, whatever the working directory.
    """
    if name_or_path is None:
        shipped = MODELS_DIR / survey
        if not (shipped / CARD_NAME).is_file():
            raise ModelError(
                f"no shipped default model for survey {survey!r} "
                f"(shipped: {', '.join(shipped_models()) or 'none'}); pass --model"
            )
        return load_card(shipped)
    path = Path(name_or_path)
    if (path / CARD_NAME).is_file():
        return load_card(path)
    if path.suffix == ".onnx" and (path.parent / CARD_NAME).is_file():
        return load_card(path.parent)
    shipped = MODELS_DIR / str(name_or_path)
    if (shipped / CARD_NAME).is_file():
        return load_card(shipped)
    raise ModelError(
        f"no model {str(name_or_path)!r}: not a model directory and not a shipped model "
        f"(shipped: {', '.join(shipped_models()) or 'none'})"
    )
