"""The Python interface: scan a survey, score cutouts, load a model, read a run.

Exported lazily by :mod:`lensfind` (``import lensfind`` stays cheap)::

    import lensfind
    run = lensfind.scan("des_y3", out="runs/des")      # the embedded region
    run.candidates["object_id", "ra", "dec", "score"][:5]
    p = lensfind.score(cutouts, model="des_y3")         # (N, 4, 100, 100) counts -> (N,)

Each function is one call of the library the ``engine`` command calls
(:func:`lensfind.engine.scan.run_scan`, :class:`lensfind.runtime.scorer.OnnxScorer`,
:func:`lensfind.runtime.shipped.resolve_model`), so the results are those of the
command line.
"""

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensfind.errors import ConfigError

if TYPE_CHECKING:
    from astropy.table import Table

    from lensfind.runtime.card import ModelCard

__all__ = ["Run", "load_model", "scan", "score"]

#: Column-name endings and the astropy unit their values are in.
_UNITS = (("_arcsec", "arcsec"), ("_deg", "deg"), ("_rad", "rad"), ("_kms", "km / s"))
_DEGREES = ("ra", "dec")


def _table(arrow: Any) -> "Table":
    """An Arrow table as an astropy Table, with units where the column name says."""
    from astropy import units as u
    from astropy.table import Table

    out = Table()
    for name in arrow.column_names:
        values = arrow.column(name).to_numpy(zero_copy_only=False)
        if values.dtype == object:
            values = np.array(["" if v is None else str(v) for v in values], dtype=str)
        unit = "deg" if name in _DEGREES else None
        unit = next((un for end, un in _UNITS if name.endswith(end)), unit)
        if name.startswith("mag_"):
            unit = "mag"
        out[name] = values if unit is None else values * u.Unit(unit)
    return out


