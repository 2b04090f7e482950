"""The times the library accepts: aware, and inside the calendar it can count in.

A time must carry a time zone: the library never guesses one.  :func:`utc`
is that rule, written once; every time a call takes goes through it (or
through its cheap fast path for a time already in UTC) and is kept as a UTC
instant, since Python orders two times of one zone by their wall clock,
which misorders the hour repeated when daylight saving time ends.

Python's ``datetime`` spans the years 1 to 9999.  A time near either end
cannot be moved to another zone, nor can an indicator window of 360 days
be counted back from it, so the library supports a slightly narrower range
and says so instead of failing on the arithmetic.

>>> from datetime import datetime, timedelta, timezone
>>> utc(datetime(2024, 6, 1, 3, tzinfo=timezone(timedelta(hours=3))))
datetime.datetime(2024, 6, 1, 0, 0, tzinfo=datetime.timezone.utc)
>>> utc(datetime(2024, 6, 1), "as_of")
Traceback (most recent call last):
...
ValueError: as_of=2024-06-01T00:00:00 is a naive datetime; give a time zone ...
>>> check_range(datetime(2024, 6, 1, tzinfo=timezone.utc), "--as-of")
>>> check_range(datetime(9999, 12, 31, tzinfo=timezone.utc), "--as-of")
Traceback (most recent call last):
...
ValueError: --as-of 9999-12-31T00:00:00+00:00: times must be from 0002-01-01 to 9999-01-01 (UTC)
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["EARLIEST", "LATEST", "RANGE_RULE", "check_range", "utc"]

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


def utc(at: object, what: str = "at") -> datetime:
    """``at`` as a UTC instant: ``TypeError`` if it is not a datetime,
    ``ValueError`` if it is naive (both naming ``what``).  O(1).

    A time already in UTC is returned as it is (the common case, checked
    first and cheaply).
    """
    if type(at) is datetime and at.tzinfo is UTC:
        return at
    if not isinstance(at, datetime):
        raise TypeError(f"{what}={at!r} is not a datetime")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"{what}={at.isoformat()} is a naive datetime; give a time zone "
            "(the library never guesses one)"
        )
    return at.astimezone(UTC)
