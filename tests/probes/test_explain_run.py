"""``engine explain <method> --run RUN``: saliency maps of a scan's own candidates."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensfind.engine.store import STORE_NAME, list_shards, read_shard_cutouts
from lensfind.probes import saliency
from lensfind.probes.saliency import occlusion_map
from lensfind.runtime.card import load_card
from lensfind.runtime.scorer import OnnxScorer
from lensfind.testing import run_cli


def _ranked(run_dir: Path) -> list[int]:
    c = pq.read_table(run_dir / "candidates.parquet").to_pydict()
    return [i for _, i in sorted(zip(c["rank"], c["object_id"], strict=True))]


def _stored(run_dir: Path) -> dict[int, np.ndarray]:
    store = run_dir / STORE_NAME
    out = {}
    for s in list_shards(store):
        ids, images = read_shard_cutouts(store, s)
        out.update({int(i): im for i, im in zip(ids, images, strict=True)})
    return out


def test_top_candidates_are_explained_from_the_store(full_run, model_dir, tmp_path, capsys):
    run, out = full_run.run_dir, tmp_path / "occ"
    top = _ranked(run)[:2]
    assert len(top) == 2, "the test scan should have candidates"
    code, text = run_cli("explain", "occlusion", "--run", str(run), "--top", "2",
                         "--model", str(model_dir), "--out", str(out))  # fmt: skip
    assert code == 0, text
    assert "cutout" in capsys.readouterr().err  # the progress bar
    record = json.loads((out / "occlusion.json").read_text())
    assert record["object_ids"] == top and record["run"] == str(run)
    maps = np.load(out / "occlusion.npy")
    stored = _stored(run)
    want = occlusion_map(
        OnnxScorer(load_card(model_dir), threads=2), np.stack([stored[i] for i in top])
    )
    np.testing.assert_allclose(maps, want, atol=1e-6)
    scores = pq.read_table(run / "candidates.parquet").to_pydict()
    by_id = dict(zip(scores["object_id"], scores["score"], strict=True))
    np.testing.assert_allclose(record["scores"], [by_id[i] for i in top], atol=1e-5)
    assert (out / "occlusion.png").read_bytes()[:4] == b"\x89PNG"


def test_ids_and_the_store_path_and_labelled_colour_bars(
    full_run, model_dir, tmp_path, monkeypatch
):
    seen = {}

    def spy(images, maps, path, titles=None, **kw):
        seen.update(kw, titles=titles, columns=list(maps))
        return saliency.plot.save_saliency_png(images, maps, path, titles, **kw)

    monkeypatch.setattr(saliency, "save_saliency_png", spy)
    stored = sorted(_stored(full_run.run_dir))
    pick = [stored[-1], stored[0]]
    code, _ = run_cli("explain", "occlusion", "--input", str(full_run.run_dir / STORE_NAME),
                      "--ids", ",".join(map(str, pick)), "--model", str(model_dir),
                      "--out", str(tmp_path / "o"), "--quiet")  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "o" / "occlusion.json").read_text())["object_ids"] == pick
    label = seen["bar_labels"]["occlusion"]
    assert "P(lens)" in label and "+" in label
    assert seen["titles"][0].startswith(str(pick[0]))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ids", "987654321"], "not in"),
        (["--top", "0"], "--top: must be an integer >= 1"),
        (["--top", "2", "--ids", "1"], "not both"),
        (["--ids", "x"], "comma-separated object ids"),
    ],
)
def test_bad_run_inputs_are_one_line_errors(full_run, model_dir, tmp_path, capsys, extra, message):
    code, _ = run_cli("explain", "occlusion", "--run", str(full_run.run_dir), "--model",
                      str(model_dir), "--out", str(tmp_path / "o"), "--quiet", *extra)  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


def test_a_directory_without_a_store_and_top_without_run(tmp_path, capsys):
    code, _ = run_cli("explain", "occlusion", "--run", str(tmp_path), "--model", "des_y3")
    assert code == 2 and "no cutout store" in capsys.readouterr().err
    code, _ = run_cli("explain", "occlusion", "--top", "3", "--n", "2")
    assert code == 2 and "--top and --ids go with --run" in capsys.readouterr().err


def test_gradcam_on_candidates_with_the_shipped_model(full_run, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    code, text = run_cli("explain", "gradcam", "--run", str(full_run.run_dir), "--top", "2",
                         "--model", "des_y3", "--out", str(tmp_path / "g"), "--quiet")  # fmt: skip
    assert code == 0, text
    maps = np.load(tmp_path / "g" / "gradcam.npy")
    assert maps.shape == (2, 100, 100) and np.isfinite(maps).all() and (maps >= 0).all()


def test_the_runs_model_is_the_default(full_run, tmp_path, capsys):
    # the test scan's model is a directory, not a shipped name: say so in one line
    code, _ = run_cli("explain", "occlusion", "--run", str(full_run.run_dir), "--top", "1",
                      "--out", str(tmp_path / "o"), "--quiet")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pass --model" in err and "\n" not in err


def test_a_run_of_the_shipped_model_needs_no_model_flag(region, tmp_path):
    import lensfind

    run = lensfind.scan("des_y3", data=region, out=tmp_path / "run", workers=0,
                        inject_rate=0.0, quiet=True)  # fmt: skip
    first = sorted(_stored(run.run_dir))[0]
    code, text = run_cli("explain", "occlusion", "--run", str(run.run_dir), "--ids", str(first),
                         "--out", str(tmp_path / "o"), "--quiet")  # fmt: skip
    assert code == 0, text
    record = json.loads((tmp_path / "o" / "occlusion.json").read_text())
    assert record["model"] == "des_y3" and record["object_ids"] == [first]