class Run:
    """A scan's run directory, read on demand.

    Parameters
    ----------
    run_dir : Path or str
        A directory written by ``engine scan`` (or :func:`scan`).

    Attributes
    ----------
    run_dir : Path
        The directory.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        if not (self.run_dir / "summary.json").is_file():
            raise ConfigError(f"{self.run_dir}: not a scan's run directory (no summary.json)")

    def __repr__(self) -> str:
        s = self.summary
        return (f"Run({str(self.run_dir)!r}: {s['n_objects']} objects, {s['n_scored']} scored, "
                f"{s.get('n_candidates', '?')} candidates)")  # fmt: skip

    @cached_property
    def summary(self) -> dict[str, Any]:
        """``summary.json``: counts by status, threshold, model sha256, timings (s)."""
        return dict(json.loads((self.run_dir / "summary.json").read_text()))

    @cached_property
    def candidates(self) -> "Table":
        """The candidates, ranked: ``object_id``, ``ra``/``dec`` (deg), ``score`` (P(lens),
        calibrated where the model is), ``rank``, catalogue columns and known-lens match."""
        from lensfind.parquet_files import read_parquet

        return _table(read_parquet(self.run_dir / "candidates.parquet"))

    @cached_property
    def scores(self) -> "Table":
        """One row per input object: ``object_id``, ``ra``/``dec`` (deg), ``tile``,
        ``status`` (scored, skipped, failed), ``reason``, ``score`` (NaN unless scored)."""
        import pyarrow as pa

        from lensfind.parquet_files import read_parquet

        files = sorted((self.run_dir / "scores").glob("*.parquet"))
        return _table(pa.concat_tables([read_parquet(f) for f in files]))

    @cached_property
    def selection_function(self) -> "Table | None":
        """Completeness of the injected lenses per bin, None when nothing was injected.

        One row per ``parameter`` (``theta_e_arcsec``, ``mag_g_source``, ``mag_r_lens``,
        ``psf_fwhm_arcsec``) and bin: ``lo``/``hi``/``centre`` in that parameter's unit
        (arcsec or AB mag, as its name says), ``n`` injections, ``completeness`` with its
        95% Wilson interval ``ci_lo``/``ci_hi``, ``ok`` (enough injections), mean and std score.
        """
        from lensfind.parquet_files import read_parquet

        path = self.run_dir / "selection_function.parquet"
        return _table(read_parquet(path)) if path.is_file() else None


def scan(
    survey: str = "des_y3",
    data: Path | str | None = None,
    model: "str | Path | None" = None,
    out: Path | str | None = None,
    **options: Any,
) -> Run:
    """Scan a survey region for lenses, as ``engine scan`` does; return its :class:`Run`.

    Parameters
    ----------
    survey : str
        Survey registry name (``des_y3``, ``euclid_wide``, ...).
    data : Path or str, optional
        Region directory (FITS tiles + catalogue); default: the survey's embedded
        synthetic region, generated once into the user cache.
    model : str or Path, optional
        Shipped model name or model directory; default: the survey's shipped model.
    out : Path or str, optional
        Run directory; default ``runs/<survey>-<UTC time>``.
    **options
        Any other :class:`~lensfind.engine.config.ScanConfig` setting, by field name
        (``workers=0``, ``inject_rate=0.1``, ``threshold=0.8``, ``quiet=True``,
        ``resume=True``, ``store_dtype="float32"``, ...); an unknown name is an error.

    Returns
    -------
    Run
        The finished run (``.candidates``, ``.scores``, ``.selection_function``,
        ``.summary``).
    """
    from lensfind.engine.config import ScanConfig, build_config
    from lensfind.engine.scan import run_scan

    flags = {"survey": survey, "data_dir": None if data is None else Path(data),
             "model": None if model is None else str(model),
             "out": None if out is None else Path(out), **options}  # fmt: skip
    return Run(run_scan(build_config(ScanConfig, flags)).run_dir)


def load_model(name_or_dir: str | Path, survey: str = "") -> "ModelCard":
    """A model by shipped name (``"des_y3"``) or directory, its ONNX checksum verified.

    Parameters
    ----------
    name_or_dir : str or Path
        Shipped model name, or a directory holding ``model.onnx`` + ``model_card.json``.
    survey : str
        Unused unless ``name_or_dir`` is empty: then the survey's shipped model.

    Returns
    -------
    ModelCard
        ``name``, ``survey``, ``bands`` (channel order), ``input_shape`` (bands, H, W
        in pixels), ``normalisation``, ``threshold``, ``sha256`` and the full card
        as ``raw``.
    """
    from lensfind.runtime.shipped import resolve_model

    return resolve_model(name_or_dir or None, survey)


def score(
    cutouts: np.ndarray,
    model: "str | Path | ModelCard" = "des_y3",
    bands: Sequence[str] | None = None,
    batch_size: int = 256,
    threads: int | None = None,
    provider: str = "cpu",
) -> np.ndarray:
    """Lens probabilities of an in-memory batch of cutouts, as a scan scores them.

    Parameters
    ----------
    cutouts : ndarray, shape (N, bands, H, W)
        Cutouts in image counts (not normalised), float; H and W as the model
        takes them (e.g. 100 x 100 px at 0.263 arcsec/px for ``des_y3``).
    model : str, Path or ModelCard
        Shipped model name, model directory, or a loaded card.
    bands : sequence of str, optional
        Band names of ``cutouts`` in their order (reordered to the model's); default
        the model's own order (``load_model(model).bands``).
    batch_size : int
        Cutouts per model call.
    threads : int, optional
        ONNX Runtime intra-op threads (default one).
    provider : str
        ``cpu``, ``cuda``, ``tensorrt`` or ``auto``.

    Returns
    -------
    ndarray of float32, shape (N,)
        P(lens) per cutout, calibrated where the model card has a calibration.
    """
    from lensfind.runtime.card import ModelCard
    from lensfind.runtime.scorer import OnnxScorer

    card = model if isinstance(model, ModelCard) else load_model(model)
    x = np.asarray(cutouts, dtype=np.float32)
    if x.ndim != 4:
        raise ConfigError(f"cutouts must be (N, bands, H, W), got shape {x.shape}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    scorer = OnnxScorer(card, threads=threads, provider=provider, input_bands=bands)
    parts = [scorer(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
