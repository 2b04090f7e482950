"""The slot rule of the customers file: which link a column such as
``customerCard:1`` holds, and what a row's cells do to a customer's links.

Several columns may map to one link name; they are its *slots*.  A
customer's links of a name stand in slot order: **oldest first** — by the
time the customer's current ownership of the link began, then by the order
the graph recorded the claims (the importer links a row's new values in
column order, so links given together keep the file's order).  The export
writes slot ``i`` to the ``i``-th column of the name.  Ordering by age
rather than by value is what lets a file's layout survive: a row giving
``B`` then ``A`` is exported as ``B``, ``A``.

What a row does to one link name (:func:`plan`):

1. A row whose values of the name the customer holds already, each in one
   of the name's slots (in whatever order), changes no link of the name:
   nothing is moved or reordered.  This is what makes a second import of
   the same file, and an import of an export, change nothing.
2. Otherwise — the row gives a new value, or one the customer holds past
   the last column — for every value cell, the customer's previous value of
   that slot is unlinked (unless the row gives that value too, in another
   column), and so are links past the last column that the row does not
   give: no column could show them, and the row's values would land behind
   them, out of sight.  Values in the slots of empty and ``generate()``
   cells are kept.  The new values are linked in column order, so they
   become the newest, last slots.
3. ``generate()`` cells are served first by the customer's links of the
   name that the row does not give (after step 2); each cell left over asks
   for a new value.

An empty cell never unlinks anything: it leaves its slot as it is.  A link
that an earlier row of the same import took from the customer keeps its
slot for the customer's own row (``gone``), so the row means the same
whichever of the two comes first in the file.

>>> plan(["OLD"], ["NEW"])
Plan(unlink=('OLD',), steps=((0, 'NEW'),))
>>> plan(["G1"], [GENERATE_CELL])  # the customer has a card: it is kept
Plan(unlink=(), steps=())
>>> plan(["A", "B"], ["B", "A"])  # a swap of held values changes nothing
Plan(unlink=(), steps=())
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from .. import history as hist

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["GENERATE_CELL", "Cell", "Plan", "Slots", "held_in_slot_order", "plan", "slots_of"]


class _Generate:
    """The marker of a ``generate()`` cell in a row's cells."""

    def __repr__(self) -> str:
        return "GENERATE_CELL"


#: A ``generate()`` cell.
GENERATE_CELL: Final = _Generate()

#: A normalised link value, ``GENERATE_CELL``, or None for an empty cell.
Cell = str | _Generate | None


@attrs.frozen
class Plan:
    """What a row does to a customer's links of one name.

    ``unlink``: values to unlink, first.  ``steps``: then, in column order,
    ``(column, value)`` to link, or ``(column, None)`` for a new value that
    ``generate()`` asks for.  An empty plan changes nothing.
    """

    unlink: tuple[str, ...] = ()
    steps: tuple[tuple[int, str | None], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.unlink or self.steps)


def plan(held: Sequence[str], cells: Sequence[Cell], gone: AbstractSet[str] = frozenset()) -> Plan:
    """The changes the row's ``cells`` (one per column of a link name, in the
    mapping's order) make to ``held`` (the customer's values of that name, in
    slot order).  The cells' values must be distinct.

    ``gone`` are values of ``held`` that an earlier row of the same import
    took away: they keep their slot for this row (so a slot still means
    what it meant before the file was read) but are not the customer's to
    unlink or to serve a ``generate()`` cell.  O(held + cells).
    """
    given = {cell for cell in cells if isinstance(cell, str)}
    present = [value for value in held if value not in gone]
    have = set(present)
    if given <= set(present[: len(cells)]):
        unlink: list[str] = []
    else:
        unlink = [
            value
            for slot, value in enumerate(held)
            if value not in given
            and value not in gone
            and (slot >= len(cells) or isinstance(cells[slot], str))
        ]
    # Held values the row does not give serve its generate() cells.
    serving = len(present) - len(unlink) - len(given & have)
    steps: list[tuple[int, str | None]] = []
    for column, cell in enumerate(cells):
        if isinstance(cell, str):
            if cell not in have:
                steps.append((column, cell))
        elif cell is GENERATE_CELL:
            if serving > 0:
                serving -= 1
            else:
                steps.append((column, None))
    return Plan(tuple(unlink), tuple(steps))


@attrs.frozen
class Slots:
    """A customer's links of one name in slot order (``values``), and those
    of them it lost to an earlier row of the running import (``gone``)."""

    values: tuple[str, ...] = ()
    gone: frozenset[str] = frozenset()


def _since(points: list[hist.Point], customer: str, end: int) -> tuple[datetime, int]:
    """When ``customer``'s unbroken ownership that ends at ``points[end]``
    began: the time and journal seq of the run's first change point."""
    start = end
    while start > 0 and points[start - 1][1] == customer:
        start -= 1
    return points[start][0], points[start][2]


def slots_of(
    graph: IdentityGraph, customer: str, lost: tuple[datetime, int] | None = None
) -> dict[str, Slots]:
    """``{link name: Slots}`` of ``customer``: the links it owns now, oldest
    claim first.  With ``lost=(at, seq)``, also the links it owned until a
    change at ``at`` recorded at journal ``seq`` or later (the running
    import), in the slots they had.  O(Σ change points of the links it ever
    owned)."""
    ownership = graph.state.ownership
    ordered: list[tuple[tuple[datetime, int], tuple[str, str], bool]] = []
    for key in ownership.claimed_by(customer):
        points = ownership.points(key)
        last = len(points) - 1
        if points[last][1] == customer:
            ordered.append((_since(points, customer, last), key, False))
        elif lost is not None:
            end = last
            while end >= 0 and points[end][1] != customer:
                end -= 1
            took = points[end + 1] if end >= 0 else None
            if took is not None and took[0] == lost[0] and took[2] >= lost[1]:
                ordered.append((_since(points, customer, end), key, True))
    ordered.sort()
    values: dict[str, list[str]] = {}
    gone: dict[str, set[str]] = {}
    for _since_key, (name, value), was in ordered:
        values.setdefault(name, []).append(value)
        if was:
            gone.setdefault(name, set()).add(value)
    return {
        name: Slots(tuple(held), frozenset(gone.get(name, ()))) for name, held in values.items()
    }


def held_in_slot_order(graph: IdentityGraph, customer: str) -> dict[str, list[str]]:
    """``{link name: values}`` of the links ``customer`` owns now, each list
    in slot order (oldest claim first).  O(Σ change points of its links)."""
    return {name: list(slots.values) for name, slots in slots_of(graph, customer).items()}
