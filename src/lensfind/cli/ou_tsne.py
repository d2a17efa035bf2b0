"""OU-T-SNE on the command line (Wilde+22 sec. 3.3).

Fit (``engine ensemble --method ou_tsne``): member scores on paired reference
sets, t-SNE embedding, 100x100 grid, saved to ``--out`` (``ou_tsne_card.json``,
``ou_tsne.npz``, ``embedding.png``); with ``--test-set`` also the evaluation.
Evaluate a saved one (``engine ou-tsne evaluate``): the table of every member and
OU-T-SNE on new paired sets. Sets are comma-separated, one per pixel grid, the
same objects on each (``engine simulate --pixel-scale ... --cutout-px ...`` with
one ``--seed``). OU-T-SNE is not an ONNX model; see
:mod:`lensfind.training.ou_tsne.run` for how it is scored.
"""

import argparse
from pathlib import Path
from typing import Any

from lensfind.cli.flags import add_command, count, positive
from lensfind.errors import ConfigError


def _paths(value: Any, flag: str) -> list[Path]:
    paths = [Path(p) for p in str(value or "").split(",") if p.strip()]
    if not paths:
        raise ConfigError(f"OU-T-SNE needs {flag} (comma-separated sets, one per pixel grid)")
    return paths


def _print_rows(result: dict[str, Any]) -> None:
    from lensfind.training.ou_tsne.run import table_markdown

    print(table_markdown(result["rows"], result["beta"]), end="")
    print("OU-T-SNE values by rule:", result["rules"])


def cmd_ou_tsne_fit(args: argparse.Namespace) -> int:
    """``engine ensemble --method ou_tsne``."""
    from lensfind.training.ou_tsne.run import fit_ou_tsne

    members = [Path(m) for m in args.members.split(",") if m.strip()]
    card = fit_ou_tsne(
        members, _paths(args.val_set, "--val-set"), args.out,
        test_sets=_paths(args.test_set, "--test-set") if args.test_set else None,
        grid_side=args.grid_side, perplexity=args.perplexity, seed=args.seed,
        threshold=args.threshold, beta=args.beta, threads=args.threads, quiet=args.quiet,
    )  # fmt: skip
    g = card["grid"]
    print(
        f"OU-T-SNE of {len(card['members'])} members on {card['reference']['n']} objects: "
        f"{g['side']}x{g['side']} grid, {g['squares_with_objects']} squares with objects, "
        f"{g['squares_filled']} filled from their neighbours; wrote {args.out}"
    )
    if "test" in card:
        _print_rows(card["test"])
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from lensfind.training.ou_tsne.run import EVALUATION_MD, evaluate_ou_tsne

    out = args.out or args.model
    result = evaluate_ou_tsne(args.model, _paths(args.test_set, "--test-set"), out,
                              threads=args.threads, quiet=args.quiet)  # fmt: skip
    _print_rows(result)
    print(f"wrote {Path(out) / EVALUATION_MD}")
    return 0


def add_ou_tsne_options(s: argparse.ArgumentParser) -> None:
    """The OU-T-SNE options of ``engine ensemble``."""
    s.add_argument("--grid-side", type=count, default=100, help="ou_tsne: grid squares per axis")
    s.add_argument("--perplexity", type=positive, default=30.0, help="ou_tsne: t-SNE perplexity")
    s.add_argument("--beta", type=positive, default=0.03, help="ou_tsne: F-beta's beta (Wilde+22)")


def add_ou_tsne_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``engine ou-tsne evaluate``."""
    example = "engine ou-tsne evaluate --model models/ou_tsne --test-set vis.zarr,nisp.zarr"
    s = add_command(sub, "ou-tsne", common, "evaluate a fitted OU-T-SNE classifier",
                    examples=[example])  # fmt: skip
    ssub = s.add_subparsers(
        dest="ou_tsne_command", required=True, metavar="COMMAND", help="the command to run:"
    )
    e = add_command(ssub, "evaluate", common, "members and OU-T-SNE on paired sets",
                    description=__doc__, examples=[example])  # fmt: skip
    e.add_argument("--model", type=Path, required=True,
                   help="directory written by engine ensemble --method ou_tsne")  # fmt: skip
    e.add_argument("--test-set", required=True, help="comma-separated sets, one per grid")
    e.add_argument("--out", type=Path, help="where the table goes (default: --model)")
    e.add_argument("--threads", type=count, default=1, help="ONNX Runtime threads")
    e.set_defaults(func=_cmd_evaluate)
