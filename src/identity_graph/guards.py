"""Protection against over-merging: limits, frozen links, the refusal log.

The guards decide; they never change the graph.  Every refusal is appended to
the review log (:meth:`Guards.refuse`) before the error is raised, so a bulk
job that catches and goes on still leaves a trace of what it skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
from sortedcontainers import SortedList

from .ids import LinkKey
from .text import escape_invalid

__all__ = ["Guards", "Limits", "Refusal"]

_E = TypeVar("_E", bound=Exception)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Limits.{attribute.name} = {value!r} must be a whole number >= 1")


@attrs.frozen
class Limits:
    """Caps that stop runaway merging.  The defaults never trip on honest data:

    - ``max_links_per_customer`` (1000): links of all names one customer owns at once;
    - ``max_customers_per_profile`` (100): a merge that would exceed it is refused;
    - ``max_moves`` (5) within ``move_window`` (30 days): a link that has moved
      between owners that often is frozen; further moves are refused until
      :meth:`IdentityGraph.release`.
    """

    max_links_per_customer: int = attrs.field(default=1000, validator=_positive)
    max_customers_per_profile: int = attrs.field(default=100, validator=_positive)
    max_moves: int = attrs.field(default=5, validator=_positive)
    move_window: timedelta = attrs.field(default=timedelta(days=30))

    @move_window.validator
    def _check_window(self, _attribute: object, value: object) -> None:
        if not isinstance(value, timedelta) or value <= timedelta(0):
            raise ValueError(f"Limits.move_window = {value!r} must be a positive timedelta")


@attrs.frozen(hash=False)
class Refusal:
    """One refused call: when, which operation, its arguments, why, and the error raised."""

    at: datetime
    op: str
    args: Mapping[str, Any]
    reason: str
    error: str


class Guards:
    """Move tracking for frozen links, and the refusal log."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.clear()

    def clear(self) -> None:
        """Forget every move, frozen link and refusal (the limits stay)."""
        self._moves: dict[LinkKey, SortedList] = {}  # move times since the last release
        self.frozen: set[LinkKey] = set()
        self.log: list[Refusal] = []

    def refuse(self, at: datetime, op: str, args: Mapping[str, Any], error: _E) -> _E:
        """Log ``error`` as a refusal of ``op`` and return it for raising."""
        # Messages show values by repr, but a refusal must be storable even if
        # one quoted refused text as it came.
        reason = escape_invalid(str(error))
        self.log.append(Refusal(at, op, dict(args), reason, type(error).__name__))
        return error

    def record_move(self, link: LinkKey, at: datetime) -> None:
        """Count a move of ``link`` at ``at``.  O(log m)."""
        self._moves.setdefault(link, SortedList()).add(at)

    def would_freeze(self, link: LinkKey, at: datetime) -> bool:
        """Whether one more move at ``at`` gives ``link`` ``max_moves`` moves within
        some window ``[start, start + move_window)``.  O(m log m) for m moves."""
        times = SortedList(self._moves.get(link, ()))
        times.add(at)
        window, needed = self.limits.move_window, self.limits.max_moves
        # Any window that holds `at` and the most moves starts at one of the
        # moves in (at - window, at].
        for start in times.irange(at - window, at, inclusive=(False, True)):
            if times.bisect_left(start + window) - times.bisect_left(start) >= needed:
                return True
        return False

    def release(self, link: LinkKey) -> None:
        """Unfreeze ``link`` and forget its earlier moves."""
        self.frozen.discard(link)
        self._moves.pop(link, None)

    def tracked(self) -> set[LinkKey]:
        """Every link the guards know of: frozen, or with moves counted."""
        return self.frozen | self._moves.keys()

    def save(self) -> dict[str, Any]:
        """The frozen links and counted moves as plain JSON data (a checkpoint).  O(moves)."""
        return {
            "frozen": [list(key) for key in sorted(self.frozen)],
            "moves": [
                [key[0], key[1], [t.isoformat() for t in times]]
                for key, times in self._moves.items()
            ],
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Load what :meth:`save` gave into these (new) guards.  O(moves)."""
        when = datetime.fromisoformat
        self.frozen.update((name, value) for name, value in saved["frozen"])
        for name, value, times in saved["moves"]:
            self._moves[(name, value)] = SortedList(when(t) for t in times)

    def check(self) -> None:
        """Verify the guards' invariants (for tests); raises AssertionError.  O(moves)."""
        assert isinstance(self.limits, Limits)
        for key, times in self._moves.items():
            assert times, f"{key}: an empty move list is kept"
        for refusal in self.log:
            assert refusal.at.utcoffset() is not None, f"refusal {refusal} has a naive time"

    def state(self) -> tuple[Any, ...]:
        """Comparable state (for graph equality)."""
        return (
            sorted(self.frozen),
            sorted((link, list(times)) for link, times in self._moves.items()),
        )
