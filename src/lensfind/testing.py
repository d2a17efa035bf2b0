"""A small test kit: a tiny deterministic ONNX model and a small synthetic region.

These helpers let the engine be exercised end to end in seconds, without torch
and without the shipped models: :func:`make_test_model` writes a model
directory (``model.onnx`` + ``model_card.json``) whose "network" is a fixed,
monotone function of the mean normalised flux, and :func:`make_test_region`
writes a few small FITS tiles with planted lenses, a catalogue and the truth.

They are used by lensfind's own tests and are meant for downstream tests too::

    from lensfind.testing import make_test_model, make_test_region

    region = make_test_region(tmp_path / "region")
    model = make_test_model(tmp_path / "model")
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lensfind import __version__
from lensfind.errors import MissingExtraError
from lensfind.hashing import sha256_of
from lensfind.runtime.card import CARD_NAME, ONNX_NAME
from lensfind.runtime.normalisation import normalisation_of_kind
from lensfind.simulation.region import RegionConfig, make_region
from lensfind.surveys.registry import get_survey

__all__ = ["TEST_MODEL_GAIN", "TEST_MODEL_OFFSET", "make_test_model", "make_test_region"]

#: The test model computes ``sigmoid(GAIN * (mean(normalised cutout) - OFFSET))``.
TEST_MODEL_GAIN = 20.0
TEST_MODEL_OFFSET = 0.1
TEST_MODEL_OPSET = 17


def make_test_model(
    out_dir: Path,
    survey: str = "des_y3",
    name: str = "test-model",
    gain: float = 0.0,
    bands: Sequence[str] | None = None,
    normalisation: str = "asinh",
    band_weights: Sequence[float] | None = None,
) -> Path:
    """Write a tiny deterministic ONNX "lens finder" and its model card.

    The graph takes ``cutouts`` float32 ``(batch, bands, H, W)`` (dynamic batch;
    the engine feeds it cutouts already normalised with the card's
    normalisation) and returns ``lens_probability`` ``(batch,)``::

        p = sigmoid(TEST_MODEL_GAIN * (mean over bands, rows, columns - TEST_MODEL_OFFSET))

    a smooth monotone function of the mean normalised flux, so brighter cutouts
    score higher and the scores of a synthetic region are spread around 0.5.
    With ``band_weights`` each band is multiplied by its weight before the mean,
    so the score depends on the band order. It is built with :mod:`onnx.helper`
    (opset 17), without torch, and the same arguments always give the same bytes.

    Parameters
    ----------
    out_dir : Path
        Model directory to write (created if needed); receives ``model.onnx``
        and ``model_card.json``.
    survey : str
        Survey registry name; sets the bands, the cutout size and the
        normalisation scales (the sky-noise sigma of each band).
    name : str
        Model name recorded in the card.
    gain : float
        Replaces ``TEST_MODEL_GAIN`` when non-zero (``float("nan")`` gives a
        model whose outputs are all NaN, for failure tests).
    bands : sequence of str, optional
        The model's bands in its channel order (default: the survey's); a
        permutation of the survey's bands gives a card the scorers reorder to.
    normalisation : {"asinh", "minmax"}
        The card's normalisation kind (``asinh`` scales: the bands' sky sigma).
    band_weights : sequence of float, optional
        One weight per model band (in the model's order).

    Returns
    -------
    Path
        ``out_dir``, loadable with :func:`lensfind.runtime.card.load_card`.

    Raises
    ------
    MissingExtraError
        If the ``onnx`` package (extra ``lensfind[test]``) is not installed.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise MissingExtraError("test", "onnx") from None

    spec = get_survey(survey)
    spec = spec if bands is None else spec.select(tuple(bands))
    bands = spec.band_names
    size = spec.cutout_px
    norm = normalisation_of_kind(normalisation, [b.sky_sigma_counts for b in spec.bands])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    x = helper.make_tensor_value_info(
        "cutouts", TensorProto.FLOAT, ["batch", len(bands), size, size]
    )
    y = helper.make_tensor_value_info("lens_probability", TensorProto.FLOAT, ["batch"])
    offset = helper.make_tensor("offset", TensorProto.FLOAT, [], [TEST_MODEL_OFFSET])
    gain = helper.make_tensor("gain", TensorProto.FLOAT, [], [gain or TEST_MODEL_GAIN])
    initializers = [offset, gain]
    nodes = []
    source = "cutouts"
    if band_weights is not None:
        if len(band_weights) != len(bands):
            raise ValueError(f"band_weights: {len(band_weights)} weights for {len(bands)} bands")
        weights = [float(w) for w in band_weights]
        shape = [1, len(bands), 1, 1]
        initializers.append(helper.make_tensor("band_weights", TensorProto.FLOAT, shape, weights))
        nodes.append(helper.make_node("Mul", ["cutouts", "band_weights"], ["weighted"]))
        source = "weighted"
    nodes += [
        # opset 17: ReduceMean takes its axes as an attribute
        helper.make_node("ReduceMean", [source], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["mean", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["lens_probability"]),
    ]
    graph = helper.make_graph(nodes, "lensfind_test_model", [x], [y], initializer=initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", TEST_MODEL_OPSET)],
        producer_name="lensfind.testing",
        producer_version=__version__,
    )
    model.ir_version = 8  # the IR version of opset 17; readable by any ONNX Runtime >= 1.13
    onnx.checker.check_model(model)
    onnx_path = out_dir / ONNX_NAME
    onnx_path.write_bytes(model.SerializeToString(deterministic=True))

    card = {
        "format_version": 1,
        "name": name,
        "arch": "mean-flux-sigmoid (test model)",
        "survey": spec.name,
        "bands": list(bands),
        "input_shape": [len(bands), size, size],
        "input": {
            "name": "cutouts",
            "units": "image counts, normalised as below",
            "layout": "NCHW float32",
        },
        "output": {
            "name": "lens_probability",
            "meaning": f"sigmoid({gain or TEST_MODEL_GAIN} * (mean normalised flux - "
            f"{TEST_MODEL_OFFSET})); a test stand-in, not a lens finder",
        },
        "normalisation": norm.to_dict(),
        "threshold": 0.5,
        "onnx_file": ONNX_NAME,
        "opset": TEST_MODEL_OPSET,
        "sha256": sha256_of(onnx_path),
        "training": {"note": "not trained: built by lensfind.testing.make_test_model"},
        "exported_with": {"lensfind": __version__, "onnx": onnx.__version__},
    }
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2))
    return out_dir


