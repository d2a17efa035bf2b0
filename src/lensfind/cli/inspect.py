"""``engine inspect RUN``: serve a run's candidates for visual grading, or export a gallery."""

import argparse
import sys
from pathlib import Path
from typing import Any

from lensfind.cli.flags import add_command, count, port
from lensfind.errors import ConfigError


def _cmd_inspect(args: argparse.Namespace) -> int:
    from lensfind.inspect import GradesFile, InspectRun

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: not a TCP port (0-65535)")
    run = InspectRun(args.run, top=args.top)
    grades = GradesFile(run.run_dir, args.grader or "")
    grades.current()  # an unreadable grades file fails here, not on the first key
    if args.export is not None:
        return _export(run, grades, args)
    from lensfind.inspect.saliency import SaliencyMaps
    from lensfind.inspect.server import InspectApp, make_server

    server = make_server(
        InspectApp(run, grades, SaliencyMaps(run, args.model)), args.host, args.port
    )
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/"
    print(f"{_shown(run)} of {run.run_dir} at {url} "
          f"(Ctrl-C to stop); grades -> {grades.path}", flush=True)  # fmt: skip
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"warning: serving on {host}: anyone who can reach it can grade", file=sys.stderr)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped; grades are in " + str(grades.path), file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _shown(run: Any) -> str:
    n, total = len(run.candidates), run.n_candidates
    return f"{n} candidates" if n == total else f"the top {n} of {total} candidates"


def _export(run: Any, grades: Any, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lensfind.inspect.export import export_gallery

    with tqdm(total=len(run.candidates), desc="gallery", unit="candidate",
              disable=bool(getattr(args, "quiet", False))) as bar:  # fmt: skip
        index = export_gallery(run, grades, args.export, progress=bar.update)
    print(f"{_shown(run)} of {run.run_dir} -> {index}")
    return 0


def add_inspect_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the inspect command to the ``engine`` subparsers."""
    s = add_command(
        sub, "inspect", common,
        "look at a run's candidates in a web browser and grade them (a/b/c/x keys)",
        examples=["engine inspect runs/des_y3-20261207T101500  # serve on 127.0.0.1:8765",
                  "engine inspect RUN --port 0 --no-browser --grader alice",
                  "engine inspect RUN --export gallery/  # a static, shareable gallery"],
        description="Serve a local web page of a run's ranked candidates (colour composites, "
        "each band, occlusion maps on demand); keys a/b/c/x grade the current candidate "
        "(A sure lens, B probable, C possible, X not a lens) into RUN/grades.csv. "
        "With --export, write the same pages as a static gallery instead.",
    )  # fmt: skip
    s.add_argument("run", type=Path, metavar="RUN", help="run directory of engine scan/score")
    s.add_argument("--port", type=port, default=8765,
                   help="TCP port (0: any free one; default 8765)")  # fmt: skip
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")  # fmt: skip
    s.add_argument("--top", type=count, metavar="N",
                   help="only the N best-ranked candidates (default: all; a page of 10,000 "
                   "loads in a few seconds)")  # fmt: skip
    s.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    s.add_argument("--grader", help="your name, recorded in the grader column of grades.csv")
    s.add_argument("--model", help="model for the occlusion maps (default: the run's own)")
    s.add_argument(
        "--export", type=Path, metavar="DIR", help="write a static gallery (HTML + PNGs) to DIR"
    )
    s.set_defaults(func=_cmd_inspect)
