"""A scan with a model whose card lists the survey's bands in another order."""

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensfind.engine.scan import run_scan
from lensfind.errors import ConfigError
from lensfind.testing import make_test_model

#: the same band-sensitive model twice: in DES's order, and reversed (weights reversed too)
WEIGHTS = (0.4, 1.3, -0.7, 2.0)  # g, r, i, z


def _scores(run_dir):
    tables = [pq.read_table(p) for p in sorted((run_dir / "scores").glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("object_id").to_pydict()


def test_a_permuted_card_scans_as_the_same_model_in_the_survey_order(region, scan_config, tmp_path):
    plain = make_test_model(tmp_path / "plain", band_weights=WEIGHTS)
    permuted = make_test_model(
        tmp_path / "permuted", bands=("z", "i", "r", "g"), band_weights=WEIGHTS[::-1]
    )
    runs = {}
    for name, model in (("plain", plain), ("permuted", permuted)):
        config = dataclasses.replace(scan_config(region, tmp_path / name), model=str(model))
        result = run_scan(config)
        assert result.summary["n_failed"] == 0
        runs[name] = _scores(result.run_dir)
    a, b = runs["plain"], runs["permuted"]
    assert a["object_id"] == b["object_id"] and a["status"] == b["status"]
    scored = np.array(a["status"]) == "scored"
    assert scored.sum() > 10
    sa, sb = np.array(a["score"])[scored], np.array(b["score"])[scored]
    # the graphs sum the bands in another order: equal to float32 rounding
    np.testing.assert_allclose(sb, sa, rtol=1e-5, atol=1e-6)
    assert sa.std() > 0.01


def test_a_card_without_the_survey_bands_is_refused_before_any_work(region, scan_config, tmp_path):
    three = make_test_model(tmp_path / "three", bands=("g", "r", "i"))
    config = dataclasses.replace(scan_config(region, tmp_path / "run"), model=str(three))
    with pytest.raises(ConfigError, match=r"expects bands \('g', 'r', 'i'\) at 100 px"):
        run_scan(config)
    assert not (tmp_path / "run").exists()
