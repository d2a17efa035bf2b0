"""What the ``engine`` subcommands share: run flags, and printing a run's outcome."""

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from lensfind.cli.flags import plain, survey_name
from lensfind.engine.config import STORE_COMPRESSIONS, STORE_DTYPES, RunConfig, ScanConfig
from lensfind.runtime.scorer import PROVIDER_CHOICES

#: Flags whose name is not the field name with dashes.
FLAG_NAMES = {"data_dir": "--data", "known_lens_radius_arcsec": "--known-lens-radius"}
#: Allowed values of string settings that are not typed as ``Literal``.
CHOICES = {"provider": PROVIDER_CHOICES, "store_dtype": STORE_DTYPES,
           "store_compression": STORE_COMPRESSIONS}  # fmt: skip
#: Flags checked while the command line is parsed (ranges are the config's own checks).
TYPES = {"survey": survey_name}
#: The :class:`RunConfig` fields that are flags (``--quiet`` is a top-level flag); model first.
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "quiet")
#: The :class:`ScanConfig` fields of ``engine scan`` beyond the run flags.
SCAN_FIELDS = ("survey", "data_dir", "shard_size", "inject_rate", "inject_seed", "inject_min",
               "inject_population", "inject_hosts", "store_dtype", "store_compression")  # fmt: skip


def _field_help(cls: type) -> dict[str, str]:
    """One-line help per field from the numpydoc ``Attributes`` of ``cls`` and its bases."""
    out: dict[str, str] = {}
    names: list[str] = []
    docs = "\n".join(c.__doc__ or "" for c in reversed(cls.__mro__) if c is not object)
    for line in docs.splitlines():
        head = re.match(r"^    ([a-z_][\w, ]*) : ", line)
        if head:
            names = [n.strip() for n in head.group(1).split(",")]
        elif names and line.startswith("        "):
            for n in names:
                out[n] = (out.get(n, "") + " " + line.strip()).strip()
    return out


