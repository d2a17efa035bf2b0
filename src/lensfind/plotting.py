"""The one way lensfind gets matplotlib: the non-interactive Agg backend, imported lazily.

:func:`figure` makes a figure without ``matplotlib.pyplot`` (whose import
takes about 0.5 s, a tenth of a small scan): a run's own plots use it.
:func:`pyplot` is for the rest.
"""

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed; a chosen backend stays)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure(**kwargs: Any) -> Any:
    """A ``matplotlib.figure.Figure`` (``kwargs`` as its own) that ``savefig`` draws with Agg.

    Not known to pyplot: nothing to close, and nothing kept once it is dropped.
    """
    from matplotlib.figure import Figure

    return Figure(**kwargs)
