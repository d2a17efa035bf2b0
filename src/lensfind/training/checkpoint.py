"""Checkpoint files of a training run (torch; read back with ``weights_only=True``).

``checkpoint.pt``
    The kept (selected) model: ``{"state_dict": ..., "meta": JSON string}``; what
    ``engine export`` reads.
``last.pt``
    The state at the end of the latest epoch, from which ``--resume`` continues:
    model, optimiser, scheduler, the kept model so far, the torch and numpy
    random states and the progress (history, selection, early stopping).
``epoch-NNN.pt``
    Copies of ``last.pt`` per epoch, with ``keep_checkpoints``.

Every file is written to a temporary name and renamed, so a run killed while
saving leaves the previous file intact. Nothing is pickled: tensors, plain
containers and JSON strings only.
"""

import json
import os
from pathlib import Path
from typing import Any

from lensfind.errors import ResumeError
from lensfind.training._torch import torch
from lensfind.training.architectures import build_model

CHECKPOINT_NAME = "checkpoint.pt"
LAST_NAME = "last.pt"


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state_dict: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write the kept model and its metadata (``checkpoint.pt`` format)."""
    _save({"state_dict": state_dict, "meta": json.dumps(meta)}, path)


def load_checkpoint(path: Path) -> tuple["torch.nn.Module", dict]:
    """Load a checkpoint written by :func:`~lensfind.training.loop.train` (eval mode)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(blob["meta"])
    bands, size, _ = meta["input_shape"]
    model = build_model(meta["arch"], bands, size)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, meta


def save_state(
    path: Path,
    *,
    model: "torch.nn.Module",
    optimizer: "torch.optim.Optimizer",
    scheduler: Any,
    best_state: dict[str, Any] | None,
    generator: "torch.Generator",
    progress: dict[str, Any],
) -> None:
    """Write the resumable state of a run at the end of an epoch (``last.pt``)."""
    blob: dict[str, Any] = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_state": best_state if best_state is not None else {},
        "torch_generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "progress": json.dumps(progress),
    }
    if scheduler is not None:
        blob["scheduler"] = scheduler.state_dict()
    if torch.cuda.is_available():
        blob["cuda_rng"] = torch.cuda.get_rng_state_all()
    _save(blob, path)


def load_state(path: Path, device: str) -> dict[str, Any]:
    """Read ``last.pt``; ``progress`` is decoded from JSON."""
    if not path.is_file():
        raise ResumeError(f"{path}: nothing to resume (no last-epoch checkpoint)")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        blob["progress"] = json.loads(blob["progress"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ResumeError(f"{path}: not a lensfind training state ({exc})") from None
    return dict(blob)


#: Settings a resumed run may change: they do not alter the result (threads and
#: device up to floating-point reordering) or only what is kept on disk.
RESUMABLE_CHANGES = frozenset({"threads", "device", "keep_checkpoints"})


def _extends(key: str, saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Other epochs under a constant learning rate: the epochs run so far are unchanged
    (the run then stops at the new number; the caller checks it is not behind the run)."""
    return (
        key == "epochs" and saved.get("schedule") == "constant"
        and current.get("schedule") == "constant"
    )  # fmt: skip


def check_resumable(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume with a different configuration or training set.

    A run with a constant learning rate may be continued for more epochs, or
    stopped at fewer than it was set to (its schedule does not depend on the
    total); other schedules may not.
    """
    differ = sorted(
        k for k in set(saved) | set(current)
        if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
        and not _extends(k, saved, current)
    )  # fmt: skip
    if differ:
        shown = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in differ)
        hint = " (other epochs only with --schedule constant)" if "epochs" in differ else ""
        raise ResumeError(f"{path}: cannot resume with changed settings ({shown}){hint}")
