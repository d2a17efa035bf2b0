"""The training loop: simulated set in; checkpoints, metrics log, plots and report out.

With the default :class:`TrainConfig` this is the loop that trained the shipped
``des_y3`` model, step for step (same random streams, same arithmetic).
"""

import dataclasses
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind import __version__
from lensfind.errors import ConfigError, ResumeError
from lensfind.runtime.scorer import DEFAULT_BATCH_SIZE
from lensfind.simulation.dataset import read_dataset, survey_of
from lensfind.training._torch import torch
from lensfind.training.architectures import build_model
from lensfind.training.augment import Augmentation, augment
from lensfind.training.checkpoint import (
    CHECKPOINT_NAME,
    LAST_NAME,
    check_resumable,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
)
from lensfind.training.config import SELECT_BY, TrainConfig
from lensfind.training.data import (
    TrainingData,
    TrainingError,
    normalisation_for,
    require_both_classes,
    stratified_split,
)
from lensfind.training.losses import get_loss
from lensfind.training.metrics import evaluate_all
from lensfind.training.metrics_log import write_metrics_log
from lensfind.training.plots import (
    FBETA,
    LEARNING_CURVES,
    ROC,
    plot_fbeta,
    plot_learning_curves,
    plot_roc,
)
from lensfind.training.report import REPORT_MD, write_training_report
from lensfind.training.selection import Selector, validation_metrics

__all__ = [
    "CHECKPOINT_NAME",
    "LAST_NAME",
    "TrainConfig",
    "TrainingError",
    "load_checkpoint",
    "normalisation_for",
    "predict",
    "predict_logits",
    "resolve_device",
    "stratified_split",
    "train",
]

EpochCallback = Callable[[int, dict[str, Any]], None]


def resolve_device(name: str) -> "torch.device":
    """``torch.device(name)``, or a :class:`ConfigError` when CUDA is asked for but absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device 'cuda' requested, but torch {torch.__version__} sees no CUDA GPU "
            "(torch.cuda.is_available() is False); use --device cpu or a CUDA build of torch"
        )
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def predict_logits(
    model: "torch.nn.Module",
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
) -> np.ndarray:
    """Lens logits of normalised inputs ``x`` (N, bands, H, W), in eval mode."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i : i + batch_size]).to(device)
            out.append(model(xb).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def predict(
    model: "torch.nn.Module",
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
) -> np.ndarray:
    """Lens probabilities of normalised inputs ``x`` (N, bands, H, W)."""
    z = predict_logits(model, x, batch_size, device)
    return torch.sigmoid(torch.from_numpy(z)).numpy()


def _optimizer(model: "torch.nn.Module", config: TrainConfig) -> "torch.optim.Optimizer":
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(opt: "torch.optim.Optimizer", config: TrainConfig, steps: int) -> Any:
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    return None


def _loss_fn(config: TrainConfig, data: TrainingData) -> Callable[..., "torch.Tensor"]:
    n_other, n_lens = data.class_counts()
    options: dict[str, object] = {}
    if config.loss == "soft_fbeta":
        options["beta"] = config.beta
    if config.class_weighting == "balanced":
        if n_lens == 0 or n_other == 0:
            raise TrainingError(f"{data.path}: class weights need both classes in training")
        if config.loss == "bce":
            options["pos_weight"] = n_other / n_lens
        else:
            n = n_other + n_lens
            options["class_weights"] = (n / (2 * n_other), n / (2 * n_lens))
    return get_loss(config.loss, **options)


def _augmentation(config: TrainConfig) -> Augmentation:
    return Augmentation(
        rotation=config.rotation,
        flip=config.flip,
        shift_px=config.shift_px,
        zoom_max=config.zoom_max,
        per=config.augment_per,
        occlusion=config.occlusion,
    )


def _machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lensfind": __version__,
    }


def train(
    train_set: Path,
    out_dir: Path,
    config: TrainConfig,
    test_set: Path | None = None,
    quiet: bool = False,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
) -> dict:
    """Train ``config.arch`` on a simulated set.

    Writes to ``out_dir``: ``checkpoint.pt`` (the kept epoch; tensors and plain
    metadata, loadable with ``torch.load(weights_only=True)``), ``last.pt`` after
    every epoch (for ``resume``), ``metrics.csv``/``metrics.json``,
    ``learning_curves.png``, ``roc.png`` and ``fbeta_threshold.png`` (on the test
    set, else the validation split), ``train_report.json`` and
    ``TRAINING_REPORT.md``.

    Parameters
    ----------
    train_set, test_set : Path
        Simulated sets; the test set only evaluates the kept model.
    out_dir : Path
        Checkpoint directory.
    config : TrainConfig
        Hyper-parameters.
    quiet : bool
        No progress bars or per-epoch lines.
    resume : bool
        Continue from ``out_dir/last.pt``; the result equals an uninterrupted run.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, row)`` after each epoch's state is saved.

    Returns
    -------
    dict
        The report (also ``train_report.json`` and the checkpoint's metadata).
    """
    run = _prepare(train_set, out_dir, config)
    if resume:
        _restore(run)
    for epoch in range(run.start_epoch, config.epochs):
        if run.selector.should_stop:
            break
        row = _run_epoch(run, epoch, quiet)
        _save_progress(run, epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch + 1, row)
    return _finish(run, test_set)


