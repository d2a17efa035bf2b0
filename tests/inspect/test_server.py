"""The inspection server's routes, in process: pages, images, grades, errors."""

import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from matplotlib.image import imread

from lensfind.inspect import GradesFile, InspectError, InspectRun
from lensfind.inspect.saliency import SaliencyMaps
from lensfind.inspect.server import InspectApp, make_server
from lensfind.testing import NO_TORCH


@pytest.fixture
def server(full_run, model_dir, tmp_path):
    """A served copy of the test scan: ``(base url, run, grades file)``."""
    run = InspectRun(Path(shutil.copytree(full_run.run_dir, tmp_path / "run")))
    grades = GradesFile(run.run_dir, "ann")
    srv = make_server(InspectApp(run, grades, SaliencyMaps(run, str(model_dir))), "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", run, grades
    finally:
        srv.shutdown()
        srv.server_close()


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers["Content-Type"]


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_pages_and_images(server):
    base, run, _ = server
    first = run.candidates[0].object_id
    status, body, kind = _get(base + "/")
    assert status == 200 and kind.startswith("text/html")
    assert body.decode().count('class="card"') == len(run.candidates)
    status, body, kind = _get(f"{base}/thumbs/{first}.png")
    assert status == 200 and kind == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert _get(f"{base}/bands/{first}_{run.bands[-1]}.png")[0] == 200
    status, body, _ = _get(f"{base}/saliency/{first}.json")
    info = json.loads(body)
    assert status == 200 and info["max_abs_drop_logodds"] > 0
    assert info["png"] == f"../saliency/{first}.png"  # relative to the candidate's page
    status, body, _ = _get(f"{base}/saliency/{first}.png")
    assert status == 200 and imread(io.BytesIO(body)).shape[:2] == (100, 100)
    assert _get(f"{base}/candidates/{first}.html")[0] == 200
    assert _get(base + "/static/inspect.js")[0] == 200
    for missing in ("/thumbs/1.png", f"/bands/{first}_q.png", "/static/nope.js", "/nope"):
        assert _get(base + missing)[0] == 404, missing


def test_grades_post(server):
    base, run, grades = server
    ids = [c.object_id for c in run.candidates]
    status, body = _post(base + "/api/grade", {"object_id": ids[1], "grade": "c"})
    assert status == 200 and body["grade"] == "C"
    assert grades.current() == {ids[1]: "C"}
    assert 'data-grade="C"' in _get(base + "/")[1].decode()  # a reload shows it
    assert _post(base + "/api/grade", {"object_id": ids[1], "grade": "Q"})[0] == 400
    assert _post(base + "/api/grade", {"object_id": -5, "grade": "A"})[0] == 404
    assert _post(base + "/api/grade", {"grade": "A"})[0] == 400
    assert len(GradesFile(run.run_dir).read()) == 1


def test_a_port_in_use_is_one_error(full_run, model_dir):
    run = InspectRun(full_run.run_dir)
    app = InspectApp(run, GradesFile(run.run_dir), SaliencyMaps(run, str(model_dir)))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(InspectError, match="in use"):
            make_server(app, "127.0.0.1", busy.getsockname()[1])


def test_saliency_needs_the_runs_model(full_run):
    run = InspectRun(full_run.run_dir)  # scanned with the test model, not a shipped one
    with pytest.raises(InspectError, match="pass --model"):
        SaliencyMaps(run).scorer()


def test_inspection_needs_no_torch(full_run, model_dir):
    """Pages, images and occlusion maps with ``import torch`` failing (ONNX Runtime only)."""
    code = (
        NO_TORCH
        + f"""
from pathlib import Path
from lensfind.inspect import GradesFile, InspectRun
from lensfind.inspect.saliency import SaliencyMaps
from lensfind.inspect.server import InspectApp
run = InspectRun(Path({str(full_run.run_dir)!r}))
app = InspectApp(run, GradesFile(run.run_dir), SaliencyMaps(run, {str(model_dir)!r}))
oid = str(run.candidates[0].object_id)
assert app.gallery()[0] and app.thumb(oid)[0][:4] == b"\\x89PNG" and app.saliency_png(oid)[0]
assert "torch" not in sys.modules
print("ok")
"""
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
