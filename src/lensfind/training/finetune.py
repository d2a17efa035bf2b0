"""Fine-tuning an exported model on a scan's graded candidates (``engine train --finetune``).

The parent's torch weights (``weights.npz`` beside its ONNX file) are loaded and
trained for a few epochs by the training loop of :mod:`lensfind.training.loop`
(the same epochs, augmentation, validation, model selection, checkpoint and
reports) on a :class:`~lensfind.training.labels.LabelledSet`; ``engine export``'s
path then writes the ONNX model, its card and the parity record. The checkpoint's
``finetune`` entry (labels file and sha256, counts, weights, the parent's name and
sha256, frozen modules) goes into the card's ``training``.

Defaults differ from training from scratch: learning rate ``2e-4`` at a constant
rate (the parent is already trained; a one-cycle warm-up would first undo it),
batches of 32, a fifth of the labels held out per class for model selection.
The parent's augmentation (rotations, flips, occlusion) is kept.
"""

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.runtime.card import ModelCard
from lensfind.surveys.registry import get_survey
from lensfind.training._torch import torch
from lensfind.training.checkpoint import CHECKPOINT_NAME, save_checkpoint
from lensfind.training.config import CONFIG_FIELDS, TrainConfig
from lensfind.training.data import TrainingError, stratified_split
from lensfind.training.labels import LabelledSet
from lensfind.training.loop import (
    _augmentation,
    _finish,
    _loss_fn,
    _optimizer,
    _Run,
    _run_epoch,
    _scheduler,
    resolve_device,
)
from lensfind.training.selection import Selector

__all__ = ["FINETUNE_DEFAULTS", "LabelledData", "finetune", "finetune_config"]

#: Settings of a fine-tuning run that differ from the parent's training.
FINETUNE_DEFAULTS = {"epochs": 2, "lr": 2e-4, "schedule": "constant", "batch_size": 32,
                     "val_fraction": 0.2, "patience": 0, "keep_checkpoints": False}  # fmt: skip
#: Fewest labels of each class (one goes to validation: model selection needs both).
MIN_PER_CLASS = 2