def add_config_flags(
    s: argparse.ArgumentParser,
    cls: type,
    fields: tuple[str, ...],
    defaults_shown: dict[str, str] | None = None,
) -> None:
    """One flag per field of the config dataclass ``cls``: type, choices, help and default from it.

    The flag is the field name with dashes (:data:`FLAG_NAMES` keeps the few
    historical short names), its ``dest`` the field name, its help the field's
    numpydoc ``Attributes`` entry and the dataclass default, and its value None
    unless given, so :func:`config_values` hands :func:`build_config` only what
    the user set. ``defaults_shown`` replaces the default shown for a field.
    """
    hints = get_type_hints(cls)
    helps = _field_help(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name in fields:
        flag = FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        hint = hints[name]
        if get_origin(hint) is not Literal:
            args = [a for a in get_args(hint) if a is not type(None)]
            hint = args[0] if args else hint
        default = defaults[name]
        shown = "" if default in (dataclasses.MISSING, None) else f" (default: {default})"
        if defaults_shown and name in defaults_shown:
            shown = f" (default: {defaults_shown[name]})"
        text = plain(helps.get(name, "") + shown).replace("%", "%%")
        kw: dict[str, Any] = {"dest": name, "default": None, "help": text}
        if name in TYPES:
            s.add_argument(flag, type=TYPES[name], metavar=name.upper(), **kw)
        elif hint is bool:
            s.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif get_origin(hint) is Literal:
            s.add_argument(flag, choices=get_args(hint), **kw)
        elif name in CHOICES:
            s.add_argument(flag, choices=CHOICES[name], **kw)
        elif hint in (int, float, Path):
            s.add_argument(flag, type=hint, metavar=name.upper(), **kw)
        else:  # str, and tuples as comma-separated values
            s.add_argument(flag, metavar=name.upper(), **kw)


def config_values(args: argparse.Namespace, fields: tuple[str, ...]) -> dict[str, Any]:
    """The values of the flags :func:`add_config_flags` added, by field name (None: not given)."""
    return {name: getattr(args, name, None) for name in fields}


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~lensfind.engine.config.RunConfig` fields from the shared run flags."""
    return {**config_values(args, RUN_FIELDS), "quiet": args.quiet or None}


def report(result: Any) -> int:
    """Print where a run went and what it found; return its exit status."""
    s = result.summary
    skipped = ", ".join(f"{k} {v}" for k, v in s["skip_reasons"].items())
    failed = ", ".join(f"{k} {v}" for k, v in s["fail_reasons"].items())
    print(f"run directory: {result.run_dir}")
    print(
        f"objects {s['n_objects']}: scored {s['n_scored']}, skipped {s['n_skipped']}"
        f"{f' ({skipped})' if skipped else ''}, failed {s['n_failed']}"
        f"{f' ({failed})' if failed else ''}"
    )
    print(
        f"candidates (score >= {s['threshold']}): {s['n_candidates']} -> "
        f"{result.run_dir / 'candidates.parquet'}"
    )
    sel = s.get("selection_function") or {}
    if sel.get("n_injected"):
        print(selection_line(sel, result.run_dir))
        if sel.get("sparse_bins"):
            print(
                f"warning: {len(sel['sparse_bins'])} selection-function bin(s) hold fewer than "
                "30 injections (see summary.json); raise --inject-min or --inject-rate",
                file=sys.stderr,
            )
    print(
        f'known lenses within {s["known_lens_radius_arcsec"]:g}": '
        f"{s['n_known_lenses_matched']} of the candidates"
    )
    print(purity_line(s["expected_purity"], s.get("prior_lens_rate_source")))
    rate = f", {s['cutouts_per_s']} cutouts/s" if s["cutouts_per_s"] else ""
    elapsed = figure(s["elapsed_s"], ".1f")
    print(f"time {elapsed} s{rate}; model {s['model']} ({s['model_sha256'][:12]})")
    if s["n_shards_quarantined"]:
        print(
            f"warning: {s['n_shards_quarantined']} shard(s) quarantined; see "
            f"{result.run_dir / 'quarantine.jsonl'}",
            file=sys.stderr,
        )
    if s["n_failed"]:
        print(
            f"warning: {s['n_failed']} object(s) failed; reasons in the scores files",
            file=sys.stderr,
        )
    return int(result.exit_code)


def figure(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` where the figure is undefined (None, NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(value, spec)


def selection_line(sel: dict[str, Any], run_dir: Path) -> str:
    """One line on the scan's selection function: injections, recovery, where it went."""
    if sel.get("completeness") is None:
        return f"selection function: {sel['n_injected']} injected lenses, none scored"
    copies = sel.get("inject_copies", 1)
    per_host = f", {copies} per host" if copies > 1 else ""
    left_out = sel.get("n_excluded_host_candidates", 0)
    excluded = f"; {left_out} left out (host a candidate)" if left_out else ""
    return (
        f"selection function: {sel['n_injected']} injected lenses in "
        f"{sel.get('n_hosts_eligible', '?')} eligible hosts{per_host}{excluded}; "
        f"{figure(sel['completeness'], '.1%')} of the injected population recovered -> "
        f"{run_dir / sel.get('file', '')}"
    )


def purity_line(p: dict[str, Any], prior_source: str | None = None) -> str:
    """One line on the candidates' expected purity at the run's threshold.

    ``prior_source`` says where the prior lens rate came from (the summary's
    ``prior_lens_rate_source``). Where the prior contradicts the scores the line
    ends with the rate to pass as ``--prior-lens-rate``.
    """
    row = p["thresholds"][0]
    purity = row["expected_purity"]
    how = "calibrated" if p["calibrated_scores"] else "uncalibrated"
    source = f"from {prior_source}, " if prior_source else ""
    found = ", ".join(f"{k} for {n}" for n, k in p["inspect_to_find"].items() if k is not None)
    suggested = p.get("consistent_prior_lens_rate")
    return (
        f"expected true lenses at prior rate {p['prior_lens_rate']:g} ({source}{how} scores): "
        f"{figure(row['expected_true_lenses'], '.1f')} of {row['n_candidates']}"
        + (f" (purity {purity:.1%})" if purity is not None else "")
        + (f"; candidates to inspect: {found}" if found else "")
        + (
            ""
            if p["prior_consistent"]
            else f"; more than the {figure(p['expected_lenses_scanned'], '.1f')} the prior "
            "allows in the whole scan: this sample is richer in lenses than the prior; pass "
            + (
                f"--prior-lens-rate {suggested:g} or more"
                if suggested
                else "a larger --prior-lens-rate"
            )
        )
    )


def add_run_arguments(s: argparse.ArgumentParser, model: bool = True) -> None:
    """Flags shared by ``scan`` and ``score`` (and ``probe``, which has its own ``--model``)."""
    add_config_flags(s, RunConfig, RUN_FIELDS if model else RUN_FIELDS[1:])


def add_inject_arguments(s: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--inject-rate`` and ``--inject-seed``; ``default`` replaces the rate's default shown."""
    shown = {"inject_rate": default} if default else None
    add_config_flags(s, ScanConfig, ("inject_rate", "inject_seed"), shown)
