"""``engine selection reweight RUN --population POP.yaml``: completeness for another population."""

import argparse
import json
from pathlib import Path
from typing import Any

from lensfind.cli.flags import add_command, existing, fraction


def _cmd_reweight(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from lensfind.errors import ConfigError
    from lensfind.probes.reweight import TILTS, Target, reweight
    from lensfind.probes.selection import INJECTIONS_NAME
    from lensfind.settings_file import read_yaml
    from lensfind.simulation.population_file import population_from_dict

    path = Path(args.run) / INJECTIONS_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: no injections (was the run scanned with --inject-rate > 0?)")
    injections = pq.read_table(path)
    meta = json.loads((injections.schema.metadata or {}).get(b"lensfind", b"{}"))
    if "population" not in meta:
        raise ConfigError(f"{path}: no population recorded (a run of an older lensfind)")
    run = population_from_dict(meta["population"])
    data = read_yaml(args.population)
    tilts = {k: float(data.pop(k)) for k in TILTS if k in data}
    target = Target(population_from_dict(data, run), **tilts)
    threshold = meta["threshold"] if args.threshold is None else args.threshold
    result = reweight(injections, run, target, threshold)
    out = args.out or Path(args.run) / f"selection_reweighted-{Path(args.population).stem}.json"
    out.write_text(
        json.dumps(
            {
                "run": str(args.run),
                "population_file": str(args.population),
                "run_population": meta["population"],
                **result,
            },
            indent=2,
        )
        + "\n"
    )
    _print(result)
    print(f"-> {out}")
    return 0


def _print(result: dict[str, Any]) -> None:
    def fmt(r: dict[str, Any]) -> str:
        if r["completeness"] is None:
            return "no injections"
        return (f"{r['completeness']:.3f} [{r['ci_lo']:.3f}, {r['ci_hi']:.3f}] "
                f"(n_eff {r['n_eff']:.0f})")  # fmt: skip

    print(f"completeness at p >= {result['threshold']:g}: {fmt(result)}")
    for b in result["bins"]:
        print(f'  theta_E {b["lo"]:.2f}-{b["hi"]:.2f}": {fmt(b)}')
    short = {k: v for k, v in result["coverage"].items() if v < 1.0}
    for k, v in short.items():
        print(
            f"warning: the run injected only {v:.0%} of the population's {k} range; "
            "the completeness is that of the covered part"
        )


def add_selection_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``engine selection reweight`` to the ``engine`` subparsers."""
    example = "engine selection reweight runs/r --population bright.yaml"
    s = add_command(sub, "selection", common, "a run's selection function", examples=[example])
    ssub = s.add_subparsers(
        dest="selection_command", required=True, metavar="COMMAND", help="the command to run:"
    )
    r = add_command(
        ssub, "reweight", common,
        "completeness of another population from a run's injections",
        description=__doc__ + "\n\nPOP.yaml holds PopulationConfig fields (theta_e_range_arcsec, "
        "source_mag_g_range, ...) over the run's population, and optionally theta_e_power "
        "(p ~ theta_E^k) and source_counts_slope (p ~ 10^(a m)).",
        examples=[example],
    )  # fmt: skip
    r.add_argument("run", type=existing, help="run directory of a scan with injections")
    r.add_argument("--population", type=existing, required=True, help="YAML population file")
    r.add_argument("--threshold", type=fraction,
                   help="score threshold, 0..1 (default: the run's)")  # fmt: skip
    r.add_argument("--out", type=Path, help="result JSON (default: in the run directory)")
    r.set_defaults(func=_cmd_reweight)
