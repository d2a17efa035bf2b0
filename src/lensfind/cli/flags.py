"""How the ``engine`` command reads its flags: checked values, one-line errors, help pages.

Every count, range and path a flag takes is checked while the command line is
parsed, before anything is simulated, loaded or started: a bad value ends the
command with exit status 2 and one line naming the flag, the value and what it
must be. A mistyped command, choice, survey or probe gets a "did you mean".
Each subcommand's ``--help`` shows every flag's default and ends in examples.
"""

import argparse
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lensfind.errors import LensfindError, suggestion


class UsageError(LensfindError):
    """A command line that cannot run (bad flag value, unknown command): exit status 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and examples as written; adds ``(default: X)`` where it is missing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "(default" not in text
            and "%(default)" not in text
            and action.option_strings
            and default not in (None, False, argparse.SUPPRESS, [])
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (a :class:`UsageError`), with suggestions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and value not in choices:
            known = ", ".join(map(str, choices))
            hint = suggestion(str(value), [str(c) for c in choices])
            raise argparse.ArgumentError(action, f"invalid choice {value!r}{hint} (known: {known})")


def add_command(
    sub: Any,
    name: str,
    common: argparse.ArgumentParser,
    help: str,
    examples: Sequence[str] = (),
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand parser with ``help``, a plain-text description and an Examples section.

    ``examples`` are command lines, each optionally followed by ``  # what it does``.
    """
    epilog = "Examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    text = plain(description or help)
    if "\n" not in text:  # one paragraph: wrapped (a module docstring keeps its layout)
        text = textwrap.fill(text, 79)
    return sub.add_parser(name, parents=[common], help=help, epilog=epilog, description=text,
                          formatter_class=HelpFormatter)  # fmt: skip


def plain(text: str) -> str:
    """``text`` without reStructuredText markup (roles, double back-quotes)."""
    text = re.sub(r":(?:class|func|mod|meth|data|attr):`~?(?:[\w.]+\.)?([\w]+)`", r"\1", text)
    return text.replace("``", "").replace("`", "")


def _number(kind: type, lo: float | None, hi: float | None, lo_open: bool = False) -> Callable:
    """An argparse type: a ``kind`` number within ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``)."""
    what = {int: "an integer", float: "a number"}[kind]
    if lo is not None and hi is not None:
        rule = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    else:
        rule = f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else ""

    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        low = lo is not None and (value <= lo if lo_open else value < lo)
        if low or (hi is not None and value > hi) or value != value:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be {what} {rule}, got {text}")
        return value

    check.__name__ = f"{kind.__name__} {rule}"
    return check


#: Counts: objects, repeats, epochs, bins (>= 1).
count = _number(int, 1, None)
#: Non-negative integers: workers (0: in this process), seeds.
natural = _number(int, 0, None)
#: Probabilities and fractions in [0, 1].
fraction = _number(float, 0.0, 1.0)
#: Positive numbers: scales, widths, learning rates.
positive = _number(float, 0.0, None, lo_open=True)
#: Non-negative numbers: radii, strengths.
non_negative = _number(float, 0.0, None)
#: TCP ports (0: any free port).
port = _number(int, 0, 65535)


def existing(text: str) -> Path:
    """An argparse type: a path that exists (file or directory)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path}: no such file or directory")
    return path


def survey_name(text: str) -> str:
    """An argparse type: a registered survey name (the error suggests the closest)."""
    from lensfind.surveys import get_survey

    get_survey(text)  # UnknownSurveyError: names the known ones and the closest
    return text


def floats(text: str) -> list[float]:
    """An argparse type: comma-separated numbers."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
