"""The user cache directory (``$LENSFIND_CACHE``, default ``~/.cache/lensfind``)."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return the lensfind cache directory, creating it if needed."""
    root = os.environ.get("LENSFIND_CACHE") or Path.home() / ".cache" / "lensfind"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
