"""The Python interface: ``lensfind.scan`` / ``score`` / ``load_model`` / ``Run``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lensfind
from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.errors import ConfigError, ModelError
from lensfind.surveys import get_survey


def _stored(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    store = run_dir / STORE_NAME
    parts = [read_shard_cutouts(store, s) for s in list_shards(store)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.fixture(scope="module")
def api_run(region: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("api") / "run"
    return lensfind.scan("des_y3", data=region, model=model_dir, out=out, workers=0,
                         shard_size=8, store_dtype="float32", quiet=True)  # fmt: skip


def test_import_is_cheap():
    code = "import sys, lensfind; print('lensfind.api' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert set(lensfind.__all__) >= {"scan", "score", "load_model", "Run"}


def test_score_of_stored_cutouts_equals_the_scans_scores(api_run, model_dir: Path):
    ids, images = _stored(api_run.run_dir)
    got = lensfind.score(images, model=model_dir, bands=get_survey("des_y3").band_names)
    scores = api_run.scores
    by_id = dict(zip(scores["object_id"].tolist(), scores["score"].tolist(), strict=True))
    want = np.array([by_id[int(i)] for i in ids])
    assert len(ids) == api_run.summary["n_scored"] > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # bands in another order are put in the model's
    rev = tuple(reversed(get_survey("des_y3").band_names))
    np.testing.assert_allclose(
        lensfind.score(images[:, ::-1], model=model_dir, bands=rev, batch_size=3), got, atol=1e-6
    )


def test_float16_store_scores_agree_to_the_stores_rounding(full_run, model_dir: Path):
    ids, images = _stored(full_run.run_dir)
    run = lensfind.Run(full_run.run_dir)
    by_id = dict(zip(run.scores["object_id"].tolist(), run.scores["score"].tolist(), strict=True))
    got = lensfind.score(images, model=model_dir)
    np.testing.assert_allclose(got, [by_id[int(i)] for i in ids], atol=2e-3)


def test_run_tables(api_run):
    s = api_run.summary
    assert len(api_run.scores) == s["n_objects"]
    assert len(api_run.candidates) == s["n_candidates"]
    assert str(api_run.candidates["ra"].unit) == "deg"
    assert set(api_run.scores["status"]) <= {"scored", "skipped", "failed"}
    assert (np.diff(api_run.candidates["score"]) <= 0).all()
    sel = api_run.selection_function
    assert sel is None or len(sel) > 0
    assert "candidates" in repr(api_run)


def test_load_model_and_errors(tmp_path: Path, model_dir: Path):
    card = lensfind.load_model("des_y3")
    assert card.name == "des_y3" and card.input_shape == (4, 100, 100)
    assert lensfind.load_model(model_dir).name == "test-model"
    with pytest.raises(ModelError, match="no model"):
        lensfind.load_model(tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"\(N, bands, H, W\)"):
        lensfind.score(np.zeros((4, 100, 100)), model=model_dir)
    with pytest.raises(ModelError, match="expected cutouts"):
        lensfind.score(np.zeros((2, 4, 64, 64)), model=model_dir)
    with pytest.raises(ConfigError, match="unknown setting"):
        lensfind.scan("des_y3", out=tmp_path / "r", no_such_option=1)
    with pytest.raises(ConfigError, match="not a scan"):
        lensfind.Run(tmp_path)
    with pytest.raises(AttributeError):
        lensfind.no_such_name  # noqa: B018
