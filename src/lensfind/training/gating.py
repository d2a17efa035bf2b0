"""The gating network of the input-dependent ensemble (van Lohuizen 2021 sec. 3.6.2).

vL's "Dynamic Ensembler" sees the cutout and predicts which member will be
closest to the truth: its targets are one-hot vectors of the member whose
probability is nearest the label (:func:`~lensfind.training.ensemble.best_member_targets`),
it ends in ``M`` softmax outputs, is trained with categorical cross-entropy and
Adam, and the epoch with the best validation score is kept. At inference its
softmax outputs are the per-image member weights (eq. 3.23).

Differences from vL, for CPU cost: the gate is :class:`GatingCNN` (three strided
convolutions, about 25 k parameters at ``width=16``) instead of a ResNet18, and
it trains for a few epochs on the validation set given to ``engine ensemble``
(split 80/20, per class, into gate training and gate validation) instead of
2000 chunks of 4096 mock lenses. The kept epoch minimises the ensemble's mean
squared error on the gate-validation part (the same objective as Nelder-Mead).
"""

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lensfind.training._torch import nn, torch
from lensfind.training.data import stratified_split
from lensfind.training.ensemble import best_member_targets


class GatingCNN(nn.Module):
    """Cutouts ``(N, bands, H, W)`` -> member logits ``(N, M)`` (softmax left to the user).

    Parameters
    ----------
    bands : int
        Input channels.
    n_members : int
        Ensemble size ``M``.
    width : int
        Channels of the first convolution (then 2x and 4x).
    """

    def __init__(self, bands: int, n_members: int, width: int = 16) -> None:
        super().__init__()

        def stage(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]  # fmt: skip

        self.features = nn.Sequential(
            *stage(bands, width, 5), *stage(width, 2 * width, 3), *stage(2 * width, 4 * width, 3)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, n_members)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _gated_mse(gate: nn.Module, x: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
    gate.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), 256):
            g = torch.softmax(gate(torch.from_numpy(x[i : i + 256])), dim=1).double().numpy()
            out.append((g * probs[i : i + 256]).sum(axis=1))
    return float(np.mean((np.concatenate(out) - labels) ** 2))


def train_gate(
    gate: nn.Module,
    x: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    val_fraction: float = 0.2,
    seed: int = 0,
    quiet: bool = True,
) -> dict[str, Any]:
    """Train ``gate`` in place as vL's Dynamic Ensembler; keep its best epoch.

    Parameters
    ----------
    gate : torch.nn.Module
        Maps normalised cutouts to ``M`` member logits.
    x : ndarray (N, bands, H, W)
        Normalised cutouts (the members' input).
    probs : ndarray (N, M)
        The members' lens probabilities on ``x``.
    labels : ndarray (N,)
        1 for lenses.
    epochs, batch_size, lr, val_fraction, seed, quiet
        Adam on categorical cross-entropy; ``val_fraction`` of each class is held
        out to pick the epoch (lowest ensemble MSE there).

    Returns
    -------
    dict
        ``history`` (per epoch: ``train_ce``, ``val_mse``), ``best_epoch``,
        ``val_mse``, ``val_mse_mean_weights`` and ``target_share`` (how often each
        member is the closest one).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=float)
    probs = np.asarray(probs, dtype=float)
    val, tr = stratified_split(labels.astype(bool), val_fraction, rng, path="validation set")
    targets = torch.from_numpy(best_member_targets(probs, labels))
    opt = torch.optim.Adam(gate.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    best, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(epochs):
        gate.train()
        order = tr[rng.permutation(len(tr))]
        total = 0.0
        for i in tqdm(range(0, len(order), batch_size), desc=f"gate epoch {epoch + 1}",
                      disable=quiet, unit="batch"):  # fmt: skip
            idx = np.sort(order[i : i + batch_size])
            opt.zero_grad()
            loss = loss_fn(gate(torch.from_numpy(x[idx])), targets[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        mse = _gated_mse(gate, x[val], probs[val], labels[val])
        history.append({"epoch": epoch + 1, "train_ce": total / len(tr), "val_mse": mse})
        if mse < best:
            best, best_epoch = mse, epoch + 1
            best_state = {k: v.detach().clone() for k, v in gate.state_dict().items()}
    assert best_state is not None
    gate.load_state_dict(best_state)
    gate.eval()
    share = np.bincount(targets.numpy(), minlength=probs.shape[1]) / len(labels)
    return {
        "history": history,
        "best_epoch": best_epoch,
        "val_mse": best,
        "val_mse_mean_weights": float(np.mean((probs[val].mean(axis=1) - labels[val]) ** 2)),
        "target_share": share.tolist(),
        "n_train": len(tr),
        "n_val": len(val),
    }
