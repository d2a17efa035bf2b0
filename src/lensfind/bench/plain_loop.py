"""The baseline of ``engine bench startup``: what one would write instead of ``engine scan``.

Reads each tile with astropy, cuts each catalogue object with
``astropy.nddata.Cutout2D``, normalises with the model card's scales, scores
batches with ONNX Runtime and writes one Parquet file. It imports nothing of
lensfind (it runs as a script: ``python plain_loop.py REGION MODEL_DIR OUT``),
so it measures the plain tools, not lensfind's. Each object is cut about
the pixel nearest its position, at index ``side // 2`` of the cutout: the
convention the model was trained with. (``Cutout2D`` at the position itself
centres an even-sized cutout between pixels, one pixel off for half the
objects: the shipped ``des_y3`` then changes its score by more than 0.1 for
2.5% of the embedded region's objects.)
"""

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(region: Path, model: Path, out: Path, batch: int = 256) -> tuple[int, float]:
    """Score every whole, finite cutout of ``region`` with ``model``.

    Returns how many, and the seconds spent in ONNX Runtime's ``run`` (the model's share).
    """
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.io import fits
    from astropy.nddata import Cutout2D
    from astropy.wcs import WCS

    card = json.loads((model / "model_card.json").read_text())
    bands, side = card["bands"], card["input_shape"][1]
    norm = card["normalisation"]
    scale = norm["softening"] * np.array(norm["scale"], np.float32)[:, None, None]
    cat = pq.read_table(region / "catalog.parquet").to_pydict()
    session = ort.InferenceSession(str(model / card["onnx_file"]),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    name = session.get_inputs()[0].name
    ids: list[int] = []
    scores: list[float] = []
    stamps: list[np.ndarray] = []
    pending: list[int] = []
    inference = [0.0]

    def flush() -> None:
        if stamps:
            batch_in = np.stack(stamps)
            t = time.perf_counter()
            p = session.run(None, {name: batch_in})[0].reshape(-1)
            inference[0] += time.perf_counter() - t
            scores.extend(p.tolist())
            ids.extend(pending)
            stamps.clear()
            pending.clear()

    for tile in sorted(set(cat["tile"])):
        images, wcs = {}, None
        for b in bands:
            with fits.open(region / f"{tile}_{b}.fits") as hdul:
                images[b] = hdul[0].data.astype(np.float32)
                wcs = wcs or WCS(hdul[0].header)
        rows = [k for k, t in enumerate(cat["tile"]) if t == tile]
        x, y = wcs.wcs_world2pix([cat["ra"][k] for k in rows], [cat["dec"][k] for k in rows], 0)
        for i, xi, yi in zip(rows, np.floor(x + 0.5), np.floor(y + 0.5), strict=True):
            where = (xi, yi)  # the nearest pixel: the object at index side // 2
            try:
                cut = [Cutout2D(images[b], where, (side, side), wcs=wcs, mode="strict").data
                       for b in bands]  # fmt: skip
            except (ValueError, IndexError):  # off the tile or at its edge
                continue
            x = np.arcsinh(np.stack(cut) / scale).astype(np.float32)
            if np.isfinite(x).all():
                stamps.append(x)
                pending.append(cat["object_id"][i])
            if len(stamps) == batch:
                flush()
    flush()
    pq.write_table(pa.table({"object_id": ids, "score": scores}), out)
    return len(ids), inference[0]


if __name__ == "__main__":
    t0 = time.perf_counter()
    n, inference_s = main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps({"n_scored": n, "seconds": time.perf_counter() - t0,
                      "inference_seconds": inference_s}))  # fmt: skip
