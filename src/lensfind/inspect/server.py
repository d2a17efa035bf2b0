"""``engine inspect``'s web server: standard-library ``http.server``, one thread per request.

Routes (all ``GET`` but the grade)::

    /, /index.html               the gallery (grades read from grades.csv on every load)
    /candidates/<id>.html        one candidate
    /thumbs/<id>.png             colour composite
    /bands/<id>_<band>.png       one band
    /saliency/<id>.json          occlusion map (computed on first request) -> {png,
                                 max_abs_drop_logodds}
    /saliency/<id>.png           the map over the composite
    /static/<file>               the pages' script and style sheet
    POST /api/grade              {"object_id": id, "grade": "A"|"B"|"C"|"X"} -> grades.csv

Images are rendered once and the latest :data:`PNG_CACHE` kept (PNG bytes, ~20 kB each);
browsers keep them for an hour.
"""

import json
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lensfind.inspect import page, thumbnails
from lensfind.inspect.grades import GradesError, GradesFile
from lensfind.inspect.run_view import InspectError, InspectRun
from lensfind.inspect.saliency import SaliencyMaps

__all__ = ["STATIC_DIR", "InspectApp", "make_server", "top_note"]

STATIC_DIR = Path(__file__).parent / "static"
#: Rendered PNGs kept in memory.
PNG_CACHE = 8192
TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".js": "text/javascript",
         ".css": "text/css", ".json": "application/json"}  # fmt: skip


def top_note(run: InspectRun) -> list[str]:
    """A line saying that only the best-ranked candidates are shown, where that is so."""
    n, total = len(run.candidates), run.n_candidates
    return (
        [f"showing the top {n} of {total} candidates (engine inspect --top)"] if n < total else []
    )


