"""The times the library accepts: aware, and inside the calendar it can count in.

Python's ``datetime`` spans the years 1 to 9999.  A time near either end
cannot be moved to another zone, nor can an indicator window of 360 days
be counted back from it, so the library supports a slightly narrower range
and says so instead of failing on the arithmetic.

>>> from datetime import datetime, timezone
>>> check_range(datetime(2024, 6, 1, tzinfo=timezone.utc), "--as-of")
>>> check_range(datetime(9999, 12, 31, tzinfo=timezone.utc), "--as-of")
Traceback (most recent call last):
...
ValueError: --as-of 9999-12-31T00:00:00+00:00: times must be from 0002-01-01 to 9999-01-01 (UTC)
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["EARLIEST", "LATEST", "RANGE_RULE", "check_range"]

#: The first instant the library supports (leaves a year for windows and zones).
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
#: The last instant the library supports (leaves a year for zones and day ends).
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
RANGE_RULE = "times must be from 0002-01-01 to 9999-01-01 (UTC)"


def check_range(at: datetime, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` and the rule when ``at`` (aware)
    is outside ``[EARLIEST, LATEST]``.  O(1)."""
    try:
        inside = EARLIEST <= at <= LATEST
    except OverflowError:  # an offset that pushes it past year 1 or 9999 in UTC
        inside = False
    if not inside:
        raise ValueError(f"{what} {at.isoformat()}: {RANGE_RULE}")
