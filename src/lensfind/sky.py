"""Sky positions: whether a catalogue's ``(ra, dec)`` is a place on the sky, and if not why."""

import numpy as np


def invalid_position(ra: float, dec: float) -> str:
    """Why ``(ra, dec)`` (deg) is not a position on the sky, or ``""`` if it is one.

    Null coordinates (read as NaN) and infinities are not finite; ``|dec| > 90``
    is off the sphere. Any finite ``ra`` is a position (it wraps at 360 deg).
    """
    if not (np.isfinite(ra) and np.isfinite(dec)):
        return f"invalid: position ({ra:g}, {dec:g}) deg is null or not finite"
    return f"invalid: dec {dec:g} deg outside [-90, 90]" if abs(dec) > 90 else ""
