"""``engine bench datapath``: the quick run writes JSON + Markdown + PNG of every stage."""

import json

import numpy as np
import pytest
from matplotlib import image as mpimg

from lensfind.bench.datapath import write_test_tile
from lensfind.cli.main import main
from lensfind.engine.tiles import read_tile
from lensfind.surveys import get_survey


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-datapath")
    assert main(["bench", "datapath", "--quick", "--quiet", "--results", str(out)]) == 0
    return sorted(out.iterdir())


def test_writes_json_markdown_and_png(quick_run):
    assert [f.suffix for f in quick_run] == [".json", ".md", ".png"]
    assert quick_run[0].stem.endswith("-datapath")
    assert mpimg.imread(quick_run[2]).ndim == 3
    md = quick_run[1].read_text()
    assert "| stage | cutouts/s | min | max | notes |" in md
    assert "| zarr_read_float16 |" in md


def test_every_stage_in_cutouts_per_second(quick_run):
    result = json.loads(quick_run[0].read_text())
    assert result["benchmark"] == "datapath"
    assert result["command"].startswith("engine bench datapath ")
    assert {"cpu", "cpus"} <= set(result["machine"])
    stages = result["stages"]
    assert set(stages) == {
        "tile_read", "cutout_extract", "zarr_write_float32", "zarr_read_float32",
        "zarr_write_float16", "zarr_read_float16", "kernel:blur", "kernel:disk",
        "model_onnxruntime_cpu",
    }  # fmt: skip
    for name, s in stages.items():
        assert 0 < s["min"] <= s["median"] <= s["max"], name
        assert s["how"], name
    # float16 storage: about half the bytes of float32 on disk
    ratio = (
        stages["zarr_write_float16"]["bytes_per_cutout"]
        / stages["zarr_write_float32"]["bytes_per_cutout"]
    )
    assert 0.3 < ratio < 0.7, ratio


def test_test_tile_is_a_readable_survey_tile(tmp_path):
    spec = get_survey("des_y3")
    name = write_test_tile(tmp_path, spec, 300)
    with read_tile(tmp_path, name, spec.band_names) as tile:
        assert tile.shape == (300, 300) and len(tile.images) == 4
        assert tile.wcs.has_celestial
        sky = [b.sky_sigma_counts for b in spec.bands]
        np.testing.assert_allclose([np.std(im) for im in tile.images], sky, rtol=0.02)
