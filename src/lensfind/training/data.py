"""Training data: the validation split and the batches of every epoch.

Two sources of positives (:attr:`TrainConfig.positives`):

* ``simulated``: the set as ``engine simulate`` wrote it (lenses fully simulated);
* ``mock``: vL's recipe (sec. 4.2): the set's lenses are left out; every epoch
  pairs deflector images (non-lenses of ``mock_lens_kinds``, e.g. ellipticals)
  with simulated lensed-source stamps at a random ``alpha``
  (:func:`lensfind.training.mock.mock_lenses`), as many as there are non-lenses
  (vL's balanced chunks). The validation split gets its own deflectors and
  sources, fixed for the run.

Epoch order and sampling (``shuffle`` or ``balanced``) come from the run's numpy
generator, so a resumed run replays them exactly.

The network's input convention is the architecture's (its registry entry): the
set's bands are put in the architecture's channel order (:func:`model_spec`) and
normalised with its kind (:func:`normalisation_kind`; ``TrainConfig.normalisation``
may override it), and both are recorded in the report and the model card.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lensfind.errors import LensfindError
from lensfind.runtime.bands import band_order, take_bands
from lensfind.runtime.normalisation import Normalisation, normalisation_of_kind
from lensfind.simulation.dataset import read_dataset, survey_of
from lensfind.simulation.population_file import population_changes
from lensfind.surveys.spec import SurveySpec
from lensfind.training.config import TrainConfig
from lensfind.training.mock import draw_alpha, mock_lenses, source_stamps


class TrainingError(LensfindError):
    """A training run that cannot start (e.g. a set without both classes)."""


def normalisation_for(spec: SurveySpec, kind: str = "asinh") -> Normalisation:
    """The input normalisation of kind ``kind`` of models trained for ``spec``.

    ``spec``'s bands are in the model's channel order; the ``asinh`` scales are
    their sky-noise sigma per pixel (counts).
    """
    return normalisation_of_kind(kind, tuple(b.sky_sigma_counts for b in spec.bands))


def normalisation_kind(config: TrainConfig) -> str:
    """The normalisation a run trains with: ``config.normalisation``, or its architecture's."""
    if config.normalisation != "arch":
        return config.normalisation
    from lensfind.training.architectures import ARCHITECTURES

    info = ARCHITECTURES.get(config.arch)
    return "asinh" if info is None else info.normalisation


def model_spec(arch: str, spec: SurveySpec) -> SurveySpec:
    """``spec`` with the bands an ``arch`` model takes, in the network's channel order.

    E.g. ``ou66`` on a Euclid set (VIS, Y, J, H) takes J, Y, H, VIS; architectures
    that take any bands keep ``spec`` as it is.
    """
    from lensfind.training.architectures import input_bands

    bands = input_bands(arch, spec.band_names)
    return spec if bands == spec.band_names else spec.select(bands)


def require_both_classes(
    is_lens: np.ndarray, path: Path | str, purpose: str, minimum: int = 1
) -> None:
    """Raise :class:`TrainingError` naming ``path`` unless both classes have ``minimum``."""
    n_lens, n_other = int(is_lens.sum()), int((~is_lens).sum())
    if n_lens < minimum or n_other < minimum:
        raise TrainingError(
            f"{path}: {n_lens} lens(es) and {n_other} non-lens(es); {purpose} needs at least "
            f"{minimum} of each"
        )


