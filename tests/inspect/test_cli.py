"""``engine inspect``: bad input exits 2 with one line; ``--export`` writes a static gallery."""

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from lensfind.inspect import GradesFile, InspectRun
from lensfind.testing import run_cli


@pytest.fixture
def run_dir(full_run, tmp_path) -> Path:
    """A private copy of the test scan's run directory (grades may be written into it)."""
    return Path(shutil.copytree(full_run.run_dir, tmp_path / "run"))


def _inspect(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lensfind", "inspect", *argv],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_bad_input_exits_2_with_one_line(run_dir, tmp_path):
    out = _inspect(str(tmp_path / "nope"), "--no-browser")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
    assert "no such run directory" in out.stderr and "Traceback" not in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _inspect(str(empty), "--no-browser")
    assert out.returncode == 2 and "no candidates file" in out.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _inspect(str(run_dir), "--no-browser", "--port", str(port))
    assert out.returncode == 2 and "in use" in out.stderr and "Traceback" not in out.stderr
    (run_dir / "grades.csv").write_text("object_id,grade,graded_utc\n1,Q,x\n")
    code, _ = run_cli("inspect", str(run_dir), "--export", str(tmp_path / "g"))
    assert code == 2


def test_run_view_matches_the_candidates_file(run_dir):
    run = InspectRun(run_dir)
    table = pq.read_table(run_dir / "candidates.parquet")
    assert [c.object_id for c in run.candidates] == table["object_id"].to_pylist()
    assert [c.rank for c in run.candidates] == list(range(1, table.num_rows + 1))
    first = run.candidates[0]
    assert run.cutout(first.object_id).shape == (len(run.bands), 100, 100)
    with pytest.raises(KeyError):
        run.cutout(-1)  # not a candidate


def test_a_score_run_is_inspected_from_the_store_it_scored(full_run, model_dir, tmp_path):
    out = tmp_path / "rescored"
    store = full_run.run_dir / "cutouts.zarr"
    code, printed = run_cli("--quiet", "score", "--cutouts", str(store), "--model", str(model_dir),
                            "--out", str(out), "--workers", "0")  # fmt: skip
    assert code == 0, printed
    run = InspectRun(out)
    assert run.store == store
    assert run.candidates and run.cutout(run.candidates[0].object_id).shape[-2:] == (100, 100)


def test_export_writes_a_static_gallery(run_dir, tmp_path):
    run = InspectRun(run_dir)
    ids = [c.object_id for c in run.candidates]
    assert ids, "the test scan has no candidates"
    GradesFile(run_dir).set(ids[0], "B")
    out = tmp_path / "gallery"
    code, printed = run_cli("--quiet", "inspect", str(run_dir), "--export", str(out))
    assert code == 0, printed
    index = (out / "index.html").read_text()
    assert index.count('class="card"') == len(ids)
    assert f'id="c{ids[0]}"' in index and 'data-grade="B"' in index
    assert sorted(p.name for p in (out / "thumbs").glob("*.png")) == sorted(f"{i}.png" for i in ids)
    assert len(list((out / "bands").glob("*.png"))) == len(ids) * len(run.bands)
    assert imread(out / "thumbs" / f"{ids[0]}.png").shape == (100, 100, 4)
    page = (out / "candidates" / f"{ids[0]}.html").read_text()
    for b in run.bands:
        assert f"../bands/{ids[0]}_{b}.png" in page
    assert (out / "static" / "inspect.js").is_file() and (out / "grades.csv").is_file()
    # every relative link of the pages resolves to a written file
    for html_file in [out / "index.html", out / "candidates" / f"{ids[0]}.html"]:
        for link in re.findall(r'(?:src|href)="(?![a-z]+:)([^"#]+)', html_file.read_text()):
            assert (html_file.parent / link).resolve().is_file(), (html_file.name, link)


def test_top_keeps_the_best_ranked(run_dir, tmp_path):
    ids = pq.read_table(run_dir / "candidates.parquet")["object_id"].to_pylist()
    code, printed = run_cli("--quiet", "inspect", str(run_dir), "--top", "3", "--export",
                            str(tmp_path / "g"))  # fmt: skip
    assert code == 0 and f"the top 3 of {len(ids)} candidates" in printed
    index = (tmp_path / "g" / "index.html").read_text()
    assert re.findall(r'data-id="(\d+)"', index) == [str(i) for i in ids[:3]]
    assert f"showing the top 3 of {len(ids)} candidates" in index
    assert run_cli("inspect", str(run_dir), "--top", "0", "--export", str(tmp_path / "h"))[0] == 2
