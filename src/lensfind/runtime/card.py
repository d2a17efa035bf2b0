"""Model cards: what a model file is, what it expects, and how it was made.

A model is a directory holding ``model.onnx`` and ``model_card.json``. Loading
checks the ONNX file against the sha256 recorded in the card.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensfind.errors import ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.calibration import Calibration
from lensfind.runtime.normalisation import Normalisation, normalisation_from_dict

if TYPE_CHECKING:
    from lensfind.surveys.spec import SurveySpec

CARD_NAME = "model_card.json"
ONNX_NAME = "model.onnx"


@dataclass(frozen=True)
class ModelCard:
    """The parts of a model card the runtime relies on; ``raw`` keeps the rest.

    ``bands`` are in the network's channel order and ``normalisation`` is the
    input convention it was trained with (:mod:`lensfind.runtime.normalisation`).
    """

    name: str
    survey: str
    bands: tuple[str, ...]
    input_shape: tuple[int, int, int]
    normalisation: Normalisation
    threshold: float
    sha256: str
    onnx_path: Path
    raw: dict[str, Any]

    @property
    def directory(self) -> Path:
        return self.onnx_path.parent

    @property
    def pixel_scale_arcsec(self) -> float | None:
        """The pixel grid (arcsec/px) of its input, where the card says: its ``input``, or
        the sets it was trained or tested on. A scan puts the survey on this grid."""
        training = self.raw.get("training") or {}
        for entry in (self.raw.get("input"), training.get("train_set"), self.raw.get("test_set")):
            if isinstance(entry, dict) and entry.get("pixel_scale_arcsec"):
                return float(entry["pixel_scale_arcsec"])
        return None

    def on_input_grid(self, spec: "SurveySpec") -> "SurveySpec":
        """``spec`` on the pixel grid of this model's input (e.g. Euclid's NISP grid for
        OU-66), or ``spec`` itself when the model takes the survey's own cutouts."""
        scale = self.pixel_scale_arcsec
        if self.input_shape[1] != spec.cutout_px and scale:
            return spec.on_grid(scale, self.input_shape[1])
        return spec

    @property
    def calibration(self) -> "Calibration | None":
        """The card's score calibration (``calibration`` entry), or None."""
        try:
            return Calibration.from_card(self.raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{self.name}: bad calibration in its model card ({exc})") from None

    def calibrate(self, p: np.ndarray) -> np.ndarray:
        """Raw network probabilities -> the probabilities scorers return.

        The one place where the card's calibration is applied: every scorer
        (ONNX Runtime, TensorRT, torch) passes its network output through it.
        Without a calibration entry ``p`` is returned unchanged.
        """
        cal = self.calibration
        return p if cal is None else cal.apply(p)

    def uncalibrated(self) -> "ModelCard":
        """This card without its calibration (scorers of it return raw network outputs)."""
        raw = {k: v for k, v in self.raw.items() if k != "calibration"}
        return ModelCard(**{**self.__dict__, "raw": raw})

    def checked_input_bands(self, input_bands: Sequence[str] | None) -> tuple[str, ...]:
        """``input_bands`` (default: the card's bands), checked to hold every band of the card.

        Raises :class:`ModelError` naming the model and the missing band.
        """
        if input_bands is None:
            return self.bands
        bands = tuple(input_bands)
        band_order(bands, self.bands, f"model {self.name}")
        return bands

    def check_cutout_shape(self, input_bands: Sequence[str], item_shape: Sequence[int]) -> None:
        """Check cutouts of ``item_shape`` ``(bands, H, W)`` with bands ``input_bands`` fit.

        Raises :class:`ModelError` naming the model, for a missing band or another size.
        """
        self.checked_input_bands(input_bands)
        if tuple(item_shape) != (len(input_bands), *self.input_shape[1:]):
            raise ModelError(
                f"model {self.name} takes {', '.join(self.bands)} at "
                f"{self.input_shape[1]}x{self.input_shape[2]} px; the cutouts are "
                f"{', '.join(input_bands)} at {'x'.join(map(str, item_shape[1:]))} px"
            )

    def normalised_input(
        self,
        cutouts: np.ndarray,
        overwrite: bool = False,
        input_bands: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Check raw cutouts (counts) against the input shape, reorder and normalise them.

        Returns float32 ``(N, bands, H, W)`` as the model's graph takes it;
        raises :class:`ModelError` naming the model for a wrong shape or bands.
        ``input_bands`` names the bands of ``cutouts`` in their order (default:
        the card's); they are reordered (and selected) to the card's order.
        ``overwrite=True`` normalises C-contiguous float32 ``cutouts`` in place
        (no new array; the caller's counts are gone).
        """
        order = None
        n_in = self.input_shape[0]
        if input_bands is not None:
            order = band_order(input_bands, self.bands, f"model {self.name}")
            n_in = len(input_bands)
        expected = (n_in, *self.input_shape[1:])
        if cutouts.ndim != 4 or tuple(cutouts.shape[1:]) != tuple(expected):
            raise ModelError(
                f"{self.name}: expected cutouts (N, {', '.join(map(str, expected))}), "
                f"got {tuple(cutouts.shape)}"
            )
        if order is not None:  # a new array in the card's order: normalise it in place
            x = take_bands(np.asarray(cutouts, dtype=np.float32), order)
            return self.normalisation(x, out=x)
        x = np.ascontiguousarray(cutouts, dtype=np.float32)
        return self.normalisation(x, out=x if overwrite and x is cutouts else None)


def load_card(model_dir: Path) -> ModelCard:
    """Read ``model_dir/model_card.json`` and verify the ONNX file's checksum."""
    card_path = model_dir / CARD_NAME
    try:
        raw = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{card_path}: no model card") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{card_path}: not valid JSON ({exc})") from None
    try:
        onnx_path = model_dir / raw["onnx_file"]
        card = ModelCard(
            name=raw["name"],
            survey=raw["survey"],
            bands=tuple(raw["bands"]),
            input_shape=tuple(raw["input_shape"]),
            normalisation=normalisation_from_dict(raw["normalisation"]),
            threshold=float(raw["threshold"]),
            sha256=raw["sha256"],
            onnx_path=onnx_path,
            raw=raw,
        )
        card.calibration  # noqa: B018 - a bad calibration entry fails at load
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{card_path}: missing or bad field ({exc})") from None
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: model file named by {card_path} is missing")
    actual = sha256_of(onnx_path)
    if actual != card.sha256:
        raise ModelError(
            f"{onnx_path}: sha256 {actual[:12]}... does not match its card ({card.sha256[:12]}...)"
        )
    return card
