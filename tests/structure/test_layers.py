"""The package map is a contract: imports run one way, and the scan path never needs torch.

Allowed direction (DESIGN.md): surveys <- simulation <- runtime <- engine <- cli, and
training -> export (export imports training and runtime). ``probes`` and ``catalogue``
read scores and runs; the engine uses only the torch-free selection function of
``probes``. Every import is checked, including the lazy ones inside functions.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lensfind
from lensfind.testing import NO_TORCH

SRC = Path(lensfind.__file__).parent
#: Modules any package may import: the foundation under every layer.
BASE = {
    "errors",
    "versions",
    "cache",
    "hashing",
    "intervals",
    "plotting",
    "settings_file",
    "parquet_files",
    "tables",
    "__version__",
    # integrity checks of inputs and outputs, used by the engine and by other tools alike:
    "digests",  # cached content digests of input files (resume fingerprints)
    "fits_checks",  # FITS checksums and band registration
    "run_dir_checks",  # run directory checks, storage errors as one-line messages
    "sky",  # whether a catalogue position is on the sky
    "zarr_checks",  # checked reading of small zarr arrays (never a fill value)
}
#: Package -> the lensfind packages it may import (besides itself and :data:`BASE`).
ALLOWED: dict[str, set[str]] = {
    "surveys": set(),
    "simulation": {"surveys"},
    "runtime": {"surveys", "simulation"},
    # fine-tuning reads a scan's cutout store (torch-free readers; the engine never
    # imports training)
    "training": {"surveys", "simulation", "runtime", "engine.store"},
    "export": {"surveys", "simulation", "runtime", "training"},
    "catalogue": {"surveys", "runtime"},
    "probes": {"surveys", "simulation", "runtime", "training", "export"},
    "engine": {"surveys", "simulation", "runtime", "catalogue", "probes.selection"},
    "bench": {"surveys", "simulation", "runtime", "training", "export", "engine", "probes",
              "catalogue"},
    "inspect": {"runtime", "engine", "probes", "catalogue"},
    "cli": {"surveys", "simulation", "runtime", "training", "export", "engine", "probes",
            "catalogue", "bench", "inspect"},
    "testing": {"surveys", "simulation", "runtime", "engine", "cli"},
    # the Python interface: one call of the library each command calls
    "api": {"surveys", "runtime", "engine"},
    "__main__": {"cli"},
}  # fmt: skip
#: Packages whose every module must import with torch unavailable.
TORCH_FREE = ("lensfind.engine", "lensfind.runtime", "lensfind.catalogue")


def imported(source: str) -> set[str]:
    """Every ``lensfind.*`` module a source imports, at any depth (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lensfind":
                found |= {f"lensfind.{a.name}" for a in node.names}
            elif node.module.startswith("lensfind."):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lensfind.")}
    return found


def violations(package: str, source: str) -> list[str]:
    """The imports of ``source`` (a module of ``package``) that the contract forbids."""
    allowed = ALLOWED[package] | BASE | {package}
    bad = []
    for module in sorted(imported(source)):
        parts = module.split(".")[1:]
        if not any(".".join(parts[:k]) in allowed for k in range(1, len(parts) + 1)):
            bad.append(module)
    # "from lensfind.probes import selection" names probes.selection, not probes
    return [m for m in bad if not any(m.startswith(f"lensfind.{a}.") for a in allowed)]


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py") if len(rel) == 1 else rel[0]


def test_every_package_is_in_the_contract():
    packages = {_package(p) for p in _modules()} - BASE - {"__init__"}
    assert packages <= set(ALLOWED), f"add to ALLOWED: {sorted(packages - set(ALLOWED))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_one_way(path: Path):
    package = _package(path)
    if package in BASE or package == "__init__":
        # the foundation imports nothing above it (the package serves the API lazily)
        above = BASE | ({"api"} if package == "__init__" else set())
        assert not [m for m in imported(path.read_text()) if m.split(".")[1] not in above]
        return
    assert violations(package, path.read_text()) == []


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("runtime", "from lensfind.training.loop import train"),
        ("engine", "def f():\n    from lensfind.export.precision import export_precision\n"),
        ("engine", "import lensfind.probes.saliency.model"),
        ("simulation", "from lensfind import engine"),
        ("training", "from lensfind.export import onnx_export"),
    ],
)
def test_an_upward_import_is_caught(package: str, source: str):
    assert violations(package, source)


def test_allowed_imports_pass():
    assert violations("engine", "from lensfind.probes.selection import write_selection") == []
    assert violations("export", "from lensfind.training.loop import train") == []


def test_scan_path_modules_import_without_torch():
    """Every module of the engine, the runtime and the catalogue imports with torch blocked."""
    code = (
        NO_TORCH
        + """
import importlib, pkgutil
names = []
for package in TORCH_FREE:
    pkg = importlib.import_module(package)
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
for name in names:
    importlib.import_module(name)
assert "torch" not in sys.modules
print(len(names))
"""
    )
    code = code.replace("TORCH_FREE", repr(TORCH_FREE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 30


def test_the_entry_point_module_runs():
    out = subprocess.run([sys.executable, "-m", "lensfind.cli.main", "--help"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "scan" in out.stdout


def test_rooms_stay_small():
    """No module over 450 lines; the scan engine holds the scan core only."""
    long = {str(p.relative_to(SRC)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > 450}  # fmt: skip
    assert long == {}
    engine = sorted((SRC / "engine").glob("*.py"))
    assert sum(len(p.read_text().splitlines()) for p in engine) <= 3600
    assert not [p.name for p in engine if p.name.startswith(("cli", "bench"))]


def test_readme_is_a_front_page():
    readme = SRC.parents[1] / "README.md"
    if not readme.is_file():  # an installed package, not a checkout
        pytest.skip("no README beside the package")
    assert len(readme.read_text()) <= 12_000