class InspectApp:
    """What the server answers: pages and images of one run, and its grades file."""

    def __init__(self, run: InspectRun, grades: GradesFile, saliency: SaliencyMaps) -> None:
        self.run, self.grades, self.saliency = run, grades, saliency
        self._png: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        ids = [c.object_id for c in run.candidates]
        self._neighbours = {i: (ids[k - 1] if k else None, ids[k + 1] if k + 1 < len(ids) else None)
                            for k, i in enumerate(ids)}  # fmt: skip
        self.routes: list[tuple[re.Pattern[str], Callable[..., tuple[bytes, str]]]] = [
            (re.compile(r"/(?:index\.html)?"), self.gallery),
            (re.compile(r"/candidates/(-?\d+)\.html"), self.candidate),
            (re.compile(r"/thumbs/(-?\d+)\.png"), self.thumb),
            (re.compile(r"/bands/(-?\d+)_([^/]+)\.png"), self.band),
            (re.compile(r"/saliency/(-?\d+)\.json"), self.saliency_json),
            (re.compile(r"/saliency/(-?\d+)\.png"), self.saliency_png),
            (re.compile(r"/static/([\w.-]+)"), self.static),
        ]

    def notes(self) -> list[str]:
        prior = (self.run.summary.get("expected_purity") or {}).get("prior_lens_rate")
        model = self.run.summary.get("model", "?")
        notes = [f"model {model}" + (f"; prior lens rate {prior:.3g}" if prior else "")]
        return notes + top_note(self.run)

    def gallery(self) -> tuple[bytes, str]:
        body = page.gallery_html(self.run.run_dir.name, self.run.candidates,
                                 self.grades.current(), live=True, grader=self.grades.grader,
                                 notes=self.notes())  # fmt: skip
        return body.encode(), ".html"

    def candidate(self, oid: str) -> tuple[bytes, str]:
        c = self.run.candidate(int(oid))
        prev, nxt = self._neighbours[c.object_id]
        body = page.candidate_html(c, self.run.bands, self.grades.current().get(c.object_id, ""),
                                   live=True, previous_id=prev, next_id=nxt)  # fmt: skip
        return body.encode(), ".html"

    def _cached(self, key: str, make: Callable[[], bytes]) -> tuple[bytes, str]:
        with self._lock:
            data = self._png.get(key)
            if data is not None:
                self._png.move_to_end(key)
        if data is None:
            data = make()
            with self._lock:
                self._png[key] = data
                while len(self._png) > PNG_CACHE:
                    self._png.popitem(last=False)
        return data, ".png"

    def thumb(self, oid: str) -> tuple[bytes, str]:
        self.run.candidate(int(oid))  # KeyError (404) for others
        return self._cached(
            f"t{oid}", lambda: thumbnails.colour_png(self.run.cutout(int(oid)), self.run.bands)
        )

    def band(self, oid: str, band: str) -> tuple[bytes, str]:
        if band not in self.run.bands:
            raise KeyError(band)
        self.run.candidate(int(oid))
        k = self.run.bands.index(band)
        return self._cached(
            f"b{oid}_{band}", lambda: thumbnails.band_png(self.run.cutout(int(oid)), k)
        )

    def saliency_json(self, oid: str) -> tuple[bytes, str]:
        self.saliency_png(oid)
        scale = float(abs(self.saliency.occlusion(int(oid))).max())
        body = {"png": f"../saliency/{oid}.png", "max_abs_drop_logodds": scale}
        return json.dumps(body).encode(), ".json"

    def saliency_png(self, oid: str) -> tuple[bytes, str]:
        def make() -> bytes:
            occ = self.saliency.occlusion(int(oid))
            return thumbnails.saliency_png(self.run.cutout(int(oid)), self.run.bands, occ)[0]

        self.run.candidate(int(oid))
        return self._cached(f"s{oid}", make)

    def static(self, name: str) -> tuple[bytes, str]:
        path = STATIC_DIR / name
        if not path.is_file():
            raise KeyError(name)
        return path.read_bytes(), path.suffix

    def grade(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
            oid, grade = int(data["object_id"]), str(data["grade"])
        except (ValueError, KeyError, TypeError):
            raise GradesError('expected {"object_id": <int>, "grade": "A|B|C|X"}') from None
        self.run.candidate(oid)
        g = self.grades.set(oid, grade)
        return {"object_id": g.object_id, "grade": g.grade, "graded_utc": g.graded_utc}


def _handler(app: InspectApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lensfind-inspect"

        def _send(self, status: int, data: bytes, suffix: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", TYPES.get(suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store" if suffix in (".html", ".json")
                             else "max-age=3600")  # fmt: skip
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode(), ".json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            for pattern, view in app.routes:
                m = pattern.fullmatch(path)
                if m:
                    try:
                        self._send(HTTPStatus.OK, *view(*m.groups()))
                    except KeyError:
                        self._error(HTTPStatus.NOT_FOUND, f"{path}: no such candidate or file")
                    except InspectError as exc:
                        self._error(HTTPStatus.CONFLICT, str(exc))
                    except Exception as exc:  # a page that shows why, not a dropped connection
                        self._error(
                            HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}"
                        )
                    return
            self._error(HTTPStatus.NOT_FOUND, f"{path}: not found")

        def do_POST(self) -> None:
            if self.path != "/api/grade":
                self._error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")
                return
            body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 10_000))
            try:
                result = app.grade(body)
            except KeyError:
                self._error(HTTPStatus.NOT_FOUND, "not a candidate of this run")
            except GradesError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
            else:
                self._send(HTTPStatus.OK, json.dumps(result).encode(), ".json")

        def log_message(self, format: str, *args: Any) -> None:
            if args and str(args[1]).startswith(("4", "5")):  # errors only, not every image
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def make_server(app: InspectApp, host: str, port: int) -> ThreadingHTTPServer:
    """A threading HTTP server of ``app`` bound to ``host:port`` (``port=0``: any free port).

    Raises
    ------
    InspectError
        The address is in use or cannot be bound.
    """
    try:
        server = ThreadingHTTPServer((host, port), _handler(app))
    except OSError as exc:
        raise InspectError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None
    server.daemon_threads = True
    return server
