"""Reduced-precision models: fp16 graphs and static INT8 (Q/DQ) quantisation.

:func:`export_precision` turns a model directory into a new, complete one
(``model.onnx`` + ``model_card.json``) whose graph runs in fp16 or INT8 while
keeping float32 input and output, so every scorer and the engine use it
unchanged. The new card records the precision, its parity with the fp32 model
(max |Δp| on fixed simulated inputs, against a stated tolerance) and the change
of AUROC on a simulated held-out set; the export refuses a model outside them.

Both forms are what TensorRT 10 and 11 build *strongly typed* engines from
(TensorRT 11 dropped the fp16/int8 builder flags and implicit INT8 calibration):
the precision lives in the graph. Needs the ``onnx`` package (``lensfind[train]``
or ``lensfind[test]``).
"""

import functools
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensfind import __version__
from lensfind.errors import ConfigError, ModelError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import CARD_NAME, ONNX_NAME, ModelCard, load_card
from lensfind.runtime.fp16 import card_precision, convert_fp16, require_onnx

if TYPE_CHECKING:
    pass

PRECISIONS = ("fp32", "fp16", "int8")
#: Largest max |p - p_fp32| accepted on the parity inputs, per precision.
PARITY_ATOL = {"fp16": 1e-2, "int8": 0.2}
#: Largest drop of AUROC (fp32 minus this precision) accepted on the held-out set.
AUROC_DROP_MAX = {"fp16": 1e-3, "int8": 5e-3}
#: Seeds of the simulated sets (the shipped model trained on seed 1, tested on 2).
CALIBRATION_SEED, PARITY_SEED, EVAL_SEED = 11, 12, 13


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger; keep the CLI clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(
    model_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    *,
    symmetric: bool = True,
    float_input_layer: bool = True,
    per_channel: bool = True,
    batch: int = 64,
) -> dict[str, Any]:
    """Static INT8 quantisation (Q/DQ format) of a float32 ONNX graph.

    Parameters
    ----------
    model_path, out_path : Path
        The float32 graph, and where the quantised graph goes.
    calibration : ndarray (N, bands, H, W)
        Calibration cutouts, already normalised as the graph expects.
    symmetric : bool
        Symmetric int8 activations (zero point 0): what TensorRT accepts.
    float_input_layer : bool
        Keep the layers that read the graph input in float: the asinh-normalised
        input has heavy tails that one int8 scale resolves badly (on the shipped
        des_y3 model, max |Δp| 0.7 with it quantised, < 0.1 without).
    per_channel : bool
        One weight scale per output channel.
    batch : int
        Calibration batch size.

    Returns
    -------
    dict
        The settings, for the model card.
    """
    onnx = require_onnx()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(model_path))
    input_name = model.graph.input[0].name
    for i, node in enumerate(model.graph.node):  # nodes_to_exclude needs names
        node.name = node.name or f"{node.op_type}_{i}"
    excluded = [n.name for n in model.graph.node if float_input_layer and input_name in n.input]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(range(0, len(calibration), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self._batches, None)
            if start is None:
                return None
            return {input_name: np.ascontiguousarray(calibration[start : start + batch])}

    with tempfile.TemporaryDirectory(prefix="lensfind-int8-") as tmp:
        named = Path(tmp) / "named.onnx"
        onnx.save(model, str(named))
        with _quiet_root_logger():
            quantize_static(
                str(named), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                per_channel=per_channel, activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=excluded,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            )  # fmt: skip
    return {
        "format": "QDQ", "activations": "int8" + (" symmetric" if symmetric else ""),
        "weights": "int8 symmetric" + (" per channel" if per_channel else ""),
        "calibration_method": "MinMax", "kept_float": excluded, "n_calibration": len(calibration),
    }  # fmt: skip


def simulated_set(card: ModelCard, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images in counts, is_lens)`` of ``n`` simulated objects of the card's survey.

    Read-only arrays, simulated once per process for each (survey, bands, size, n, seed).
    """
    return _simulated(card.survey, card.bands, card.input_shape[1], n, seed,
                      card.pixel_scale_arcsec)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _simulated(
    survey: str, bands: tuple[str, ...], size_px: int, n: int, seed: int,
    pixel_scale_arcsec: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    from lensfind.simulation.dataset import on_common_grid
    from lensfind.simulation.population import PopulationConfig
    from lensfind.simulation.simulate import simulate
    from lensfind.surveys import get_survey

    spec, config = get_survey(survey), PopulationConfig()
    if pixel_scale_arcsec is not None:  # the model's grid (e.g. Euclid NISP for OU-66)
        spec, config = on_common_grid(spec, pixel_scale_arcsec, size_px, config)
    if spec.band_names != bands or spec.cutout_px != size_px:
        spec = spec.select(bands, cutout_px=size_px)
    sim = simulate(spec, n, seed, config=config)
    images, is_lens = sim.images, np.asarray(sim.truth["is_lens"], dtype=bool)
    images.flags.writeable = False
    is_lens.flags.writeable = False
    return images, is_lens


def calibration_images(
    card: ModelCard, calibration_set: Path | None, n: int, seed: int = CALIBRATION_SEED
) -> tuple[np.ndarray, dict[str, Any]]:
    """Calibration cutouts in counts: the first ``n`` of a simulated set, or new ones."""
    if calibration_set is None:
        images, _ = simulated_set(card, n, seed)
        return images, {"source": f"simulated {card.survey}", "n": n, "seed": seed}
    from lensfind.runtime.bands import band_order, take_bands
    from lensfind.simulation.dataset import read_dataset

    data, attrs = read_dataset(calibration_set, limit=n)
    have = tuple(attrs["bands"])
    if not set(card.bands) <= set(have):
        raise ConfigError(
            f"{calibration_set}: cutouts of bands {', '.join(have)}, the model expects "
            f"{', '.join(card.bands)}"
        )
    images = take_bands(data.images, band_order(have, card.bands))  # the card's band order
    if tuple(images.shape[1:]) != card.input_shape:
        raise ConfigError(
            f"{calibration_set}: cutouts {tuple(images.shape[1:])}, the model expects "
            f"{card.input_shape}"
        )
    return images, {"source": Path(calibration_set).name, "n": len(data.images),
                         "seed": attrs.get("seed")}  # fmt: skip


def compare_to_fp32(
    ref: Any, new: Any, parity_images: np.ndarray, eval_images: np.ndarray, is_lens: np.ndarray
) -> dict[str, float]:
    """Parity (|p_new - p_ref| on ``parity_images``) and AUROC of both on an eval set."""
    from lensfind.training.metrics import auroc

    diff = np.abs(new(parity_images) - ref(parity_images))
    p_ref, p_new = ref(eval_images), new(eval_images)
    a_ref, a_new = auroc(is_lens, p_ref), auroc(is_lens, p_new)
    return {
        "max_abs_diff": float(diff.max()), "p99_abs_diff": float(np.quantile(diff, 0.99)),
        "mean_abs_diff": float(diff.mean()), "auroc_fp32": float(a_ref), "auroc": float(a_new),
        "auroc_change": float(a_new - a_ref),
        "eval_max_abs_diff": float(np.abs(p_new - p_ref).max()),
    }  # fmt: skip


def export_precision(
    model_dir: Path,
    out_dir: Path,
    precision: str,
    calibration_set: Path | None = None,
    *,
    n_calibration: int = 256,
    n_parity: int = 256,
    n_eval: int = 1024,
) -> Path:
    """Write ``out_dir`` (model.onnx + card): the model of ``model_dir`` in ``precision``.

    Parameters
    ----------
    model_dir : Path
        A float32 model directory (checked against its card's sha256).
    out_dir : Path
        The new model directory (created; its files are replaced).
    precision : {"fp16", "int8"}
        fp16 graph, or static INT8 quantisation.
    calibration_set : Path, optional
        INT8 only: a simulated set (``engine simulate``) whose first
        ``n_calibration`` cutouts calibrate the activation ranges; default a new
        simulated set of the card's survey (seed :data:`CALIBRATION_SEED`).
    n_calibration, n_parity, n_eval : int
        Sizes of the calibration, parity and held-out evaluation sets.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ModelError
        The new model misses its parity tolerance or AUROC budget
        (:data:`PARITY_ATOL`, :data:`AUROC_DROP_MAX`); nothing is left in ``out_dir``.
    """
    if precision not in ("fp16", "int8"):
        raise ConfigError(f"precision must be fp16 or int8, got {precision!r}")
    card = load_card(Path(model_dir))
    if card_precision(card) != "fp32":
        raise ModelError(f"{model_dir}: already {card_precision(card)}; start from the fp32 model")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_onnx = out_dir / f".{ONNX_NAME}.tmp"
    tmp_card = out_dir / f".{CARD_NAME}.tmp"
    try:
        raw = _convert_and_check(card, precision, tmp_onnx, calibration_set,
                                 n_calibration, n_parity, n_eval)  # fmt: skip
        tmp_card.write_text(json.dumps(raw, indent=2) + "\n")
        tmp_onnx.replace(out_dir / ONNX_NAME)
        tmp_card.replace(out_dir / CARD_NAME)
    finally:
        tmp_onnx.unlink(missing_ok=True)
        tmp_card.unlink(missing_ok=True)
    load_card(out_dir)  # the written card checks out
    return out_dir


def _convert_and_check(
    card: ModelCard,
    precision: str,
    path: Path,
    calibration_set: Path | None,
    n_calibration: int,
    n_parity: int,
    n_eval: int,
) -> dict[str, Any]:
    """Write the converted graph to ``path``; return its card, or raise if out of bounds."""
    from lensfind.runtime.scorer import OnnxScorer

    onnx = require_onnx()
    info: dict[str, Any] = {"precision": precision, "io": "float32 input and output"}
    if precision == "fp16":
        onnx.save(convert_fp16(onnx.load(str(card.onnx_path))), str(path))
        info["method"] = "float initializers and constants cast to float16; Cast at I/O"
    else:
        images, source = calibration_images(card, calibration_set, n_calibration)
        info["method"] = "onnxruntime.quantization.quantize_static"
        info["settings"] = quantize_int8(card.onnx_path, path, card.normalisation(images))
        info["calibration"] = source
    parity_images, _ = simulated_set(card, n_parity, PARITY_SEED)
    eval_images, is_lens = simulated_set(card, n_eval, EVAL_SEED)
    raw = {k: v for k, v in card.raw.items()
           if k not in ("torch_weights", "model_card_md", "test_metrics", "parity")}  # fmt: skip
    raw.update(name=f"{card.name}-{precision}", onnx_file=ONNX_NAME, sha256=sha256_of(path))
    new_card = ModelCard(**{**card.__dict__, "name": raw["name"], "sha256": raw["sha256"],
                            "onnx_path": path, "raw": raw})  # fmt: skip
    ref, new = OnnxScorer(card, threads=0), OnnxScorer(new_card, threads=0)
    result = compare_to_fp32(ref, new, parity_images, eval_images, is_lens)
    atol, budget = PARITY_ATOL[precision], AUROC_DROP_MAX[precision]
    info["derived_from"] = {"name": card.name, "sha256": card.sha256}
    info["exported_with"] = _versions()
    raw["precision"] = info
    raw["parity"] = {
        "reference": f"{card.name} fp32, onnxruntime CPU",
        "runtime": f"onnxruntime CPU {precision}",
        "inputs": f"simulated {card.survey}, seed {PARITY_SEED}", "n": n_parity,
        "max_abs_diff": result["max_abs_diff"], "p99_abs_diff": result["p99_abs_diff"],
        "mean_abs_diff": result["mean_abs_diff"], "atol": atol,
    }  # fmt: skip
    raw["precision_eval"] = {
        "held_out": f"simulated {card.survey}, seed {EVAL_SEED}", "n": n_eval,
        "n_lenses": int(is_lens.sum()), "auroc_fp32": result["auroc_fp32"],
        "auroc": result["auroc"], "auroc_change": result["auroc_change"],
        "max_auroc_drop": budget,
    }  # fmt: skip
    if result["max_abs_diff"] > atol or -result["auroc_change"] > budget:
        raise ModelError(
            f"{card.name} {precision}: max |Δp| {result['max_abs_diff']:.3g} (tolerance {atol}), "
            f"AUROC change {result['auroc_change']:+.4f} (budget -{budget}); not written"
        )
    return raw


def _versions() -> dict[str, str]:
    import onnxruntime

    return {"lensfind": __version__, "onnx": require_onnx().__version__,
            "onnxruntime": onnxruntime.__version__}  # fmt: skip
