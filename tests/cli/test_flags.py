"""lensfind.cli.flags: help pages, one-line usage errors and "did you mean" on every command."""

import argparse
import re
import subprocess
import sys
import time

import pytest

from lensfind.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(words, parser)`` of every command and subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))
#: Commands that group others (their --help lists subcommands, no flags of their own).
GROUPS = {words for words, p in COMMANDS.items() if p._subparsers is not None}


def test_the_command_tree_is_complete():
    assert {("scan",), ("score",), ("simulate",), ("probe",), ("explain",), ("train",),
            ("survey", "make"), ("bench", "scan"), ("selection", "reweight"),
            ("ou-tsne", "evaluate")} <= set(COMMANDS)  # fmt: skip


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_every_flag_has_help_and_every_command_examples(words, capsys):
    with pytest.raises(SystemExit) as info:
        main([*words, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    parser = COMMANDS[words]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"engine {' '.join(words)}: {name} has no help"
    assert "\nExamples:\n  engine " in text, f"engine {' '.join(words)} --help has no examples"
    for markup in ("``", ":class:", ":func:", ":mod:", ":data:", "`"):
        assert markup not in text, f"engine {' '.join(words)} --help shows {markup!r}"
    # every option line of the page has text beside it or on the next line
    lines = text.split("\nExamples:")[0].splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^  -", line) and len(line.split("  ")) < 3 and not line.strip() == "":
            following = lines[i + 1] if i + 1 < len(lines) else ""
            assert following.startswith(" " * 10), f"engine {' '.join(words)}: {line!r} bare"


def test_defaults_units_and_required_markers(capsys):
    def page(*words):
        with pytest.raises(SystemExit):
            main([*words, "--help"])
        return capsys.readouterr().out

    score = page("score")
    assert re.search(r"usage: engine score .*--cutouts CUTOUTS --model MODEL", score, re.S)
    assert "[--model MODEL]" not in score
    scan = page("scan")
    assert "on 2 threads" in scan and "arcsec" in scan and "(default: des_y3)" in scan
    assert "class_dream" in page("explain")
    train = page("train")
    texts = {flag: re.search(rf"{flag} \S+\s+(.+?)\n  --", train, re.S).group(1)
             for flag in ("--train-set", "--test-set")}  # fmt: skip
    assert texts["--train-set"] != texts["--test-set"]
    assert "Sphinx" not in train and "TrainConfig" in train


#: One invalid value per command (each must fail while parsing, before any work).
BAD = [
    ["scan", "--survey", "des_y4"],
    ["bench", "startup", "--repeats", "0"],
    ["bench", "startup", "--survey", "des_y4"],
    ["inspect", "{tmp}/nowhere"],
    ["inspect", "{tmp}", "--port", "70000"],
    ["scan", "--workers", "two"],
    ["scan", "--threshold", "1.5"],
    ["scan", "--shard-size", "0"],
    ["scan", "--prior-lens-rate", "0"],
    ["scan", "--inject-rate", "-0.1"],
    ["scan", "--data", "{tmp}/nowhere"],
    ["score", "--cutouts", "{tmp}/nowhere.zarr", "--model", "des_y3"],
    ["score", "--cutouts", "{tmp}"],
    ["simulate", "--survey", "des_y3", "--n", "0", "--out", "{tmp}/x.zarr"],
    ["simulate", "--n", "-5", "--out", "{tmp}/x.zarr"],
    ["simulate", "--n", "10", "--out", "{tmp}/x.zarr", "--lens-fraction", "2"],
    ["simulate", "--n", "10", "--out", "{tmp}/x.zarr", "--pixel-scale", "0"],
    ["survey", "make", "--out", "{tmp}/r", "--tiles-ra", "0"],
    ["survey", "make", "--out", "{tmp}/r", "--survey", "kids_dr4"],
    ["probe", "suite", "--survey", "des_y3", "--n", "0"],
    ["probe", "suite", "--n", "-5"],
    ["probe", "nosuch", "--survey", "des_y3"],
    ["probe", "blur", "--strengths", "0,a"],
    ["probe", "theta_e", "--width", "0"],
    ["probe", "theta_e", "--min-count", "0"],
    ["probe", "selection", "--data", "{tmp}/nowhere"],
    ["explain", "occlusion", "--n", "0"],
    ["explain", "occlusion", "--survey", "euclid"],
    ["train", "--train-set", "{tmp}/t.zarr", "--out", "{tmp}/m", "--config", "{tmp}/no.yaml"],
    ["train", "--train-set", "{tmp}/t.zarr", "--out", "{tmp}/m", "--epochs", "0"],
    ["explain", "occlusio"],
    ["export", "--checkpoint", "{tmp}/no.pt", "--out", "{tmp}/m"],
    ["export", "--model", "des_y3", "--fp16", "--out", "{tmp}/m", "--threshold", "7"],
    ["ensemble", "--members", "a,b", "--out", "{tmp}/e", "--threads", "0"],
    ["ensemble", "--members", "a,b", "--out", "{tmp}/e", "--method", "median"],
    ["ou-tsne", "evaluate", "--model", "{tmp}", "--test-set", "a", "--threads", "0"],
    ["evaluate", "--model", "des_y3", "--set", "{tmp}/no.zarr", "--out", "{tmp}/e"],
    ["calibrate", "--model", "des_y3", "--set", "{tmp}/no.zarr"],
    ["selection", "reweight", "{tmp}/no-run", "--population", "{tmp}/p.yaml"],
    ["bench", "scan", "--repeats", "0"],
    ["bench", "score", "--survey", "des"],
    ["bench", "models", "--repeats", "0"],
    ["bench", "datapath", "--n", "0"],
    ["scna"],
    ["survey", "mak", "--out", "x"],
]


def test_every_command_has_a_bad_value_case():
    covered = {tuple(w for w in case[:2] if not w.startswith(("-", "{")))[:2] for case in BAD}
    leaves = {w for w in COMMANDS if w not in GROUPS and w not in {("surveys",), ("doctor",)}}
    missing = [w for w in leaves if not any(w == c[: len(w)] for c in covered)]
    assert not missing, f"no bad-value case for {missing}"


@pytest.mark.parametrize("case", BAD, ids=" ".join)
def test_a_bad_value_is_one_line_and_exit_2(case, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in case]
    start = time.perf_counter()
    assert main([*args, "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    assert time.perf_counter() - start < 1.5, "checked before any heavy work"
    assert not (tmp_path / "x.zarr").exists() and not (tmp_path / "r").exists()


def test_did_you_mean(capsys):
    cases = {
        ("scna",): "did you mean 'scan'?",
        ("scan", "--survey", "des_y4"): "did you mean 'des_y3'?",
        ("probe", "blurr"): "did you mean 'blur'?",
        ("probe", "thetae"): "did you mean 'theta_e'?",
        ("scan", "--provider", "cuda12"): "did you mean 'cuda'?",
        ("explain", "occlusio"): "did you mean 'occlusion'?",
    }
    for words, hint in cases.items():
        assert main([*words, "--quiet"]) == 2
        assert hint in capsys.readouterr().err, words


@pytest.mark.parametrize(
    "command",
    [
        "scan --survey des_y4",
        "probe suite --survey des_y3 --n 0",
        "simulate --survey des_y3 --n 0 --out {tmp}/X",
        "probe nosuch --survey des_y3",
    ],
)
def test_the_engine_command_fails_fast(command, tmp_path):
    """The installed command, in a fresh interpreter: exit 2, one line, within 3 s."""
    argv = command.replace("{tmp}", str(tmp_path)).split()
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lensfind", *argv], capture_output=True,
                         text=True, check=False, timeout=60)  # fmt: skip
    elapsed = time.perf_counter() - start
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert elapsed < 3.0, f"{command}: {elapsed:.1f} s"
    assert not (tmp_path / "X").exists()


def test_help_is_fast():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lensfind", "--help"], capture_output=True,
                         text=True, check=False, timeout=60)  # fmt: skip
    assert out.returncode == 0 and "Examples:" in out.stdout
    assert time.perf_counter() - start < 2.0


def test_simulate_takes_a_population_file(tmp_path, capsys):
    """``engine simulate --population POP.yaml``: its settings over the defaults, recorded in
    the set (a model trained on it carries them into its card and its scans' injections)."""
    import numpy as np

    from lensfind.simulation.dataset import read_dataset

    pop = tmp_path / "wide.yaml"
    pop.write_text("seeing_sigma_ln: 0.3\n")
    assert main(["simulate", "--survey", "des_y3", "--n", "64", "--seed", "5", "--population",
                 str(pop), "--out", str(tmp_path / "s.zarr"), "--quiet"]) == 0  # fmt: skip
    data, attrs = read_dataset(tmp_path / "s.zarr")
    assert attrs["population"]["seeing_sigma_ln"] == 0.3
    assert attrs["population"]["lens_fraction"] == 0.5  # the rest stays at its default
    seeing = np.log(np.asarray(data.truth["psf_fwhm_arcsec"], dtype=float))
    assert seeing.std() > 0.2  # the default population's spread is 0.12
    capsys.readouterr()
    assert main(["simulate", "--n", "4", "--population", str(tmp_path / "none.yaml"),
                 "--out", str(tmp_path / "t.zarr")]) == 2  # fmt: skip
    assert "none.yaml: no such file" in capsys.readouterr().err
