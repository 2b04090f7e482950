"""Recording imported events in batches, and counting the rows they came from.

``record_many`` answers with two counts, ``(recorded, unchanged)``, not with
one answer per event; a ticket of three lines is one event but three rows.
So pending events are kept in buckets by how many rows each came from, and
each bucket is recorded by its own ``record_many`` call: within a bucket
every event weighs the same, and the counts convert to rows exactly.
Refused events (a ``DuplicateEvent``, an ``UnknownCustomer``, a
``SuppressedLink``) come back from ``record_many`` with their errors, and
their rows go to the rejects file.

Memory is O(batch_size) events; a store writes one transaction per
``record_many`` call, so per batch rather than per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import SuppressedLink
from ..events import Event
from ..ids import Link
from ..text import escape_invalid
from .summary import Rejects

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["EventBatches"]

#: A refused event's reason, given the error class name and message; lets an
#: importer add a hint that only it can give.
Explain = Callable[[Event, str, str], str]


#: The column a rejects line names for an event refused for an erased value,
#: given the event and what was erased (``"customer_id"``, ``"link"`` or
#: ``"event"``, the key of the error's ``shown``); None for the batches' column.
ErasedColumn = Callable[[Event, str], str | None]


def _plain_reason(_event: Event, error: str, reason: str) -> str:
    return f"{error}: {reason}"


def _no_column(_event: Event, _erased: str) -> str | None:
    return None


class EventBatches:
    """Events waiting to be recorded, with the rows each came from.

    A refused event's rejects line names ``column`` and the event's id; one
    refused for a value ``forget`` erased names the value's keyed hash, under
    the column ``erased_column`` gives for it (``column`` if None).

    ``register_unknown`` applies to the import's ``record_many`` calls only
    (the graph's own setting is put back after each): with it, a customer id
    the graph does not know is registered inside the same batch, in the
    same transaction, instead of being refused.
    """

    def __init__(
        self,
        graph: IdentityGraph,
        rejects: Rejects,
        *,
        batch_size: int = 5_000,
        register_unknown: bool | None = None,
        explain: Explain = _plain_reason,
        column: str = "",
        erased_column: ErasedColumn = _no_column,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a whole number >= 1")
        self._graph = graph
        self._rejects = rejects
        self._batch_size = batch_size
        self._register_unknown = register_unknown
        self._explain = explain
        self._column = column
        self._erased_column = erased_column
        self._buckets: dict[int, list[tuple[Event, list[int]]]] = {}
        self._pending = 0
        self.imported = 0
        self.unchanged = 0

    def add(self, event: Event, rows: list[int]) -> None:
        """Queue ``event``, which came from ``rows``; records a batch when full."""
        self._buckets.setdefault(len(rows), []).append((event, rows))
        self._pending += 1
        if self._pending >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Record everything pending.  O(pending × log n)."""
        buckets, self._buckets, self._pending = self._buckets, {}, 0
        for weight, items in sorted(buckets.items()):
            self._record(weight, items)
        self._rejects.flush()

    def _record(self, weight: int, items: list[tuple[Event, list[int]]]) -> None:
        graph = self._graph
        events = [event for event, _rows in items]
        saved = graph.register_unknown
        if self._register_unknown is not None:
            graph.register_unknown = self._register_unknown
        refused: list[tuple[Event, Exception]] = []
        try:
            recorded, unchanged = graph.record_many(events, refused=refused)
        finally:
            graph.register_unknown = saved
        self.imported += recorded * weight
        self.unchanged += unchanged * weight
        if not refused:
            return
        # record_many hands back the very Event objects it refused (the
        # refusal log may hold only a keyed hash in place of one).
        rows_of = {id(event): rows for event, rows in items}
        for event, error in refused:
            reason = self._explain(event, type(error).__name__, escape_invalid(str(error)))
            column, value = self._column, event.id or event.content_id()  # the ledger's id
            if isinstance(error, SuppressedLink):
                # The rejects file must not write an erased value back out:
                # the line names its hash, under the column it came from.
                erased, shown = next(iter(error.shown.items()), ("", ""))
                value = shown.value if isinstance(shown, Link) else str(shown)
                chosen = self._erased_column(event, erased)
                column = column if chosen is None else chosen
            for row in rows_of[id(event)]:
                self._rejects.add(row, [(column, value, reason)])
