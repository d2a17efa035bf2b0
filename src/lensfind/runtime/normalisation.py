"""Input normalisation shared by training and scoring.

The network never sees raw fluxes: every cutout band is divided by that band's
sky-noise level and passed through ``arcsinh``, which keeps faint arcs near the
noise linear and compresses bright lens cores. The per-band scales travel in the
model card, so the engine applies exactly what training applied.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AsinhNormalisation:
    """``x -> arcsinh(x / (softening * scale_b))`` per band ``b``.

    Parameters
    ----------
    scale : sequence of float
        Per-band flux scale in image counts (the sky-noise sigma per pixel).
    softening : float
        Multiple of ``scale`` at which the stretch turns from linear to logarithmic.
    """

    scale: tuple[float, ...]
    softening: float = 3.0
    kind: str = "asinh"

    def __call__(self, images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalise a batch ``(N, bands, H, W)`` into ``out`` (float32, same shape).

        ``out=None`` returns a new array; ``out=images`` normalises in place.
        """
        if images.ndim != 4 or images.shape[1] != len(self.scale):
            raise ValueError(
                f"expected a batch (N, {len(self.scale)}, H, W), got shape {images.shape}"
            )
        denom = (self.softening * np.asarray(self.scale, dtype=np.float32))[None, :, None, None]
        out = np.divide(images, denom, out=out, dtype=np.float32)
        return np.arcsinh(out, out=out)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "scale": list(self.scale), "softening": self.softening}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "AsinhNormalisation":
        if data.get("kind") != "asinh":
            raise ValueError(f"unknown normalisation kind {data.get('kind')!r}")
        scale = data["scale"]
        assert isinstance(scale, Sequence)
        return cls(scale=tuple(float(s) for s in scale), softening=float(data["softening"]))  # type: ignore[arg-type]
