"""``engine explain <method>``: saliency maps of a shipped or exported model.

Occlusion works on the ONNX model itself (raw counts in, the scorer normalises);
the gradient and generation methods use the model's torch weights (the card's
``weights.npz``) on normalised inputs, and need the ``train`` extra.
"""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError
from lensfind.probes.report import write_json
from lensfind.runtime.card import ModelCard

#: methods whose result is one map per input (shown beside the inputs)
MAP_METHODS = ("occlusion", "gradcam", "guided_backprop", "guided_gradcam")


def load_inputs(
    source: str | None,
    card: ModelCard,
    n: int,
    seed: int,
    progress: Callable[[int], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Raw cutouts (counts) to explain, in the card's band order, their labels if known,
    and a description.

    ``source`` is ``None``/``"simulated"`` (a fresh 50/50 simulated set of
    ``n``), a simulated set written by ``engine simulate`` (``.zarr``), or a
    ``.npy`` array ``(N, bands, H, W)`` (already in the card's band order).
    Simulated cutouts come in their survey's band order and are reordered;
    ``progress(k)`` follows their simulation.
    """
    from lensfind.runtime.bands import band_order, take_bands
    from lensfind.surveys import get_survey

    def in_card_order(images: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
        return take_bands(images, band_order(bands, card.bands, f"model {card.name}"))

    if source in (None, "simulated"):
        from lensfind.probes.sensitivity import make_probe_set

        spec = get_survey(card.survey)
        ps = make_probe_set(spec, n, seed, progress=progress)
        images = in_card_order(ps.images, spec.band_names)
        return images, ps.is_lens, f"simulated {card.survey}, n={n}, seed={seed}"
    path = Path(source)
    if path.suffix == ".npy":
        try:
            images = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read cutouts ({exc})") from None
        return np.asarray(images, dtype=np.float32), None, str(path)
    from lensfind.simulation.dataset import read_dataset, survey_of

    data, attrs = read_dataset(path)
    images = in_card_order(data.images, survey_of(attrs).band_names)
    return images, np.asarray(data.truth["is_lens"], bool), str(path)


def explain(
    method: str,
    card: ModelCard,
    raw: np.ndarray,
    progress: Callable[[int], Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """Run saliency ``method`` for ``card``'s model on raw cutouts (counts).

    The model is loaded once and the cutouts explained one at a time (every
    method works per image), ``progress(1)`` after each; ``class_image``
    makes one image whatever the input, one step.
    """
    from lensfind.probes.saliency import get_method

    fn = get_method(method)
    if tuple(raw.shape[1:]) != tuple(card.input_shape):
        raise ConfigError(
            f"{card.name} expects cutouts {card.input_shape}, got {tuple(raw.shape[1:])}"
        )
    if method == "occlusion":
        from lensfind.runtime.scorer import OnnxScorer

        scorer = OnnxScorer(card, threads=2)

        def run(x: np.ndarray) -> np.ndarray:
            return np.asarray(fn(scorer, x, **options))

    else:
        from lensfind.export.torch_weights import load_torch_model

        model = load_torch_model(card)
        if method == "class_image":
            image = np.asarray(fn(model, tuple(card.input_shape), **options))[None]
            if progress is not None:
                progress(1)
            return image

        def run(x: np.ndarray) -> np.ndarray:  # type: ignore[misc]  # the other branch's
            x = card.normalisation(np.ascontiguousarray(x, dtype=np.float32))
            if method == "kernels":
                return np.stack([np.asarray(fn(model, xi, **options)) for xi in x])
            return np.asarray(fn(model, x, **options))

    parts = []
    for i in range(len(raw)):
        parts.append(run(raw[i : i + 1]))
        if progress is not None:
            progress(1)
    return np.concatenate(parts)


def explain_cli(args: argparse.Namespace) -> int:
    """The ``engine explain`` command: maps as ``.npy``, a PNG and a JSON record."""
    from tqdm.auto import tqdm

    from lensfind.probes.saliency import get_method, save_saliency_png
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.runtime.shipped import resolve_model

    get_method(args.method)  # an unknown name fails before any work
    card = resolve_model(args.model, args.survey)
    quiet = bool(getattr(args, "quiet", False))
    simulated = args.input in (None, "simulated")
    with tqdm(total=args.n, desc="simulate", unit="obj", disable=quiet or not simulated) as bar:
        raw, labels, description = load_inputs(args.input, card, args.n, args.seed, bar.update)
    if args.index:
        idx = [int(i) for i in args.index.split(",")]
        bad = [i for i in idx if not 0 <= i < len(raw)]
        if bad:
            raise ConfigError(f"--index {bad}: input has {len(raw)} objects")
        raw = raw[idx]
        labels = None if labels is None else labels[idx]
    out = args.out or Path("explain") / f"{card.name}-{args.method}"
    out.mkdir(parents=True, exist_ok=True)
    steps = 1 if args.method == "class_image" else len(raw)
    with tqdm(total=steps, desc=args.method, unit="cutout", disable=quiet) as bar:
        maps = explain(args.method, card, raw, progress=bar.update)
    np.save(out / f"{args.method}.npy", maps)
    scores = OnnxScorer(card, threads=2)(raw)
    titles = [
        f"#{i} p={p:.2f}" + ("" if labels is None else (" lens" if labels[i] else " non-lens"))
        for i, p in enumerate(scores)
    ]
    png = out / f"{args.method}.png"
    if args.method in MAP_METHODS:
        save_saliency_png(card.normalisation(raw), {args.method: maps}, png, titles)
    elif args.method == "kernels":
        from scipy.ndimage import zoom

        mean = maps.mean(axis=1)  # (N, h, w) -> input size for display
        h, w = raw.shape[-2:]
        shown = zoom(mean, (1, h / mean.shape[1], w / mean.shape[2]), order=1)
        save_saliency_png(card.normalisation(raw), {"mean kernel activation": shown}, png, titles)
    else:  # generated images, beside their change from the input (or from zero)
        base = 0.0 if args.method == "class_image" else card.normalisation(raw)
        save_saliency_png(maps, {"change": maps - base}, png)
    write_json(out / f"{args.method}.json", {
        "method": args.method, "model": card.name, "model_sha256": card.sha256,
        "input": description, "n": len(raw), "scores": scores.tolist(),
        "maps_file": f"{args.method}.npy", "maps_shape": list(maps.shape),
    })  # fmt: skip
    print(f"{args.method} for {len(raw)} cutout(s) -> {png}")
    return 0
