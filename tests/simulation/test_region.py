"""Synthetic regions do not depend on how many tiles render at once."""

import hashlib

import lensfind.simulation.region as region
from lensfind.testing import make_test_region


def _digests(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_a_region_is_the_same_rendered_one_tile_at_a_time(tmp_path, monkeypatch):
    # three tiles: with two render threads the third is planned while the first two render
    parallel = make_test_region(tmp_path / "parallel", tiles_ra=3, tile_px=300)
    monkeypatch.setattr(region, "RENDER_THREADS", 1)
    serial = make_test_region(tmp_path / "serial", tiles_ra=3, tile_px=300)
    assert len(_digests(parallel)) == 3 * 4 + 3  # griz tiles, catalogue, truth, region.json
    assert _digests(parallel) == _digests(serial)
