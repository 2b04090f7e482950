"""The times the library accepts: aware, and inside the calendar it can count in.

A time must carry a time zone: the library never guesses one.  :func:`utc`
is that rule, written once; every time a call takes goes through it (or
through its cheap fast path for a time already in UTC) and is kept as a UTC
instant, since Python orders two times of one zone by their wall clock,
which misorders the hour repeated when daylight saving time ends.

Python's ``datetime`` spans the years 1 to 9999.  A time near either end
cannot be moved to another zone, nor can an indicator window of 360 days
be counted back from it, so the library supports a slightly narrower range
(:data:`EARLIEST` to :data:`LATEST`) and refuses a time outside it with
:class:`~identity_graph.errors.InvalidTime`, naming the input and the range,
instead of failing on the arithmetic.  Every call that takes a time, and
every importer reading a time stamp, applies this one rule through
:func:`utc`.

>>> from datetime import datetime, timedelta, timezone
>>> utc(datetime(2024, 6, 1, 3, tzinfo=timezone(timedelta(hours=3))))
datetime.datetime(2024, 6, 1, 0, 0, tzinfo=datetime.timezone.utc)
>>> utc(datetime(2024, 6, 1), "as_of")
Traceback (most recent call last):
...
identity_graph.errors.InvalidTime: as_of=2024-06-01T00:00:00 is a naive datetime; ...
>>> check_range(datetime(2024, 6, 1, tzinfo=timezone.utc), "--as-of")
>>> check_range(datetime(9999, 12, 31, tzinfo=timezone.utc), "--as-of")
Traceback (most recent call last):
...
identity_graph.errors.InvalidTime: --as-of 9999-12-31T00:00:00+00:00: times must lie from ...
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import InvalidTime

__all__ = ["EARLIEST", "EPOCH", "LATEST", "RANGE_RULE", "check_range", "micros", "utc"]

#: The first instant the library supports (leaves a year for windows and zones).
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
#: The last instant the library supports (leaves a year for zones and day ends).
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
#: The origin of the library's integer times (microseconds since, in UTC):
#: the ledger's time columns, the purchase columns, table and file readers.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """An aware time as whole microseconds since :data:`EPOCH`: the instant,
    whatever the zone (so the hour repeated when DST ends sorts right).  O(1)."""
    return (at - EPOCH) // _MICROSECOND


RANGE_RULE = "times must lie from 0002-01-01 00:00 to 9999-01-01 00:00 UTC, both instants included"


def check_range(at: datetime, what: str) -> None:
    """Raise :class:`InvalidTime` naming ``what`` and the rule when ``at``
    (aware) is outside ``[EARLIEST, LATEST]``.  O(1)."""
    try:
        inside = EARLIEST <= at <= LATEST
    except OverflowError:  # an offset that pushes it past year 1 or 9999 in UTC
        inside = False
    if not inside:
        raise InvalidTime(f"{what} {at.isoformat()}: {RANGE_RULE}")


def utc(at: object, what: str = "at") -> datetime:
    """``at`` as a UTC instant: ``TypeError`` if it is not a datetime,
    :class:`InvalidTime` if it is naive or outside ``[EARLIEST, LATEST]``
    (each naming ``what``).  O(1).

    A time already in UTC and not in the first or last year of the calendar
    is returned as it is (the common case, checked first and cheaply: an
    integer comparison of the year rather than two datetime comparisons).
    """
    if type(at) is datetime and at.tzinfo is UTC and 1 < at.year < 9999:
        return at
    if not isinstance(at, datetime):
        raise TypeError(f"{what}={at!r} is not a datetime")
    try:
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidTime(
                f"{what}={at.isoformat()} is a naive datetime; give a time zone "
                "(the library never guesses one)"
            )
        moved = at.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        moved = None
    if moved is None or not EARLIEST <= moved <= LATEST:
        raise InvalidTime(f"{what}={at.isoformat()}: {RANGE_RULE}")
    return moved