def make_test_region(
    out_dir: Path,
    survey: str = "des_y3",
    tiles_ra: int = 2,
    tiles_dec: int = 1,
    tile_px: int = 400,
    spacing_px: int = 100,
    seed: int = 1,
    lens_fraction: float = 0.3,
    masked_trail: bool = True,
) -> Path:
    """Write a small deterministic synthetic survey region.

    A thin wrapper of :func:`lensfind.simulation.region.make_region` with a small
    :class:`~lensfind.simulation.region.RegionConfig`: by default two 400x400 px
    tiles with a 4x4 jittered grid of objects each (32 objects), 30% of them
    planted lenses, and a masked (NaN) trail through the first tile's last band.
    With the survey's cutout size, objects near the tile borders are skipped as
    ``edge`` and objects on the trail as ``masked``, so a scan of it produces
    every kind of outcome.

    Parameters
    ----------
    out_dir : Path
        Directory to write (replaced if it exists).
    survey : str
        Survey registry name.
    tiles_ra, tiles_dec : int
        Tile grid shape.
    tile_px : int
        Tile side, pixels.
    spacing_px : int
        Object grid spacing, pixels.
    seed : int
        Seed of everything random in the region.
    lens_fraction : float
        Fraction of objects that are planted lenses.
    masked_trail : bool
        Draw a NaN trail through the first tile's last band.

    Returns
    -------
    Path
        ``out_dir``, holding ``<TILE>_<band>.fits``, ``catalog.parquet``,
        ``truth.parquet`` and ``region.json``.
    """
    config = RegionConfig(
        tiles_ra=tiles_ra,
        tiles_dec=tiles_dec,
        tile_px=tile_px,
        spacing_px=spacing_px,
        lens_fraction=lens_fraction,
        seed=seed,
        masked_trail=masked_trail,
    )
    return make_region(Path(out_dir), get_survey(survey), config)


#: The files every ``engine train`` run directory holds (checked by the training and CLI tests).
TRAIN_RUN_FILES = (
    "checkpoint.pt", "last.pt", "metrics.csv", "metrics.json", "train_report.json",
    "TRAINING_REPORT.md", "learning_curves.png", "roc.png", "fbeta_threshold.png",
)  # fmt: skip


#: Python source that makes ``import torch`` fail in the interpreter that runs it first.
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, NoTorch())
"""


def run_cli(*argv: str) -> tuple[int, str]:
    """Run the ``engine`` command line in this process: its exit code and what it printed."""
    import contextlib
    import io

    from lensfind.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(list(argv))
    return code, buf.getvalue()


def metric_families(exposition: str) -> dict[str, Any]:
    """Prometheus text exposition -> ``{family name as exposed: family}``.

    Counters are keyed with their ``_total`` suffix (as scraped); the
    ``<name>_created`` series that prometheus_client adds beside counters and
    histograms belong to those families and are left out.
    """
    from prometheus_client.parser import text_string_to_metric_families

    families = list(text_string_to_metric_families(exposition))
    raw = {f.name for f in families}
    return {
        f.name + ("_total" if f.type == "counter" else ""): f
        for f in families
        if not (f.name.endswith("_created") and f.name.removesuffix("_created") in raw)
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for test servers)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_hats(
    table: "Any", out_dir: Path, order: int = 1, ra_col: str = "RA", dec_col: str = "DEC"
) -> Path:
    """Write an object table as a minimal HATS catalogue (for tests and examples).

    Partitions are HEALPix pixels of one ``order`` under
    ``dataset/Norder=<k>/Dir=<d>/Npix=<n>.parquet`` with the ``_healpix_29``
    index, and ``ra``/``dec`` renamed to ``ra_col``/``dec_col`` as named in
    ``hats.properties``, so readers must honour the properties.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lensfind.engine.catalog import HEALPIX_29
    from lensfind.engine.plan import healpix29

    hpx = healpix29(table)
    table = table.append_column(HEALPIX_29, pa.array(hpx, pa.int64()))
    table = table.rename_columns(
        [{"ra": ra_col, "dec": dec_col}.get(c, c) for c in table.column_names]
    )
    pixel = hpx >> np.int64(2 * (29 - order))
    for npix in np.unique(pixel):
        part = out_dir / "dataset" / f"Norder={order}" / f"Dir={npix // 10000 * 10000}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array(pixel == npix)), part / f"Npix={npix}.parquet")
    props = {"obs_collection": out_dir.name, "dataproduct_type": "object",
             "hats_nrows": table.num_rows, "hats_col_ra": ra_col, "hats_col_dec": dec_col,
             "hats_max_rows": table.num_rows, "hats_order": order}  # fmt: skip
    (out_dir / "hats.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return out_dir