class LabelledData:
    """A :class:`LabelledSet` as the training loop reads it: validation split and batches.

    Every epoch draws as many objects as the training split holds, with
    replacement, each with probability proportional to its weight.

    Parameters
    ----------
    labelled : LabelledSet
        Cutouts (counts), labels and weights.
    card : ModelCard
        The parent: its band order and normalisation are the network's input.
    config : TrainConfig
        ``val_fraction``.
    rng : numpy.random.Generator
        The run's generator (the split is drawn from it here).
    """

    def __init__(
        self, labelled: LabelledSet, card: ModelCard, config: TrainConfig, rng: np.random.Generator
    ) -> None:
        self.path = Path(labelled.record.get("labels", "labels"))
        self.config = config
        spec = get_survey(card.survey)
        self.spec = spec.select(card.bands, cutout_px=card.input_shape[1])
        self.norm = card.normalisation
        n_lens, n_other = int(labelled.is_lens.sum()), int((~labelled.is_lens).sum())
        if min(n_lens, n_other) < MIN_PER_CLASS:
            raise TrainingError(
                f"{self.path}: {n_lens} lens(es) and {n_other} non-lens(es); fine-tuning "
                f"needs at least {MIN_PER_CLASS} of each (grade more; --random adds non-lenses)"
            )
        self._x = card.normalised_input(labelled.images, input_bands=labelled.bands)
        self._y = labelled.is_lens.astype(np.float32)
        val, train = stratified_split(labelled.is_lens, config.val_fraction, rng, self.path)
        self.x_val, self.y_val = self._x[val], self._y[val]
        self._train = train
        w = labelled.weight[train].astype(float)
        self._p = w / w.sum()
        self.n_val_split, self.n_train_split = len(val), len(train)

    @property
    def n_train(self) -> int:
        """Objects per training epoch."""
        return len(self._train)

    def class_counts(self) -> tuple[int, int]:
        """(non-lenses, lenses) of the training split."""
        n_lens = int(self._y[self._train].sum())
        return len(self._train) - n_lens, n_lens

    def batches(
        self, rng: np.random.Generator, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of normalised batches ``(x (n, bands, H, W), y (n,))``, drawn by weight."""
        order = rng.choice(self._train, len(self._train), replace=True, p=self._p)
        plan = [np.sort(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
        for idx in plan:
            yield self._x[idx], self._y[idx]


def finetune_config(parent: ModelCard, **overrides: Any) -> TrainConfig:
    """The parent's training settings with :data:`FINETUNE_DEFAULTS`, then ``overrides``."""
    trained = parent.raw.get("training", {}).get("config", {})
    values = {k: v for k, v in trained.items() if k in CONFIG_FIELDS}
    values.update(FINETUNE_DEFAULTS)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["arch"] = parent.raw["arch"]
    values["positives"] = "simulated"
    for key in ("mock_alpha", "mock_lens_kinds"):
        if key in values:
            values[key] = tuple(values[key])
    return TrainConfig(**values)


def _freeze(model: "torch.nn.Module", modules: Sequence[str]) -> list[str]:
    """Freeze the named submodules: no gradient, and always in eval mode (batch-norm
    statistics and dropout as at inference). Returns the names frozen."""
    for name in modules:
        try:
            sub = model.get_submodule(name)
        except AttributeError:
            known = ", ".join(n for n, _ in model.named_children())
            raise TrainingError(f"--freeze {name}: no such module (top level: {known})") from None
        for p in sub.parameters():
            p.requires_grad_(False)
        sub.eval()
        sub.train = lambda mode=True, _m=sub: _m  # type: ignore[method-assign]
    return list(modules)


def finetune(
    parent: ModelCard,
    model: "torch.nn.Module",
    labelled: LabelledSet,
    out_dir: Path,
    config: TrainConfig,
    freeze: Sequence[str] = (),
    quiet: bool = False,
) -> dict:
    """Fine-tune ``parent``'s torch weights on ``labelled``; write ``out_dir/checkpoint.pt``.

    Parameters
    ----------
    parent : ModelCard
        The exported model fine-tuned (recorded as the parent).
    model : torch.nn.Module
        Its network with its torch weights
        (:func:`lensfind.export.torch_weights.load_torch_model`); trained in place.
    labelled : LabelledSet
        Graded (and random) cutouts, in image counts.
    out_dir : Path
        Checkpoint directory (as ``engine train`` writes it: checkpoint, metrics,
        plots, reports).
    config : TrainConfig
        Settings (:func:`finetune_config`).
    freeze : sequence of str
        Submodules kept as they are (e.g. ``features``: only the head learns).
    quiet : bool
        No progress bars.

    Returns
    -------
    dict
        The training report, with its ``finetune`` record (also in the checkpoint).
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    data = LabelledData(labelled, parent, config, rng)
    model = model.to(device)
    frozen = _freeze(model, freeze)
    opt = _optimizer(model, config)
    steps = -(-data.n_train // config.batch_size)
    parent_set = parent.raw.get("training", {}).get("train_set", {})
    set_info = {
        "path": str(data.path), "n": len(labelled.object_id), "seed": config.seed,
        # the parent's simulated population: what a scan injects for this model
        "population": parent_set.get("population"),
        "pixel_scale_arcsec": parent.pixel_scale_arcsec,
        "n_train": data.n_train_split, "n_val": data.n_val_split, "positives": "graded",
    }  # fmt: skip
    run = _Run(config=config, out_dir=out_dir, device=device, rng=rng, data=data,  # type: ignore[arg-type]
               model=model, opt=opt, sched=_scheduler(opt, config, config.epochs * steps),
               loss_fn=_loss_fn(config, data), gen=torch.Generator().manual_seed(config.seed),  # type: ignore[arg-type]
               aug=_augmentation(config), selector=Selector(config.select_by, config.patience),
               steps_per_epoch=steps, set_info=set_info,
               identity=dataclasses.asdict(config))  # fmt: skip
    for epoch in range(config.epochs):
        _run_epoch(run, epoch, quiet)
    report = _finish(run, None)
    report["finetune"] = {
        **labelled.record,
        "parent": {"name": parent.name, "sha256": parent.sha256,
                   "torch_weights_sha256": parent.raw["torch_weights"]["sha256"]},
        "frozen": frozen,
        "sampling": "with replacement, probability proportional to weight",
    }  # fmt: skip
    assert run.best_state is not None
    save_checkpoint(out_dir / CHECKPOINT_NAME, run.best_state, report)
    (out_dir / "train_report.json").write_text(json.dumps(report, indent=2))
    return report
