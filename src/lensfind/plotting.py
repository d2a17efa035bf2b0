"""The one way lensfind gets matplotlib: the non-interactive Agg backend, imported lazily."""

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed; a chosen backend stays)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
