"""``engine inspect`` in a real browser: headless Debian chromium driven by Playwright.

The test serves a scan of the test region, loads the gallery, checks the
thumbnails loaded with no failed request, grades three candidates with the
keyboard (a, a, x), checks ``grades.csv`` and that a reload shows the grades,
and opens one candidate's page with its on-demand occlusion map.
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lensfind.testing import free_port

CHROMIUM = Path(os.environ.get("LENSFIND_CHROMIUM", "/usr/bin/chromium"))
#: Without the background-networking flags chromium calls home, which closed networks refuse.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser():
    """A headless chromium: skipped where chromium or Playwright is not installed (failed under
    ``CI``, whose ``.ci/run`` installs both)."""
    missing = None
    if not CHROMIUM.is_file():
        missing = f"no chromium at {CHROMIUM} (Debian/Ubuntu: apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (pip install 'lensfind[test]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def _serving(run_dir: Path, *options: str, kill: bool = False) -> Iterator[tuple[str, Path]]:
    """``engine inspect run_dir`` in a subprocess on a free port: ``(url, log file)``;
    ended with SIGTERM, or SIGKILL with ``kill=True``."""
    port = free_port()
    log = run_dir.parent / f"{run_dir.name}-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lensfind", "inspect", str(run_dir), "--port", str(port),
             "--no-browser", *options],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        proc.kill() if kill else proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def served(full_run, model_dir, tmp_path):
    """``engine inspect`` serving a copy of the test scan: ``(url, run_dir, log file)``."""
    run_dir = Path(shutil.copytree(full_run.run_dir, tmp_path / "run"))
    with _serving(run_dir, "--model", str(model_dir), "--grader", "tester") as (url, log):
        yield url, run_dir, log


def test_grades_survive_a_killed_server(full_run, model_dir, tmp_path):
    run_dir = Path(shutil.copytree(full_run.run_dir, tmp_path / "run"))
    ids = pq.read_table(run_dir / "candidates.parquet")["object_id"].to_pylist()
    with _serving(run_dir, "--model", str(model_dir), kill=True) as (url, _):
        for oid, grade in zip(ids[:2], "BX", strict=True):
            body = json.dumps({"object_id": oid, "grade": grade}).encode()
            req = urllib.request.Request(url + "api/grade", data=body, method="POST")
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
    # SIGKILL: no shutdown code ran
    assert [(int(r["object_id"]), r["grade"]) for r in _grades(run_dir)] == [
        (ids[0], "B"),
        (ids[1], "X"),
    ]
    assert not list(run_dir.glob(".grades.csv.*.tmp"))
    with _serving(run_dir, "--model", str(model_dir)) as (url, _):
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
    assert f'id="c{ids[0]}" data-id="{ids[0]}" data-score' in page
    assert page.count('data-grade="B"') == 1 and page.count('data-grade="X"') == 1


def _watch(page):
    """Lists that fill with the page's failed requests and error responses."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.url}: {r.status}"))
    page.on("pageerror", lambda e: failed.append(f"script error: {e}"))
    return failed


def _grades(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "grades.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_gallery_loads_and_keys_grade(browser, served):
    url, run_dir, log = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    failed = _watch(page)
    page.goto(url, wait_until="networkidle")
    cards = page.locator(".card")
    n = cards.count()
    ids = [int(cards.nth(i).get_attribute("data-id")) for i in range(n)]
    assert n >= 3, "the test scan needs at least three candidates"
    want = min(10, n)
    page.wait_for_function(
        "n => Array.from(document.images).filter(i => i.naturalWidth > 0).length >= n",
        arg=want,
    )
    loaded = page.evaluate(
        "Array.from(document.querySelectorAll('.card img'))"
        ".filter(i => i.complete && i.naturalWidth === 100).length"
    )
    assert loaded >= want
    assert failed == []
    assert page.locator(".card.current").get_attribute("data-id") == str(ids[0])

    for key in ("a", "a", "x"):
        page.keyboard.press(key)
    deadline = time.monotonic() + 20
    while len(_grades(run_dir)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = _grades(run_dir)
    assert [(int(r["object_id"]), r["grade"], r["grader"]) for r in rows] == [
        (ids[0], "A", "tester"), (ids[1], "A", "tester"), (ids[2], "X", "tester")
    ], log.read_text()  # fmt: skip
    assert page.locator(".card.current").get_attribute("data-id") == str(
        ids[3] if n > 3 else ids[2]
    )
    # the page shows a grade once the server has answered that it is saved
    page.wait_for_function(
        "ids => ids.map(i => document.querySelector('#c' + i + ' .grade').textContent).join('')"
        " === 'AAX'",
        arg=ids[:3],
    )

    page.reload(wait_until="networkidle")
    shown = [page.locator(f"#c{i} .grade").inner_text() for i in ids[:4]]
    assert shown[:3] == ["A", "A", "X"] and (n == 3 or shown[3] == "")
    page.select_option("#grade", "X")  # the grade filter
    assert page.locator(".card:not([hidden])").count() == 1
    assert failed == []


def test_candidate_page_shows_bands_and_occlusion(browser, served):
    url, run_dir, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    failed = _watch(page)
    page.goto(url, wait_until="networkidle")
    first = page.locator(".card").first.get_attribute("data-id")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/candidates/{first}.html")
    page.wait_for_function(
        "!document.querySelector('#saliency figcaption').textContent.includes('computing')",
        timeout=60_000,
    )
    assert "ln(p/(1-p))" in page.inner_text("#saliency figcaption")
    page.wait_for_function("document.querySelector('#saliency img').naturalWidth === 100")
    widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert widths == [100] * len(widths) and len(widths) == 1 + 4 + 1  # composite, griz, map
    page.keyboard.press("b")  # grade here and move to the next candidate
    page.wait_for_url(lambda u: not u.endswith(f"/{first}.html"))
    assert [(r["object_id"], r["grade"]) for r in _grades(run_dir)] == [(first, "B")]
    assert failed == []


@pytest.mark.slow
def test_the_default_scan_is_inspected(browser, tmp_path):
    """The issue's check: ``engine scan --survey des_y3``, then ``engine inspect`` with the
    run's own shipped model: >= 10 thumbnails load, a, a, x write three rows."""
    run_dir = tmp_path / "run"
    scan = subprocess.run([sys.executable, "-m", "lensfind", "--quiet", "scan", "--survey",
                           "des_y3", "--out", str(run_dir)], capture_output=True, text=True,
                          timeout=1800, check=False)  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    with _serving(run_dir) as (url, log):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        failed = _watch(page)
        page.goto(url, wait_until="networkidle")
        page.wait_for_function(
            "Array.from(document.images).filter(i => i.naturalWidth === 100).length >= 10"
        )
        for key in ("a", "a", "x"):
            page.keyboard.press(key)
        page.wait_for_function("document.querySelectorAll('.card .grade:not(:empty)').length >= 3")
        assert [r["grade"] for r in _grades(run_dir)] == ["A", "A", "X"], log.read_text()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "!document.querySelector('#saliency figcaption').textContent.includes('computing')",
            timeout=300_000,
        )
        assert "ln(p/(1-p))" in page.inner_text("#saliency figcaption")
        assert failed == []
