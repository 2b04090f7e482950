"""Ownership of one link over time.

A link's history is a list of change points ``(valid_from, owner, seq)``
ordered by ``valid_from``; ``owner`` is a customer id or ``None`` (unlinked)
and ``seq`` the journal entry that recorded the point.

Most links in a real graph are claimed once and never move, so a history with
one change point is kept as a bare :data:`Point` tuple; a second change point
turns it into a :class:`LinkHistory` over a ``sortedcontainers.SortedDict``.
That keeps a million one-owner links cheap in memory while a card that
changed hands still gets ``O(log k)`` lookups.  The functions below accept
either form (:data:`History`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TypeAlias

from sortedcontainers import SortedDict

from .ids import CustomerId

__all__ = [
    "History",
    "LinkHistory",
    "Point",
    "current_owner",
    "explicit_owner_at",
    "insert",
    "last_point",
    "owner_at",
    "points",
    "previous_customer",
    "spans",
]

#: ``(start, end, owner)``: the owner over ``[start, end)``; ``None`` bounds are open.
Span: TypeAlias = "tuple[datetime | None, datetime | None, CustomerId | None]"

Point: TypeAlias = tuple[datetime, CustomerId | None, int]


class LinkHistory:
    """Two or more change points of one link, ordered by ``valid_from``."""

    __slots__ = ("_points",)

    def __init__(self, points: Iterator[Point] | list[Point]) -> None:
        self._points: SortedDict = SortedDict()
        for at, owner, seq in points:
            self._points[at] = (owner, seq)

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[Point]:
        for at, (owner, seq) in self._points.items():
            yield (at, owner, seq)

    def at_or_before(self, at: datetime) -> Point | None:
        """The last change point at or before ``at``.  O(log k)."""
        index = self._points.bisect_right(at)
        if index == 0:
            return None
        key = self._points.peekitem(index - 1)
        return (key[0], key[1][0], key[1][1])

    def after(self, at: datetime) -> Point | None:
        """The first change point strictly after ``at``.  O(log k)."""
        index = self._points.bisect_right(at)
        if index == len(self._points):
            return None
        key = self._points.peekitem(index)
        return (key[0], key[1][0], key[1][1])

    def last_customer(self, at: datetime) -> CustomerId | None:
        """The latest customer named at or before ``at``, skipping unlinks.  O(log k + u)
        for u unlink points passed over."""
        for key in self._points.irange(maximum=at, reverse=True):
            owner = self._points[key][0]
            if owner is not None:
                return owner  # type: ignore[no-any-return]
        return None

    def last(self) -> Point:
        """The latest change point.  O(1)."""
        key = self._points.peekitem(-1)
        return (key[0], key[1][0], key[1][1])

    def put(self, point: Point) -> Point | None:
        """Insert ``point``; return the point it replaced at the same instant.  O(log k)."""
        at, owner, seq = point
        old = self._points.get(at)
        self._points[at] = (owner, seq)
        return None if old is None else (at, old[0], old[1])


History: TypeAlias = "Point | LinkHistory"


def points(history: History) -> list[Point]:
    """Every change point, oldest first.  O(k)."""
    if isinstance(history, LinkHistory):
        return list(history)
    return [history]


def _at_or_before(history: History, at: datetime) -> Point | None:
    if isinstance(history, LinkHistory):
        return history.at_or_before(at)
    return history if history[0] <= at else None


def explicit_owner_at(history: History | None, at: datetime) -> CustomerId | None:
    """The owner named by the last change point at or before ``at``, if any.

    This is the owner ``link`` checks for conflicts: the "next
    claimant" rule of anonymous spans does not apply.  O(log k).
    """
    if history is None:
        return None
    point = _at_or_before(history, at)
    return None if point is None else point[1]


def owner_at(history: History | None, at: datetime) -> CustomerId | None:
    """The customer a link belongs to at ``at``.  O(log k).

    The last change point at or before ``at`` decides; when there is none or
    it unlinked the link, the span is anonymous and belongs to the owner of
    the next change point, if that names a customer.
    """
    if history is None:
        return None
    if isinstance(history, LinkHistory):
        point = history.at_or_before(at)
        if point is not None and point[1] is not None:
            return point[1]
        following = history.after(at)
        return None if following is None else following[1]
    # One change point: it owns everything at and after it, and the anonymous
    # span before it belongs to it as the next claimant.
    return history[1]


def previous_customer(history: History | None, at: datetime) -> CustomerId | None:
    """The last customer that owned the link at or before ``at``, across unlinked spans.

    A change of owner away from this customer is a *move* for the frozen-link
    guard, so that unlinking first does not dodge the count.
    """
    if history is None:
        return None
    if isinstance(history, LinkHistory):
        return history.last_customer(at)
    return history[1] if history[0] <= at else None


def last_point(history: History) -> Point:
    """The latest change point.  O(1)."""
    return history.last() if isinstance(history, LinkHistory) else history


def current_owner(history: History | None) -> CustomerId | None:
    """The owner after the last change point.  O(1)."""
    return None if history is None else last_point(history)[1]


def insert(history: History | None, point: Point) -> tuple[History, Point | None]:
    """Add ``point``; return the new history and the point replaced at the same instant.

    A later-recorded point at an instant that already has one replaces it.
    O(log k); the first and second points are O(1).
    """
    if history is None:
        return point, None
    if isinstance(history, LinkHistory):
        return history, history.put(point)
    if history[0] == point[0]:
        return point, history
    return LinkHistory([history, point]), None


def spans(history: History) -> list[Span]:
    """The whole time line of a link as consecutive ``[start, end)`` spans.

    Each span names the owner :func:`owner_at` gives for every instant in it
    (so anonymous spans already belong to their next claimant); adjacent
    spans with the same owner are joined.  O(k).

    >>> from datetime import datetime, timezone
    >>> t1, t2 = (datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2))
    >>> card = LinkHistory([(t1, "a", 1), (t2, "b", 2)])
    >>> [(s and s.day, e and e.day, owner) for s, e, owner in spans(card)]
    [(None, 2, 'a'), (2, None, 'b')]
    """
    marks = points(history)
    owners: list[CustomerId | None] = []
    for index, (_at, owner, _seq) in enumerate(marks):
        if owner is None and index + 1 < len(marks):
            owner = marks[index + 1][1]  # the next claimant, or None if it unlinks too
        owners.append(owner)
    result: list[Span] = [(None, marks[0][0], marks[0][1])]
    for index, (at, _owner, _seq) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else None
        if result[-1][2] == owners[index]:
            result[-1] = (result[-1][0], end, owners[index])
        else:
            result.append((at, end, owners[index]))
    return result
