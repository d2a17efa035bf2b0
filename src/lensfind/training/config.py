"""Training configuration: frozen dataclasses built from a YAML file and CLI flags.

:class:`TrainConfig` holds the hyper-parameters (recorded in every checkpoint
and model card); :class:`TrainJob` adds what one run reads and writes. Both are
filled by :func:`build_train_job` from, in increasing precedence, the defaults,
a YAML mapping (flat keys, the field names below) and explicit flags. Unknown
keys and values of the wrong type are a :class:`~lensfind.errors.ConfigError`
naming the key. Needs no torch.
"""

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from lensfind.errors import ConfigError
from lensfind.settings_file import read_yaml

#: Names of :data:`lensfind.training.losses.LOSSES` (checked there).
LOSS_NAMES = ("bce", "weighted_ce", "soft_f1", "double_soft_f1", "soft_fbeta")
#: Model-selection criteria and whether they are maximised.
SELECT_BY = {"val_auroc": True, "val_loss": False, "fbeta_curve_mean": True, "soft_fbeta": True}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    The defaults reproduce the shipped ``des_y3`` model (``make model``).

    Attributes
    ----------
    arch : str
        Architecture name (:mod:`lensfind.training.architectures`).
    epochs : int
        Maximum passes over the training set.
    batch_size : int
        Objects per optimiser step.
    lr : float
        Peak learning rate.
    weight_decay : float
        Decoupled weight decay (``adamw``) or L2 penalty (``adam``).
    optimizer : {"adamw", "adam"}
        ``adam`` with ``weight_decay=0`` is vL's optimiser.
    schedule : {"onecycle", "cosine", "constant"}
        Learning-rate schedule over all steps (``constant``: vL's).
    val_fraction : float
        Fraction of the training set held out, per class, for model selection.
    seed : int
        Seeds weight initialisation, split, shuffling, mock lenses and augmentation.
    threads : int
        torch intra-op threads.
    device : {"cpu", "cuda"}
        Where the network is trained (``cuda`` needs a CUDA build of torch and a GPU).
    loss : str
        ``bce``, ``weighted_ce``, ``soft_f1``, ``double_soft_f1`` or ``soft_fbeta``
        (:mod:`lensfind.training.losses`).
    beta : float
        Beta of the soft F-beta loss and of the F-beta metrics (vL: 0.17).
    class_weighting : {"none", "balanced"}
        ``balanced`` weights lenses and non-lenses by ``N / (2 N_class)`` of the
        training split (``bce``: as ``pos_weight``; ``weighted_ce``: as class weights).
    sampling : {"shuffle", "balanced"}
        ``balanced`` draws every epoch half lenses, half non-lenses (vL's chunks;
        the smaller class is drawn with replacement).
    select_by : {"val_auroc", "val_loss", "fbeta_curve_mean", "soft_fbeta"}
        Criterion on the validation split that picks the kept epoch (vL sec. 3.5).
    patience : int
        Stop after this many epochs without improvement of ``select_by`` (0: never).
    positives : {"simulated", "mock"}
        ``simulated`` trains on the set as simulated; ``mock`` builds the lenses
        from the set's non-lenses of ``mock_lens_kinds`` plus simulated lensed
        sources, ``m = l + s max(l) alpha / max(s)`` (vL eq. 4.2).
    mock_sources : int
        Source-only stamps simulated for the mock lenses (a fifth more go to validation).
    mock_alpha : (float, float)
        Range of the uniform ``alpha`` (vL: 0.02 to 0.3).
    mock_lens_kinds : tuple of str
        Non-lens kinds used as the deflector ``l`` (vL: luminous red galaxies).
    rotation : {"none", "90", "any"}
        Rotations by multiples of 90 degrees (exact) or by any angle (nearest pixel).
    flip : bool
        Random left-right flips.
    shift_px : float
        Largest random shift along each axis, in pixels (vL: 4).
    zoom_max : float
        Random magnification in ``[1, zoom_max]`` (vL: 1.05).
    augment_per : {"batch", "sample"}
        Draw one transformation per batch (the shipped model's training) or one per
        object. Either way lenses and non-lenses are transformed alike.
    occlusion : float
        Fraction of training cutouts, lenses and non-lenses alike, with a zeroed
        5 px annulus at a random radius below a quarter of the side (against the
        probe's occlusion sensitivity of non-lenses; 0: none).
    keep_checkpoints : bool
        Keep every epoch's checkpoint (``epoch-NNN.pt``) besides ``last.pt``.
    normalisation : {"arch", "asinh", "minmax"}
        Input normalisation (:mod:`lensfind.runtime.normalisation`): ``arch`` is the
        architecture's own (``minmax`` for the Wilde+22 networks, ``asinh``
        otherwise); recorded in the checkpoint and the model card.
    """

    arch: str = "lensfind_des_compact"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adamw", "adam"] = "adamw"
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 2
    device: Literal["cpu", "cuda"] = "cpu"
    loss: Literal["bce", "weighted_ce", "soft_f1", "double_soft_f1", "soft_fbeta"] = "bce"
    beta: float = 0.17
    class_weighting: Literal["none", "balanced"] = "none"
    sampling: Literal["shuffle", "balanced"] = "shuffle"
    select_by: Literal["val_auroc", "val_loss", "fbeta_curve_mean", "soft_fbeta"] = "val_auroc"
    patience: int = 0
    positives: Literal["simulated", "mock"] = "simulated"
    mock_sources: int = 1024
    mock_alpha: tuple[float, float] = (0.02, 0.3)
    mock_lens_kinds: tuple[str, ...] = ("elliptical",)
    rotation: Literal["none", "90", "any"] = "90"
    flip: bool = True
    shift_px: float = 0.0
    zoom_max: float = 1.0
    augment_per: Literal["batch", "sample"] = "batch"
    occlusion: float = 0.0
    keep_checkpoints: bool = False
    normalisation: Literal["arch", "asinh", "minmax"] = "arch"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads", "mock_sources"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, hint in _hints(TrainConfig).items():
            choices = _literal_choices(hint)
            if choices and getattr(self, name) not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
                )
        if self.lr <= 0 or self.beta <= 0:
            raise ConfigError(f"lr and beta must be positive, got {self.lr} and {self.beta}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience < 0 or self.shift_px < 0 or self.zoom_max < 1:
            raise ConfigError("patience and shift_px must be >= 0 and zoom_max >= 1")
        if not 0 <= self.occlusion <= 1:
            raise ConfigError(f"occlusion must be in [0, 1], got {self.occlusion}")
        lo, hi = self.mock_alpha
        if not 0 < lo <= hi:
            raise ConfigError(f"mock_alpha must satisfy 0 < low <= high, got {self.mock_alpha}")
        if self.class_weighting == "balanced" and self.loss not in ("bce", "weighted_ce"):
            raise ConfigError(
                f"class_weighting 'balanced' applies to the cross-entropies, not loss "
                f"{self.loss!r} (soft F-scores are ratios of counts: balance with "
                "sampling: balanced)"
            )


@dataclass(frozen=True)
class TrainJob:
    """One ``engine train`` run: data, outputs and a :class:`TrainConfig`.

    Attributes
    ----------
    train_set : Path
        Simulated set to train on (``engine simulate``), split into training and
        validation by ``val_fraction``.
    test_set : Path or None
        Held-out simulated set, never seen in training: its metrics go into the
        report and the model card (optional).
    out : Path
        Checkpoint directory (``checkpoint.pt``, ``last.pt``, metrics, plots, report).
    export : bool
        Export the kept model (ONNX + ``model_card.json`` + ``MODEL_CARD.md``).
    export_dir : Path or None
        Where to export (default ``out/model``).
    name : str or None
        Model name in the card (default ``<arch>-<survey>``).
    threshold : float
        Decision threshold recorded in the card.
    resume : bool
        Continue an interrupted run from ``out/last.pt``.
    quiet : bool
        No progress bars.
    """

    train_set: Path
    out: Path
    test_set: Path | None = None
    export: bool = True
    export_dir: Path | None = None
    name: str | None = None
    threshold: float = 0.5
    resume: bool = False
    quiet: bool = False
    config: TrainConfig = dataclasses.field(default_factory=TrainConfig)


JOB_FIELDS = tuple(f.name for f in dataclasses.fields(TrainJob) if f.name != "config")
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _literal_choices(hint: Any) -> tuple[Any, ...]:
    return get_args(hint) if get_origin(hint) is Literal else ()


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def coerce(key: str, hint: Any, value: Any, base: Path | None = None) -> Any:
    """``value`` (from YAML or a flag string) as the type ``hint`` of field ``key``.

    Relative paths are taken relative to ``base`` (the YAML file's directory).
    """
    hint, optional = _strip_optional(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint is Path:
            path = Path(value).expanduser()
            return base / path if base is not None and not path.is_absolute() else path
        if get_origin(hint) is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            args = get_args(hint)
            item_type = args[0]
            out = tuple(coerce(key, item_type, v.strip() if isinstance(v, str) else v)
                        for v in items)  # fmt: skip
            if Ellipsis not in args and len(out) != len(args):
                raise ValueError(value)
            return out
        choices = _literal_choices(hint)
        if choices:
            text = str(value)
            if text not in choices:
                raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
            return text
        return str(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(hint)}") from None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def build_train_job(flags: Mapping[str, Any], config_file: Path | None = None) -> TrainJob:
    """A :class:`TrainJob` from a YAML file overridden by ``flags`` (``None``: not given).

    Raises
    ------
    ConfigError
        An unknown key (named, with the file), a bad value, or no ``train_set``/``out``.
    """
    hints = {**_hints(TrainJob), **_hints(TrainConfig)}
    known = set(JOB_FIELDS) | set(CONFIG_FIELDS)
    values: dict[str, Any] = {}
    if config_file is not None:
        base = Path(config_file).parent
        for key, value in read_yaml(config_file).items():
            if key not in known:
                raise ConfigError(
                    f"{config_file}: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )
            values[key] = coerce(key, hints[key], value, base)
    for key, value in flags.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            values[key] = coerce(key, hints[key], value)
    for key in ("train_set", "out"):
        if values.get(key) is None:
            raise ConfigError(f"engine train needs {key} (--{key.replace('_', '-')} or the YAML)")
    config = TrainConfig(**{k: v for k, v in values.items() if k in CONFIG_FIELDS})
    return TrainJob(**{k: v for k, v in values.items() if k in JOB_FIELDS}, config=config)
