"""``engine explain <method>``: saliency maps of a shipped or exported model.

Inputs: simulated cutouts, a simulated set, a ``.npy`` array, or a scan's own
candidates (``--run RUN [--top N | --ids ID,...]``, :mod:`lensfind.probes.explain_run`).
Every map's colour bar names its quantity and sign (:data:`BAR_LABELS`).

Occlusion works on the ONNX model itself (raw counts in, the scorer normalises);
the gradient and generation methods use the model's torch weights (the card's
``weights.npz``) on normalised inputs, and need the ``train`` extra.
"""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import ConfigError, ModelError
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


#: What each method's map is, and what its sign means: the colour-bar labels.
BAR_LABELS = {
    "occlusion": "drop in P(lens) when occluded\n(+: supports lens)",
    "gradcam": "Grad-CAM, logit units\n(>= 0: supports lens)",
    "guided_backprop": "d logit / d input, summed over bands\n(+: raises P(lens))",
    "guided_gradcam": "guided Grad-CAM\n(+: raises P(lens))",
    "kernels": "mean kernel activation\n(a.u., >= 0)",
    "change": "change of the normalised input\n(+: brighter)",
}


def explain(
    method: str,
    card: ModelCard,
    raw: np.ndarray,
    progress: Callable[[int], Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """Run saliency ``method`` for ``card``'s model on raw cutouts (counts).

    The model (ONNX session or torch weights) is loaded once; the cutouts are
    explained one at a time, ``progress(1)`` called after each.
    """
    from lensfind.probes.saliency import get_method

    fn = get_method(method)
    if tuple(raw.shape[1:]) != tuple(card.input_shape):
        raise ConfigError(
            f"{card.name} expects cutouts {card.input_shape}, got {tuple(raw.shape[1:])}"
        )
    tick = progress or (lambda _n: None)
    if method == "occlusion":
        from lensfind.runtime.scorer import OnnxScorer

        scorer = OnnxScorer(card, threads=2)
        parts = []
        for i in range(len(raw)):
            parts.append(np.asarray(fn(scorer, raw[i : i + 1], **options)))
            tick(1)
        return np.concatenate(parts)
    from lensfind.export.torch_weights import load_torch_model

    model = load_torch_model(card)
    if method == "class_image":
        out = np.asarray(fn(model, tuple(card.input_shape), **options))[None]
        tick(1)
        return out
    x = card.normalisation(np.ascontiguousarray(raw, dtype=np.float32))
    parts = []
    for i in range(len(x)):
        one = fn(model, x[i], **options) if method == "kernels" else fn(model, x[i : i + 1])
        parts.append(np.asarray(one)[None] if method == "kernels" else np.asarray(one))
        tick(1)
    return np.concatenate(parts)


def _run_source(args: argparse.Namespace) -> Path | None:
    """The run directory to explain: ``--run``, or ``--input RUN/cutouts.zarr``."""
    if args.run is not None:
        if args.input is not None:
            raise ConfigError("give --run or --input, not both")
        return Path(args.run)
    if args.input is not None and Path(args.input).name == "cutouts.zarr":
        return Path(args.input).parent
    if args.top is not None or args.ids is not None:
        raise ConfigError("--top and --ids go with --run RUN (a scan's candidates)")
    return None


def _ids(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--ids: expected comma-separated object ids, got {text!r}") from None


def explain_cli(args: argparse.Namespace) -> int:
    """The ``engine explain`` command: maps as ``.npy``, a PNG and a JSON record."""
    from tqdm.auto import tqdm

    from lensfind.probes.saliency import get_method, save_saliency_png
    from lensfind.runtime.scorer import OnnxScorer
    from lensfind.runtime.shipped import resolve_model

    get_method(args.method)  # an unknown name fails before any work
    quiet = bool(getattr(args, "quiet", False))
    run = _run_source(args)
    labels = None
    if run is not None:
        from lensfind.probes.explain_run import run_inputs, run_model_name

        if args.top is not None and args.ids is not None:
            raise ConfigError("give --top or --ids, not both")
        if args.model is None and not (run / "summary.json").is_file():
            raise ConfigError(f"{run}: not a scan's run directory (no summary.json)")
        try:
            card = resolve_model(args.model or run_model_name(run), args.survey)
        except ModelError as exc:
            if args.model is not None:
                raise
            raise ConfigError(
                f"{run}: the run's model is not shipped ({exc}); pass --model"
            ) from None
        ids = None if args.ids is None else _ids(args.ids)
        inputs = run_inputs(run, card, 8 if args.top is None else args.top, ids)
        raw, description, names = inputs.images, str(run), inputs.titles
    else:
        card = resolve_model(args.model, args.survey)
        simulated = args.input in (None, "simulated")
        with tqdm(total=args.n, desc="simulate", unit="obj", disable=quiet or not simulated) as bar:
            raw, labels, description = load_inputs(args.input, card, args.n, args.seed, bar.update)
        names = [f"#{i}" for i in range(len(raw))]
    if args.index:
        idx = [int(i) for i in args.index.split(",")]
        bad = [i for i in idx if not 0 <= i < len(raw)]
        if bad:
            raise ConfigError(f"--index {bad}: input has {len(raw)} objects")
        raw, names = raw[idx], [names[i] for i in idx]
        labels = None if labels is None else labels[idx]
    out = args.out or Path("explain") / f"{card.name}-{args.method}"
    out.mkdir(parents=True, exist_ok=True)
    steps = 1 if args.method == "class_image" else len(raw)
    with tqdm(total=steps, desc=args.method, unit="cutout", disable=quiet) as bar:
        maps = explain(args.method, card, raw, progress=bar.update)
    np.save(out / f"{args.method}.npy", maps)
    scores = OnnxScorer(card, threads=2)(raw)
    titles = [f"{names[i]} p={p:.2f}" for i, p in enumerate(scores)]
    if labels is not None:
        titles = [t + (" lens" if labels[i] else " non-lens") for i, t in enumerate(titles)]
    png = out / f"{args.method}.png"
    if args.method in MAP_METHODS:
        save_saliency_png(card.normalisation(raw), {args.method: maps}, png, titles,
                          bar_labels={args.method: BAR_LABELS[args.method]})  # fmt: skip
    elif args.method == "kernels":
        from scipy.ndimage import zoom

        mean = maps.mean(axis=1)  # (N, h, w) -> input size for display
        h, w = raw.shape[-2:]
        shown = zoom(mean, (1, h / mean.shape[1], w / mean.shape[2]), order=1)
        name = "mean kernel activation"
        save_saliency_png(card.normalisation(raw), {name: shown}, png, titles,
                          bar_labels={name: BAR_LABELS["kernels"]})  # fmt: skip
    else:  # generated images, beside their change from the input (or from zero)
        base = 0.0 if args.method == "class_image" else card.normalisation(raw)
        save_saliency_png(maps, {"change": maps - base}, png,
                          bar_labels={"change": BAR_LABELS["change"]})  # fmt: skip
    record = {
        "method": args.method, "model": card.name, "model_sha256": card.sha256,
        "input": description, "n": len(raw), "scores": scores.tolist(),
        "maps_file": f"{args.method}.npy", "maps_shape": list(maps.shape),
    }  # fmt: skip
    if run is not None:
        record.update(inputs.record)
    write_json(out / f"{args.method}.json", record)
    print(f"{args.method} for {len(raw)} cutout(s) -> {png}")
    return 0
