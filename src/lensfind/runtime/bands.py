"""Band order: cutouts in a survey's (or a set's) band order -> a model's channel order.

A model's card records its bands in the order its network takes them (Wilde et
al.'s OU-66 takes J, Y, H, VIS; lensfind's Euclid survey lists VIS, Y, J, H).
Surveys, scans and simulated sets keep their own order; the scorers reorder
at the model's door with :func:`band_order`.
"""

from collections.abc import Sequence

import numpy as np

from lensfind.errors import ModelError

__all__ = ["band_order", "take_bands"]


def band_order(
    given: Sequence[str], wanted: Sequence[str], what: str = "the model"
) -> tuple[int, ...] | None:
    """Indices ``idx`` such that ``cutouts[:, idx]`` has the bands ``wanted``.

    Parameters
    ----------
    given : sequence of str
        Band names of the cutouts, in their channel order.
    wanted : sequence of str
        Band names the model takes, in its channel order. Every one must be in
        ``given``; bands of ``given`` that are not wanted are left out.
    what : str
        Who wants them, for the error message.

    Returns
    -------
    tuple of int or None
        None when ``given`` already is ``wanted`` (nothing to reorder).

    Raises
    ------
    ModelError
        A wanted band that ``given`` does not have, or a band named twice.
    """
    given, wanted = tuple(given), tuple(wanted)
    if given == wanted:
        return None
    missing = [b for b in wanted if b not in given]
    twice = sorted({b for b in given if given.count(b) > 1} & set(wanted))
    if missing or twice:
        problem = f"no band {', '.join(missing)}" if missing else f"band {twice[0]} twice"
        raise ModelError(
            f"{what} takes bands {', '.join(wanted)}; the cutouts have "
            f"{', '.join(given) or 'none'} ({problem})"
        )
    return tuple(given.index(b) for b in wanted)


def take_bands(cutouts: np.ndarray, order: tuple[int, ...] | None) -> np.ndarray:
    """``cutouts`` ``(N, bands, H, W)`` with the channels of :func:`band_order` (a copy).

    ``order=None`` returns ``cutouts`` itself.
    """
    if order is None:
        return cutouts
    return np.ascontiguousarray(cutouts[:, list(order)])
