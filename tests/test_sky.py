"""lensfind.sky: why a catalogue position is not on the sky."""

import pytest

from lensfind.sky import invalid_position


@pytest.mark.parametrize(
    ("ra", "dec", "reason"),
    [
        (55.0, -30.0, ""),
        (-10.0, 90.0, ""),  # ra wraps; the pole is on the sky
        (400.0, -90.0, ""),
        (55.0, 95.0, "invalid: dec 95 deg outside [-90, 90]"),
        (55.0, -90.5, "invalid: dec -90.5 deg outside [-90, 90]"),
        (float("nan"), -30.0, "invalid: position (nan, -30) deg is null or not finite"),
        (55.0, float("inf"), "invalid: position (55, inf) deg is null or not finite"),
    ],
)
def test_invalid_position(ra, dec, reason):
    assert invalid_position(ra, dec) == reason
