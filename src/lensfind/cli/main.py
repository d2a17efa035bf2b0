"""The ``engine`` (alias ``lensfind``) command line: parse, build a config, call one function.

Each command group lives in its own module of :mod:`lensfind.cli` and adds its
parsers here; this module holds the top-level parser and the entry point.
"""

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from lensfind import __version__
from lensfind.cli.bench import add_bench_parsers
from lensfind.cli.calibrate import add_calibrate_parsers
from lensfind.cli.doctor import add_doctor_parsers
from lensfind.cli.evaluate import add_evaluate_parsers
from lensfind.cli.flags import HelpFormatter, Parser
from lensfind.cli.inspect import add_inspect_parsers
from lensfind.cli.make import add_make_parsers
from lensfind.cli.probe import add_probe_parsers
from lensfind.cli.scan import add_scan_parsers
from lensfind.cli.selection import add_selection_parsers
from lensfind.cli.train import add_train_parsers
from lensfind.errors import LensfindError

EXIT_ERROR = 2
EXAMPLES = """Examples:
  engine scan --survey des_y3              # scan the embedded demo region (a minute on 2 cores)
  engine scan --help                       # every scan flag, with units and defaults
  engine probe suite --survey des_y3       # the sensitivity probes; opens with report.html
  engine doctor                            # versions, execution providers, GPUs
"""


def build_parser() -> argparse.ArgumentParser:
    # --quiet/--debug work before or after the subcommand; SUPPRESS keeps a
    # subcommand's unset flag from overwriting the top-level one.
    common = Parser(add_help=False)
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    p = Parser(
        prog="engine", description="lensfind: survey-scale strong-lens finder",
        epilog=EXAMPLES, formatter_class=HelpFormatter,
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"lensfind {__version__}")
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run:"
    )

    add_make_parsers(sub, common)
    add_scan_parsers(sub, common)
    add_selection_parsers(sub, common)
    add_calibrate_parsers(sub, common)
    add_train_parsers(sub, common)
    add_evaluate_parsers(sub, common)
    add_bench_parsers(sub, common)
    add_probe_parsers(sub, common)
    add_inspect_parsers(sub, common)
    add_doctor_parsers(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``engine`` command on ``argv``; return its exit status (2: a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # before the arguments are parsed (a bad value fails there)
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        return int(args.func(args))
    except LensfindError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``engine`` command: :func:`main`, then exit without the interpreter's teardown.

    By the time a command returns, everything it wrote is closed and renamed
    into place; what would follow is unloading some 2,000 modules, joining idle
    pool threads and freeing the model's session: up to a second of a small
    scan spent on nothing a user sees. Output streams and logging are flushed first.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry()