def stratified_split(
    is_lens: np.ndarray, val_fraction: float, rng: np.random.Generator, path: Path | str
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (validation, training), keeping the class ratio in both.

    Each class gives ``max(1, round(val_fraction * n_class))`` objects to validation,
    so model selection by AUROC always sees both classes.
    """
    is_lens = np.asarray(is_lens, dtype=bool)
    require_both_classes(is_lens, path, "training with a validation split", minimum=2)
    val, train = [], []
    for cls in (True, False):
        idx = rng.permutation(np.flatnonzero(is_lens == cls))
        k = max(1, round(val_fraction * len(idx)))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(val)), np.sort(np.concatenate(train))


class TrainingData:
    """A training set split for one run; yields normalised batches.

    Parameters
    ----------
    path : Path
        Simulated set (``engine simulate``).
    config : TrainConfig
        Run settings (``val_fraction``, ``positives``, ``sampling``, mock options).
    rng : numpy.random.Generator
        The run's generator; the split (and, for mock lenses, the source seed and
        the validation pairs) are drawn from it here.
    """

    def __init__(self, path: Path, config: TrainConfig, rng: np.random.Generator) -> None:
        data, self.attrs = read_dataset(path)
        self.path = path
        self.config = config
        self.set_spec = survey_of(self.attrs)
        self.spec = model_spec(config.arch, self.set_spec)  # the network's bands, in order
        self.norm = normalisation_for(self.spec, normalisation_kind(config))
        images = self.in_model_order(data.images, self.set_spec.band_names)
        is_lens = np.asarray(data.truth["is_lens"], dtype=bool)
        val_idx, tr_idx = stratified_split(is_lens, config.val_fraction, rng, path)
        self.n_val_split, self.n_train_split = len(val_idx), len(tr_idx)
        if config.positives == "simulated":
            self._x = self.norm(images)
            self._raw = None
            self._y = is_lens.astype(np.float32)
            self.x_val, self.y_val = self._x[val_idx], self._y[val_idx]
            self._lens = tr_idx[is_lens[tr_idx]]
            self._other = tr_idx[~is_lens[tr_idx]]
            self._train = tr_idx
            return
        # mock lenses: the set's simulated lenses are not used
        self._raw = images
        kinds = np.asarray(data.truth["kind"]).astype(str)
        hosts = np.isin(kinds, config.mock_lens_kinds) & ~is_lens
        self._other = tr_idx[~is_lens[tr_idx]]
        self._hosts = tr_idx[hosts[tr_idx]]
        val_other, val_hosts = val_idx[~is_lens[val_idx]], val_idx[hosts[val_idx]]
        if len(self._hosts) == 0 or len(val_hosts) == 0:
            raise TrainingError(
                f"{path}: mock lenses need non-lenses of kind(s) "
                f"{', '.join(config.mock_lens_kinds)} in both the training and validation "
                f"split; found {len(self._hosts)} and {len(val_hosts)}"
            )
        n_val_src = max(1, config.mock_sources // 5)
        seed = int(rng.integers(2**31 - 1))
        stamps = source_stamps(self.spec, config.mock_sources + n_val_src, seed)
        self._sources, val_sources = stamps[: config.mock_sources], stamps[config.mock_sources :]
        n = len(val_other)
        lo, hi = config.mock_alpha
        pos = mock_lenses(
            self._raw[rng.choice(val_hosts, n)],
            val_sources[rng.integers(0, n_val_src, n)],
            draw_alpha(rng, n, lo, hi),
        )
        self.x_val = self.norm(np.concatenate([self._raw[val_other], pos]))
        self.y_val = np.r_[np.zeros(n), np.ones(n)].astype(np.float32)

    def in_model_order(self, images: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
        """Cutouts ``images`` with bands ``bands`` (a set's) in the network's band order."""
        return take_bands(images, band_order(bands, self.spec.band_names, self.config.arch))

    def model_input(self, images: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
        """Raw cutouts of a set with bands ``bands`` -> the network's normalised input."""
        return self.norm(self.in_model_order(images, bands))

    def set_info(self) -> dict[str, Any]:
        """What the model card records of the training set and its split."""
        population = self.attrs["population"]
        return {
            "path": str(self.path),
            "n": int(self.attrs["n"]),
            "seed": self.attrs["seed"],
            "population": population,
            "population_changes": population_changes(population),
            "pixel_scale_arcsec": self.attrs.get("pixel_scale_arcsec"),
            "n_train": self.n_train_split,
            "n_val": self.n_val_split,
            "positives": self.config.positives,
        }

    @property
    def n_train(self) -> int:
        """Objects per training epoch."""
        if self.config.positives == "mock":
            return 2 * len(self._other)
        return len(self._train)

    def class_counts(self) -> tuple[int, int]:
        """(non-lenses, lenses) seen per epoch (for class weights)."""
        if self.config.positives == "mock" or self.config.sampling == "balanced":
            return self.n_train - self.n_train // 2, self.n_train // 2
        return len(self._other), len(self._lens)

    def batches(
        self, rng: np.random.Generator, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of normalised batches ``(x (n, bands, H, W), y (n,))``.

        The epoch's plan is drawn from ``rng`` before the first batch is yielded,
        so the generator's state after this call does not depend on how many
        batches are consumed.
        """
        if self.config.positives == "mock":
            yield from self._mock_batches(rng, batch_size)
            return
        if self.config.sampling == "balanced":
            half = len(self._train) // 2
            order = np.concatenate(
                [
                    rng.choice(self._lens, half, replace=len(self._lens) < half),
                    rng.choice(
                        self._other,
                        len(self._train) - half,
                        replace=len(self._other) < len(self._train) - half,
                    ),
                ]
            )
            order = order[rng.permutation(len(order))]
        else:
            order = self._train[rng.permutation(len(self._train))]
        return_batches = [
            np.sort(order[i : i + batch_size]) for i in range(0, len(order), batch_size)
        ]
        for idx in return_batches:
            yield self._x[idx], self._y[idx]

    def _mock_batches(
        self, rng: np.random.Generator, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        assert self._raw is not None
        n = len(self._other)
        lo, hi = self.config.mock_alpha
        image = np.concatenate([self._other, rng.choice(self._hosts, n)])
        source = np.r_[np.full(n, -1), rng.integers(0, len(self._sources), n)]
        alpha = np.r_[np.zeros(n), draw_alpha(rng, n, lo, hi)]
        order = rng.permutation(2 * n)
        image, source, alpha = image[order], source[order], alpha[order]
        for i in range(0, 2 * n, batch_size):
            sl = slice(i, i + batch_size)
            x = self._raw[image[sl]].copy()
            pos = source[sl] >= 0
            if pos.any():
                x[pos] = mock_lenses(x[pos], self._sources[source[sl][pos]], alpha[sl][pos])
            yield self.norm(x), pos.astype(np.float32)
