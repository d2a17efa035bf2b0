"""Torch weights beside the ONNX model, for methods that need gradients (saliency).

Weights are stored as ``weights.npz`` (plain arrays, loaded with
``allow_pickle=False``: nothing is unpickled) and recorded in the model card
with their sha256; loading checks it.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lensfind.errors import ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ModelCard

if TYPE_CHECKING:
    import torch

WEIGHTS_NAME = "weights.npz"


def save_weights(model: "torch.nn.Module", path: Path) -> dict[str, str]:
    """Write ``model``'s state dict as ``.npz``; return the card entry (file, sha256)."""
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return {"file": path.name, "sha256": sha256_of(path), "format": "npz state dict"}


def load_torch_model(card: ModelCard) -> "torch.nn.Module":
    """The card's network in torch (eval mode), from its checked ``weights.npz``.

    Raises :class:`ModelError` when the card has no torch weights or the file
    does not match its recorded sha256.
    """
    from lensfind.training._torch import torch
    from lensfind.training.architectures import build_model

    entry = card.raw.get("torch_weights")
    if not entry:
        raise ModelError(f"{card.name}: the model card lists no torch weights ({WEIGHTS_NAME})")
    path = card.directory / entry["file"]
    if not path.is_file():
        raise ModelError(f"{path}: torch weights named by the model card are missing")
    if sha256_of(path) != entry["sha256"]:
        raise ModelError(f"{path}: sha256 does not match the model card")
    bands, size, _ = card.input_shape
    model = build_model(card.raw["arch"], bands=bands, size_px=size)
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k].copy()) for k in npz.files}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {card.raw['arch']} ({exc})") from None
    return model.eval()


class TorchScorer:
    """A :class:`~lensfind.runtime.scorer.Scorer` running the card's torch weights.

    Takes raw cutouts in counts like every scorer (normalisation included) and
    returns lens probabilities; for probes that compare runtimes, and for
    gradient methods that need the same network as the ONNX file.

    Parameters
    ----------
    card : ModelCard
        A model whose card lists ``torch_weights``.
    device : str
        Torch device (``"cpu"``, ``"cuda"``).
    input_bands : sequence of str, optional
        Band names of the cutouts given, in their order (e.g. the survey's);
        reordered to the card's ``bands``. Default: the card's order.
    """

    def __init__(
        self, card: ModelCard, device: str = "cpu", input_bands: Sequence[str] | None = None
    ) -> None:
        self.card = card
        self.device = device
        self.input_bands = card.checked_input_bands(input_bands)
        self.model = load_torch_model(card).to(device)

    def __call__(self, cutouts: np.ndarray, overwrite: bool = False) -> np.ndarray:
        from lensfind.training._torch import torch

        x = self.card.normalised_input(cutouts, overwrite, self.input_bands)
        with torch.inference_mode():
            z = self.model(torch.from_numpy(x).to(self.device))
            return self.card.calibrate(torch.sigmoid(z).float().cpu().numpy().reshape(-1))