@dataclasses.dataclass
class _Run:
    """One training run: what it was set up with and what it carries from epoch to epoch."""

    config: TrainConfig
    out_dir: Path
    device: "torch.device"
    rng: np.random.Generator
    data: TrainingData
    model: "torch.nn.Module"
    opt: "torch.optim.Optimizer"
    sched: Any
    loss_fn: Callable[..., "torch.Tensor"]
    gen: "torch.Generator"
    aug: Augmentation
    selector: Selector
    steps_per_epoch: int
    set_info: dict[str, Any]
    identity: dict[str, Any]
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    log_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_state: dict[str, Any] | None = None
    start_epoch: int = 0
    seconds: float = 0.0


def _prepare(train_set: Path, out_dir: Path, config: TrainConfig) -> _Run:
    """Seed, read and split the set, build the model, optimiser, schedule and loss.

    The order of the seeding and of every draw from the torch and numpy streams is
    that of the original loop (data split, then model initialisation).
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    data = TrainingData(train_set, config, rng)
    spec = data.spec
    model = build_model(config.arch, len(spec.bands), spec.cutout_px).to(device)
    opt = _optimizer(model, config)
    steps_per_epoch = -(-data.n_train // config.batch_size)
    set_info = data.set_info()
    identity = {**dataclasses.asdict(config), "train_set_seed": set_info["seed"],
                "train_set_n": set_info["n"]}  # fmt: skip
    return _Run(config=config, out_dir=out_dir, device=device, rng=rng, data=data, model=model,
                opt=opt, sched=_scheduler(opt, config, config.epochs * steps_per_epoch),
                loss_fn=_loss_fn(config, data), gen=torch.Generator().manual_seed(config.seed),
                aug=_augmentation(config), selector=Selector(config.select_by, config.patience),
                steps_per_epoch=steps_per_epoch, set_info=set_info,
                identity=identity)  # fmt: skip


def _restore(run: _Run) -> None:
    """Continue ``run`` from ``last.pt``: weights, optimiser, schedule, streams, history."""
    path = run.out_dir / LAST_NAME
    blob = load_state(path, str(run.device))
    progress = blob["progress"]
    # a setting newer than the checkpoint was, then, at its default
    defaults = json_safe(dataclasses.asdict(TrainConfig()))
    check_resumable(path, {**defaults, **progress["identity"]}, json_safe(run.identity))
    if run.config.epochs < int(progress["epoch"]):
        raise ResumeError(f"{path}: {progress['epoch']} epochs already ran; --epochs is fewer")
    run.model.load_state_dict(blob["model"])
    run.opt.load_state_dict(blob["optimizer"])
    if run.sched is not None:
        run.sched.load_state_dict(blob["scheduler"])
    run.best_state = blob["best_state"] or None
    run.gen.set_state(blob["torch_generator"])
    torch.set_rng_state(blob["torch_rng"])
    if "cuda_rng" in blob and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    run.rng.bit_generator.state = progress["numpy_rng"]
    run.history, run.log_rows = progress["history"], progress["log"]
    run.selector.restore(progress["selector"])
    run.start_epoch, run.seconds = int(progress["epoch"]), float(progress["train_seconds"])


def _run_epoch(run: _Run, epoch: int, quiet: bool) -> dict[str, Any]:
    """Train epoch ``epoch`` (0-based), validate, select; log it and return its row."""
    t0 = time.perf_counter()
    train_loss = _train_epoch(run, epoch, quiet)
    val, improved = _validate(run, epoch + 1)
    row = {"epoch": epoch + 1, "train_loss": train_loss, **val,
           "lr": run.opt.param_groups[0]["lr"], "improved": improved}  # fmt: skip
    run.history.append(row)
    epoch_s = time.perf_counter() - t0
    run.seconds += epoch_s
    run.log_rows.append({**row, "seconds": round(epoch_s, 3)})
    write_metrics_log(run.out_dir, run.log_rows)
    if not quiet:
        select_by = run.config.select_by
        tqdm.write(
            f"epoch {epoch + 1}: loss {train_loss:.4f} val {select_by} "
            f"{val[select_by]:.4f} AUROC {val['val_auroc']:.4f} "
            f"acc {val['val_accuracy']:.4f}{' *' if improved else ''}"
        )
    return row


def _train_epoch(run: _Run, epoch: int, quiet: bool) -> float:
    """One pass over the training split, augmented; return the mean training loss."""
    config, model, opt = run.config, run.model, run.opt
    model.train()
    total, count = 0.0, 0
    bar = tqdm(
        run.data.batches(run.rng, config.batch_size),
        total=run.steps_per_epoch,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=quiet,
        unit="batch",
    )
    for xb_np, yb_np in bar:
        xb = augment(torch.from_numpy(xb_np), run.aug, run.gen).to(run.device)
        yb = torch.from_numpy(yb_np).to(run.device)
        opt.zero_grad()
        loss = run.loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        if run.sched is not None:
            run.sched.step()
        total += loss.item() * len(yb_np)
        count += len(yb_np)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / count


def _validate(run: _Run, epoch: int) -> tuple[dict[str, float], bool]:
    """Validation metrics after ``epoch`` (1-based); keep the weights when they improve."""
    data = run.data
    logits = predict_logits(run.model, data.x_val, device=str(run.device))
    val = validation_metrics(data.y_val, logits, run.loss_fn, run.config.beta)
    improved = run.selector.update(epoch, val)
    if improved:
        run.best_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    return val, improved


def _save_progress(run: _Run, epoch: int) -> None:
    """Write ``last.pt`` after ``epoch`` (1-based), and ``epoch-NNN.pt`` if kept."""
    progress = {
        "epoch": epoch,
        "history": run.history,
        "log": run.log_rows,
        "selector": run.selector.state(),
        "numpy_rng": run.rng.bit_generator.state,
        "train_seconds": run.seconds,
        "identity": run.identity,
    }
    save_state(run.out_dir / LAST_NAME, model=run.model, optimizer=run.opt, scheduler=run.sched,
               best_state=run.best_state, generator=run.gen,
               progress=json_safe(progress))  # fmt: skip
    if run.config.keep_checkpoints:
        shutil.copyfile(run.out_dir / LAST_NAME, run.out_dir / f"epoch-{epoch:03d}.pt")


def _finish(run: _Run, test_set: Path | None) -> dict:
    """Load the kept epoch, evaluate and plot it; write the checkpoint and the reports."""
    if run.best_state is None:
        raise TrainingError(f"{run.out_dir}: no epoch was trained (epochs {run.config.epochs})")
    run.model.load_state_dict(run.best_state)
    run.model.to("cpu")
    report = _report(run)
    labels, scores, on = _evaluate(run, report, test_set)
    config, out_dir = run.config, run.out_dir
    report["plots"] = {
        "learning_curves": plot_learning_curves(run.history, out_dir / LEARNING_CURVES,
                                                config.select_by).name,
        "roc": plot_roc(labels, scores, out_dir / ROC, f"ROC, {on}").name,
        "fbeta": plot_fbeta(labels, scores, out_dir / FBETA, f"F-beta, {on}", config.beta).name,
        "evaluated_on": on,
    }  # fmt: skip
    save_checkpoint(out_dir / CHECKPOINT_NAME, run.best_state, report)
    (out_dir / "train_report.json").write_text(_dumps(report))
    write_training_report(report, out_dir / REPORT_MD)
    return report


def _report(run: _Run) -> dict:
    """The report of the kept epoch, before its test metrics and plots."""
    config, spec, selector = run.config, run.data.spec, run.selector
    best = run.history[selector.best_epoch - 1]
    return {
        "arch": config.arch,
        "config": dataclasses.asdict(config),
        "survey": spec.name,
        "bands": list(spec.band_names),
        "input_shape": [len(spec.bands), spec.cutout_px, spec.cutout_px],
        "normalisation": run.data.norm.to_dict(),
        "train_set": run.set_info,
        "history": run.history,
        "best_val_auroc": best["val_auroc"],
        "select_by": config.select_by,
        "best_epoch": selector.best_epoch,
        "best_value": selector.best,
        "epochs_run": len(run.history),
        "stopped_early": len(run.history) < config.epochs,
        "val_metrics": {k: v for k, v in best.items() if k.startswith("val_") or k in SELECT_BY},
        "train_seconds": round(run.seconds, 1),
        "machine": _machine(),
    }


def _evaluate(run: _Run, report: dict, test_set: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Labels, scores and name of the set the plots show: the test set, else validation.

    With ``test_set`` its record and torch metrics go into ``report``.
    """
    if test_set is None:
        return run.data.y_val.astype(bool), predict(run.model, run.data.x_val), "validation split"
    test, tattrs = read_dataset(test_set)
    require_both_classes(test.truth["is_lens"], test_set, "a held-out evaluation")
    labels = test.truth["is_lens"]
    scores = predict(run.model, run.data.model_input(test.images, survey_of(tattrs).band_names))
    report["test_set"] = {"path": str(test_set), "n": int(tattrs["n"]), "seed": tattrs["seed"]}
    report["test_metrics_torch"] = evaluate_all(labels, scores, beta=run.config.beta)
    return labels, scores, "test set"


def json_safe(obj: Any) -> Any:
    """``obj`` with tuples as lists (what it reads back as from JSON)."""
    import json

    return json.loads(json.dumps(obj))


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2)
