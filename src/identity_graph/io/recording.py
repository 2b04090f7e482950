"""Recording imported events in batches, and counting the rows they came from.

``record_many`` answers with two counts, ``(recorded, unchanged)``, not with
one answer per event; a ticket of three lines is one event but three rows.
So pending events are kept in buckets by how many rows each came from, and
each bucket is recorded by its own ``record_many`` call: within a bucket
every event weighs the same, and the counts convert to rows exactly.
Refused events (a ``DuplicateEvent``, an ``UnknownCustomer``) are found in
the graph's refusal log — ``record_many`` logs each one with the event it
refused, or, for a value ``forget`` erased, with that value's keyed hash,
which is matched against the batch's events — and their rows go to the
rejects file.

Memory is O(batch_size) events; a store writes one transaction per
``record_many`` call, so per batch rather than per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import IdentityGraphError
from ..events import Event
from ..ids import Link
from .summary import Rejects

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["EventBatches"]

#: A refused event's reason, given the error class name and message; lets an
#: importer add a hint that only it can give.
Explain = Callable[[Event, str, str], str]


def _plain_reason(_event: Event, error: str, reason: str) -> str:
    return f"{error}: {reason}"


class EventBatches:
    """Events waiting to be recorded, with the rows each came from.

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
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a whole number >= 1")
        self._graph = graph
        self._rejects = rejects
        self._batch_size = batch_size
        self._register_unknown = register_unknown
        self._explain = explain
        self._column = column
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
        logged = len(graph.refusals())
        saved = graph.register_unknown
        if self._register_unknown is not None:
            graph.register_unknown = self._register_unknown
        try:
            recorded, unchanged = graph.record_many(events)
        finally:
            graph.register_unknown = saved
        self.imported += recorded * weight
        self.unchanged += unchanged * weight
        missing = len(events) - recorded - unchanged
        if not missing:
            return
        # Refusals name the very Event object that was refused, except those
        # for an erased value, which name its keyed hash only.
        rows_of = {id(event): (event, rows) for event, rows in items}
        found = 0
        for refusal in graph.refusals()[logged:]:
            refused = refusal.args.get("event") if refusal.op == "record" else None
            if refusal.op == "record" and refusal.error == "SuppressedLink":
                refused = _erased_match(graph, refusal.args, rows_of)
            if not isinstance(refused, Event) or id(refused) not in rows_of:
                continue
            event, rows = rows_of.pop(id(refused))
            reason = self._explain(event, refusal.error, refusal.reason)
            event_id = event.id or event.content_id()  # the id the ledger derives
            for row in rows:
                self._rejects.add(row, [(self._column, event_id, reason)])
            found += 1
        if found != missing:  # pragma: no cover - record_many logs every refusal
            raise RuntimeError(
                f"record_many refused {missing} events but the refusal log names {found}"
            )


def _erased_match(
    graph: IdentityGraph, shown: Mapping[str, object], waiting: Mapping[int, tuple[Event, object]]
) -> Event | None:
    """The first waiting event that a refusal for an erased value was about:
    the one whose id, customer id or link has the keyed hash the refusal
    shows.  None for a refusal of one dropped link of an event that was
    kept (it names the event's id as well).  O(waiting events x links)."""
    if "link" in shown and "event" in shown:
        return None  # a link dropped from an event, not the event refused
    suppression = graph.state.suppression
    types = graph.link_types
    for event, _rows in waiting.values():
        if "event" in shown and shown["event"] == suppression.event_hash(
            event.id or event.content_id()
        ):
            return event
        customer = event.customer_id
        if customer is not None and shown.get("customer_id") == suppression.customer_hash(customer):
            return event
        if "link" in shown:
            for link in event.links:
                try:
                    hashed = suppression.link_hash(types.key(link))
                except (IdentityGraphError, ValueError):
                    continue
                if shown["link"] == Link(*hashed):
                    return event
    return None
