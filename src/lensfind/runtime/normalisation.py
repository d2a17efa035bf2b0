"""Input normalisations shared by training and scoring: part of every model.

The network never sees raw fluxes. Each model card names the normalisation its
network was trained with, and every scorer applies exactly that one:

* ``asinh`` (:class:`AsinhNormalisation`, lensfind's own models): every band is
  divided by its sky-noise level and passed through ``arcsinh``, which keeps
  faint arcs near the noise linear and compresses bright lens cores. The
  per-band scales travel in the card.
* ``minmax`` (:class:`MinMaxNormalisation`, Wilde et al. 2022's OU-66 / OU-200):
  every band of every cutout is scaled linearly to [0, 1] by its own minimum
  and maximum; nothing travels in the card but the kind.

All kinds share one small interface (:class:`Normalisation`) and are read back
from a card by one factory, :func:`normalisation_from_dict`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "NORMALISATION_KINDS",
    "AsinhNormalisation",
    "MinMaxNormalisation",
    "Normalisation",
    "normalisation_from_dict",
    "normalisation_of_kind",
]


@runtime_checkable
class Normalisation(Protocol):
    """What a scorer applies to raw cutouts (counts) before the network."""

    @property
    def kind(self) -> str: ...

    def __call__(self, images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalise a batch ``(N, bands, H, W)`` into ``out`` (float32, same shape)."""
        ...

    def to_dict(self) -> dict[str, object]:
        """The card's ``normalisation`` entry (``kind`` plus the parameters)."""
        ...


def _check_batch(images: np.ndarray, n_bands: int | None) -> None:
    if images.ndim != 4 or (n_bands is not None and images.shape[1] != n_bands):
        bands = "bands" if n_bands is None else str(n_bands)
        raise ValueError(f"expected a batch (N, {bands}, H, W), got shape {images.shape}")


@dataclass(frozen=True)
class AsinhNormalisation:
    """``x -> arcsinh(x / (softening * scale_b))`` per band ``b``.

    Parameters
    ----------
    scale : sequence of float
        Per-band flux scale in image counts (the sky-noise sigma per pixel), in
        the model's band order.
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
        _check_batch(images, len(self.scale))
        denom = (self.softening * np.asarray(self.scale, dtype=np.float32))[None, :, None, None]
        out = np.divide(images, denom, out=out, dtype=np.float32)
        return np.arcsinh(out, out=out)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "scale": list(self.scale), "softening": self.softening}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AsinhNormalisation":
        if data.get("kind") != "asinh":
            raise ValueError(f"not an asinh normalisation: kind {data.get('kind')!r}")
        scale = data["scale"]
        if not isinstance(scale, Sequence) or isinstance(scale, str):
            raise ValueError(f"asinh normalisation: scale must be a list, got {scale!r}")
        return cls(scale=tuple(float(s) for s in scale), softening=float(data["softening"]))


@dataclass(frozen=True)
class MinMaxNormalisation:
    """``x -> (x - min) / (max - min)`` per cutout and band (Wilde et al. 2022).

    The minimum and maximum are those of the band's own ``H x W`` pixels, so
    every band of every cutout spans exactly [0, 1] (as the authors' loader
    scales each FITS stamp). A band with one value everywhere (``max == min``)
    becomes 0 instead of the 0/0 of the formula; a NaN pixel makes its band NaN.
    """

    kind: str = "minmax"

    def __call__(self, images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalise a batch ``(N, bands, H, W)`` into ``out`` (float32, same shape).

        ``out=None`` returns a new array; ``out=images`` normalises in place.
        """
        _check_batch(images, None)
        x = np.asarray(images)
        lo = np.min(x, axis=(2, 3), keepdims=True)
        span = np.max(x, axis=(2, 3), keepdims=True) - lo
        span = np.where(span > 0, span, 1)  # a flat band is all zeros after the subtraction
        if x.dtype == np.float32:
            out = np.subtract(x, lo, out=out)
            return np.divide(out, span, out=out)
        # the subtraction in the input's precision: no cancellation when min >> max - min
        return np.divide(x - lo, span, out=out, dtype=np.float32)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MinMaxNormalisation":
        if data.get("kind") != "minmax":
            raise ValueError(f"not a minmax normalisation: kind {data.get('kind')!r}")
        extra = sorted(set(data) - {"kind"})
        if extra:
            raise ValueError(f"minmax normalisation takes no parameters, got {', '.join(extra)}")
        return cls()


_KINDS: dict[str, Any] = {"asinh": AsinhNormalisation, "minmax": MinMaxNormalisation}
#: The normalisation kinds a model card may name.
NORMALISATION_KINDS: tuple[str, ...] = tuple(_KINDS)


def normalisation_from_dict(data: Mapping[str, Any]) -> Normalisation:
    """The normalisation a card's ``normalisation`` entry describes.

    Raises
    ------
    ValueError
        An unknown ``kind`` (the message lists the known ones) or bad parameters.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"normalisation must be a mapping with a 'kind', got {data!r}")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ValueError(
            f"unknown normalisation kind {kind!r} (known: {', '.join(NORMALISATION_KINDS)})"
        )
    result: Normalisation = _KINDS[kind].from_dict(data)
    return result


def normalisation_of_kind(kind: str, sky_sigma_counts: Sequence[float]) -> Normalisation:
    """A new model's normalisation of ``kind`` for bands of these sky-noise levels.

    Parameters
    ----------
    kind : str
        One of :data:`NORMALISATION_KINDS`.
    sky_sigma_counts : sequence of float
        Sky-noise sigma per pixel of each band, image counts, in the model's
        band order (the ``asinh`` scales; ``minmax`` needs none).
    """
    if kind == "asinh":
        return AsinhNormalisation(scale=tuple(float(s) for s in sky_sigma_counts))
    if kind == "minmax":
        return MinMaxNormalisation()
    raise ValueError(
        f"unknown normalisation kind {kind!r} (known: {', '.join(NORMALISATION_KINDS)})"
    )
