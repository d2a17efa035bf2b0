"""The training loop: simulated set in, checkpoint + held-out metrics out."""

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lensfind import __version__
from lensfind.errors import LensfindError
from lensfind.preprocess import AsinhNormalisation
from lensfind.simulation.dataset import read_dataset, survey_of
from lensfind.surveys.spec import SurveySpec
from lensfind.training._torch import torch
from lensfind.training.architectures import build_model
from lensfind.training.metrics import evaluate

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingError(LensfindError):
    """A training run that cannot start (e.g. a set without both classes)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes
    ----------
    arch : str
        Architecture name (``lensfind.training.architectures``).
    epochs : int
        Passes over the training set; the epoch with the best validation AUROC is kept.
    batch_size : int
        Objects per optimiser step.
    lr : float
        Adam learning rate (cosine-annealed to 0).
    weight_decay : float
        AdamW decoupled weight decay.
    val_fraction : float
        Fraction of the training set held out for model selection.
    seed : int
        Seeds weight initialisation, shuffling, augmentation and the split.
    threads : int
        torch intra-op threads.
    """

    arch: str = "lensfind_des_compact"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 2


def normalisation_for(spec: SurveySpec) -> AsinhNormalisation:
    """The input normalisation of models trained for ``spec`` (scale = sky sigma)."""
    return AsinhNormalisation(scale=tuple(b.sky_sigma_counts for b in spec.bands))


def _require_both_classes(is_lens: np.ndarray, path: Path, purpose: str, minimum: int = 1) -> None:
    n_lens, n_other = int(is_lens.sum()), int((~is_lens).sum())
    if n_lens < minimum or n_other < minimum:
        raise TrainingError(
            f"{path}: {n_lens} lens(es) and {n_other} non-lens(es); {purpose} needs at least "
            f"{minimum} of each"
        )


def stratified_split(
    is_lens: np.ndarray, val_fraction: float, rng: np.random.Generator, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (validation, training), keeping the class ratio in both.

    Each class gives ``max(1, round(val_fraction * n_class))`` objects to validation,
    so model selection by AUROC always sees both classes.
    """
    is_lens = np.asarray(is_lens, dtype=bool)
    _require_both_classes(is_lens, path, "training with a validation split", minimum=2)
    val, train = [], []
    for cls in (True, False):
        idx = rng.permutation(np.flatnonzero(is_lens == cls))
        k = max(1, round(val_fraction * len(idx)))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(val)), np.sort(np.concatenate(train))


def _augment(x: "torch.Tensor", gen: "torch.Generator") -> "torch.Tensor":
    """Random flips and 90-degree rotations of a batch (lensing has no preferred axis)."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(0, 2, (1,), generator=gen)):
        x = torch.flip(x, dims=(3,))
    return x


def predict(model: "torch.nn.Module", x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Lens probabilities of normalised inputs ``x`` (N, bands, H, W)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            out.append(torch.sigmoid(model(torch.from_numpy(x[i : i + batch_size]))).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def train(
    train_set: Path,
    out_dir: Path,
    config: TrainConfig,
    test_set: Path | None = None,
    quiet: bool = False,
) -> dict:
    """Train ``config.arch`` on a simulated set; write the checkpoint and a report.

    Writes ``out_dir/checkpoint.pt`` (tensors and plain metadata only, loadable
    with ``torch.load(weights_only=True)``) and ``out_dir/train_report.json``.
    Returns the report (history, validation and held-out test metrics).
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, attrs = read_dataset(train_set)
    spec = survey_of(attrs)
    norm = normalisation_for(spec)
    x_all = norm(data.images)
    y_all = data.truth["is_lens"].astype(np.float32)
    rng = np.random.default_rng(config.seed)
    val_idx, tr_idx = stratified_split(data.truth["is_lens"], config.val_fraction, rng, train_set)
    x_val, y_val = x_all[val_idx], y_all[val_idx]

    model = build_model(config.arch, len(spec.bands), spec.cutout_px)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * ((len(tr_idx) + config.batch_size - 1) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(config.seed)
    history, best_auc, best_state = [], -1.0, None
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        perm = tr_idx[rng.permutation(len(tr_idx))]
        total = 0.0
        bar = tqdm(
            range(0, len(perm), config.batch_size),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=quiet,
            unit="batch",
        )
        for i in bar:
            idx = np.sort(perm[i : i + config.batch_size])
            xb = _augment(torch.from_numpy(x_all[idx]), gen)
            yb = torch.from_numpy(y_all[idx])
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val = evaluate(y_val, predict(model, x_val))
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / len(tr_idx),
                "val_auroc": val["auroc"],
                "val_accuracy": val["accuracy"],
            }
        )
        if not quiet:
            tqdm.write(
                f"epoch {epoch + 1}: loss {total / len(tr_idx):.4f} "
                f"val AUROC {val['auroc']:.4f} acc {val['accuracy']:.4f}"
            )
        if val["auroc"] > best_auc:
            best_auc = val["auroc"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    report: dict = {
        "arch": config.arch,
        "config": asdict(config),
        "survey": spec.name,
        "bands": list(spec.band_names),
        "input_shape": [len(spec.bands), spec.cutout_px, spec.cutout_px],
        "normalisation": norm.to_dict(),
        "train_set": {
            "path": str(train_set),
            "n": int(attrs["n"]),
            "seed": attrs["seed"],
            "population": attrs["population"],
            "n_train": len(tr_idx),
            "n_val": len(val_idx),
        },
        "history": history,
        "best_val_auroc": best_auc,
        "train_seconds": round(time.perf_counter() - start, 1),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lensfind": __version__,
        },
    }
    if test_set is not None:
        test, tattrs = read_dataset(test_set)
        _require_both_classes(test.truth["is_lens"], test_set, "a held-out evaluation")
        scores = predict(model, norm(test.images))
        report["test_set"] = {"path": str(test_set), "n": int(tattrs["n"]), "seed": tattrs["seed"]}
        report["test_metrics_torch"] = evaluate(test.truth["is_lens"], scores)
    torch.save({"state_dict": best_state, "meta": json.dumps(report)}, out_dir / CHECKPOINT_NAME)
    (out_dir / "train_report.json").write_text(json.dumps(report, indent=2))
    return report


def load_checkpoint(path: Path) -> tuple["torch.nn.Module", dict]:
    """Load a checkpoint written by :func:`train` (no pickle: ``weights_only=True``)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(blob["meta"])
    bands, size, _ = meta["input_shape"]
    model = build_model(meta["arch"], bands, size)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, meta
