"""Installed versions of lensfind's dependencies (for doctor, benchmarks, build info)."""

import platform
from importlib import metadata

from lensfind import __version__

#: Packages whose versions matter for results and speed.
PACKAGES = ("numpy", "astropy", "dask", "distributed", "zarr", "numba", "onnxruntime",
            "pyarrow", "torch", "tensorrt")  # fmt: skip


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name``, or None if it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """lensfind, Python and each package's version (``"not installed"`` if absent)."""
    out = {"lensfind": __version__, "python": platform.python_version()}
    out.update({p: package_version(p) or "not installed" for p in packages})
    return out
