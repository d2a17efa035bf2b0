"""Published torch weights -> a lensfind model directory (``engine export --weights``).

A state dict written by another project (e.g. Wilde et al.'s ``OU_66_Weights.pt``)
becomes ``model.onnx`` + ``model_card.json`` + ``weights.npz``: the registry's
architecture is built, the weights are loaded strictly, and the card records the
architecture's own input convention (its channel order and normalisation, see
:mod:`lensfind.training.architectures`), so every scorer feeds the network what
its authors did. The file is read with ``torch.load(weights_only=True)``: nothing
in it is unpickled but tensors and plain containers.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lensfind.errors import ConfigError, ModelError
from lensfind.export.onnx_export import base_card, export_probability_graph, record_test_metrics
from lensfind.export.parity import finish_card, random_sample, write_card
from lensfind.export.torch_weights import WEIGHTS_NAME, save_weights
from lensfind.hashing import sha256_of
from lensfind.runtime.card import ONNX_NAME, load_card
from lensfind.runtime.normalisation import NORMALISATION_KINDS
from lensfind.runtime.scorer import OnnxScorer
from lensfind.surveys.registry import get_survey
from lensfind.surveys.spec import SurveySpec

#: How many missing/unexpected key names an error shows before "... (+N more)".
SHOWN_KEYS = 6


def load_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a torch state dict file, read with ``weights_only=True``.

    Raises
    ------
    ModelError
        The file is missing, not a torch file, or not a mapping of names to tensors.
    """
    from lensfind.training._torch import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a torch weights file ({first})") from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelError(f"{path}: not a state dict (a mapping of parameter names to tensors)")
    return dict(state)


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")


def check_state_dict(model: Any, state: Mapping[str, Any], path: Path, arch: str) -> None:
    """Raise a one-line :class:`ModelError` unless ``state`` fits ``model`` exactly.

    The message names the missing and unexpected keys, or the first tensors
    whose shapes differ.
    """
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    if missing or unexpected:
        parts = [f"missing keys {_names(missing)}"] if missing else []
        parts += [f"unexpected keys {_names(unexpected)}"] if unexpected else []
        raise ModelError(f"{path}: weights do not fit {arch}: {'; '.join(parts)}")
    shapes = [
        f"{k} {tuple(state[k].shape)} (the {arch} layer is {tuple(v.shape)})"
        for k, v in want.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if shapes:
        raise ModelError(f"{path}: weights do not fit {arch}: shape of {_names(shapes)}")


def model_input_spec(
    arch: str, survey: SurveySpec | str, pixel_scale_arcsec: float | None = None
) -> SurveySpec:
    """The survey as an ``arch`` network sees it: its bands in order, its cutout size.

    Parameters
    ----------
    arch : str
        Registry name.
    survey : SurveySpec or str
        The survey the weights are for (a registry name is looked up).
    pixel_scale_arcsec : float, optional
        Put every band on this grid (arcsec/px; e.g. 0.3 for OU-66's NISP grid),
        which sets the sky noise per pixel of an ``asinh`` normalisation.
    """
    from lensfind.training.architectures import ARCHITECTURES, input_bands

    info = ARCHITECTURES.get(arch)
    if info is None:
        raise ConfigError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    spec = get_survey(survey) if isinstance(survey, str) else survey
    size = info.size_px if info.size_rule == "exact" else spec.cutout_px
    spec = spec.select(input_bands(arch, spec.band_names), cutout_px=size)
    if pixel_scale_arcsec is not None:
        spec = spec.on_grid(pixel_scale_arcsec, size)
    return spec


def export_weights(
    weights: Path,
    arch: str,
    survey: SurveySpec | str,
    out_dir: Path,
    name: str | None = None,
    test_set: Path | None = None,
    threshold: float = 0.5,
    normalisation: str = "arch",
    pixel_scale_arcsec: float | None = None,
    opset: int = 17,
) -> dict:
    """Turn a torch state dict of ``arch`` into a lensfind model directory ``out_dir``.

    Parameters
    ----------
    weights : Path
        A state dict file (``torch.save(model.state_dict(), ...)``).
    arch : str
        Registry architecture the weights belong to (loaded with ``strict=True``).
    survey : SurveySpec or str
        Survey recorded in the card; the network takes its bands in the
        architecture's order (:func:`~lensfind.training.architectures.input_bands`).
    out_dir : Path
        Model directory to write (``model.onnx``, ``model_card.json``,
        ``weights.npz``, ``MODEL_CARD.md``).
    name : str, optional
        Model name (default ``<arch>-<survey>-<weights file stem>``).
    test_set : Path, optional
        Labelled set whose ONNX Runtime metrics the card records.
    threshold : float
        Decision threshold recorded in the card.
    normalisation : {"arch", "asinh", "minmax"}
        Input normalisation; ``arch`` is the architecture's own.
    pixel_scale_arcsec : float, optional
        Common pixel grid of the input, arcsec/px (see :func:`model_input_spec`).
    opset : int
        ONNX opset.

    Returns
    -------
    dict
        The card, with its torch / ONNX Runtime parity record.

    Raises
    ------
    ModelError
        The weights cannot be read or do not fit ``arch`` (one line naming the keys).
    ConfigError
        Unknown architecture or normalisation, or a survey without its bands.
    """
    from lensfind.training.architectures import ARCHITECTURES, build_model
    from lensfind.training.data import normalisation_for

    spec = model_input_spec(arch, survey, pixel_scale_arcsec)
    kind = ARCHITECTURES[arch].normalisation if normalisation == "arch" else normalisation
    if kind not in NORMALISATION_KINDS:
        raise ConfigError(
            f"normalisation must be arch or one of {', '.join(NORMALISATION_KINDS)}, got {kind!r}"
        )
    if kind == "asinh":
        spec.pixel_scale_arcsec  # noqa: B018 - asinh scales need one grid (a clear error)
    weights = Path(weights)
    state = load_state_dict(weights)
    shape = (len(spec.bands), spec.cutout_px, spec.cutout_px)
    model = build_model(arch, spec).eval()
    check_state_dict(model, state, weights, arch)
    model.load_state_dict(state, strict=True)
    norm = normalisation_for(spec, kind)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_NAME
    wrapped = export_probability_graph(model, shape, onnx_path, opset)
    training = {"source": "published weights (not trained by lensfind)",
                "weights_file": weights.name, "weights_sha256": sha256_of(weights),
                "paper": ARCHITECTURES[arch].paper}  # fmt: skip
    card = base_card(
        name=name or f"{arch}-{spec.name}-{weights.stem}", arch=arch, survey=spec.name,
        bands=spec.band_names, input_shape=shape, norm=norm, onnx_path=onnx_path,
        threshold=threshold, opset=opset, training=training,
    )  # fmt: skip
    if pixel_scale_arcsec is not None:  # the grid a scan puts the survey on for this model
        card["input"]["pixel_scale_arcsec"] = pixel_scale_arcsec
    card["torch_weights"] = save_weights(model, out_dir / WEIGHTS_NAME)
    write_card(card, out_dir)
    scorer = OnnxScorer(load_card(out_dir), threads=2)
    if test_set is not None:
        sample = record_test_metrics(card, scorer, test_set, threshold)
    else:
        sample = random_sample(shape)
    return finish_card(card, out_dir, wrapped, norm, sample, scorer, onnx_path)
