"""Recording imported events in batches, and counting the rows they came from.

``record_many`` answers with two counts, ``(recorded, unchanged)``, not with
one answer per event; a ticket of three lines is one event but three rows.
So pending events are kept in buckets by how many rows each came from, and
each bucket is recorded by its own ``record_many`` call: within a bucket
every event weighs the same, and the counts convert to rows exactly.
Refused events (a ``DuplicateEvent``, an ``UnknownCustomer``, a
``SuppressedLink``) come back from ``record_many`` with their errors, and
their rows go to the rejects file.

Pending events are kept as columns (``type``, ``at``, ``id``,
``customer_id``, ``data`` and one per link name), the table the graph's
bulk entry point takes; :func:`_record_table` is the one place that hands
a table to the graph.

Memory is O(batch_size) events; a store writes one transaction per
bulk call, so per batch rather than per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import SuppressedLink
from ..events import Event
from ..ids import Link
from ..text import escape_invalid
from .summary import Rejects

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["EventBatches", "event_of_row"]

#: The columns of every table an importer records, before its link columns.
BASE_COLUMNS = ("type", "at", "id", "customer_id", "data")

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


def event_of_row(table: Mapping[str, Sequence[Any]], index: int) -> Event:
    """The event that row ``index`` of ``table`` means: its type, time,
    customer, data and id, and one link per non-empty link column, in column
    order (the meaning of a row for the graph's bulk entry point).  O(columns)."""
    links = tuple(
        Link(name, value)
        for name, column in table.items()
        if name not in BASE_COLUMNS and (value := column[index])
    )
    return Event(
        table["type"][index],
        at=table["at"][index],
        customer_id=table["customer_id"][index],
        links=links,
        data=table["data"][index],
        id=table["id"][index],
    )


def _record_table(
    graph: IdentityGraph,
    table: Mapping[str, Sequence[Any]],
    refused: list[tuple[int, Exception]],
) -> tuple[int, int]:
    """Record every row of ``table`` as ``graph.record_table`` does: return
    ``(recorded, unchanged)`` and append each refused row to ``refused`` as
    ``(row index, error)``.  The one call site of the graph's bulk entry point.
    O(rows × log n)."""
    return graph.record_table(table, refused=refused)


class _Bucket:
    """The pending rows of one weight, as columns, and the file rows of each."""

    __slots__ = ("rows", "table")

    def __init__(self, links: Sequence[str]) -> None:
        self.table: dict[str, list[Any]] = {name: [] for name in (*BASE_COLUMNS, *links)}
        self.rows: list[list[int]] = []


class EventBatches:
    """Events waiting to be recorded, with the rows each came from.

    A refused event's rejects line names ``column`` and the event's id; one
    refused for a value ``forget`` erased names the value's keyed hash, under
    the column ``erased_column`` gives for it (``column`` if None).

    ``links`` names the link columns of the table (each event has at most
    one link of each name).  ``register_unknown`` applies to the import's
    bulk calls only (the graph's own setting is put back after each): with
    it, a customer id the graph does not know is registered inside the same
    batch, in the same transaction, instead of being refused.
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
        links: Sequence[str] = (),
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
        self._links = tuple(links)
        self._buckets: dict[int, _Bucket] = {}
        self._pending = 0
        self.imported = 0
        self.unchanged = 0

    def add_row(
        self,
        kind: str,
        at: datetime,
        customer_id: str | None,
        data: Mapping[str, Any],
        rows: list[int],
        event_id: str | None = None,
        links: Sequence[str | None] = (),
    ) -> None:
        """Queue the event of one table row (``links``: a value or None per
        link column), which came from ``rows``; records a batch when full.  O(1)."""
        bucket = self._buckets.get(len(rows))
        if bucket is None:
            bucket = self._buckets[len(rows)] = _Bucket(self._links)
        table = bucket.table
        table["type"].append(kind)
        table["at"].append(at)
        table["id"].append(event_id)
        table["customer_id"].append(customer_id)
        table["data"].append(data)
        for name, value in zip(self._links, links, strict=True):
            table[name].append(value)
        bucket.rows.append(rows)
        self._pending += 1
        if self._pending >= self._batch_size:
            self.flush()

    def add(self, event: Event, rows: list[int]) -> None:
        """Queue ``event``, which came from ``rows``: the row of the table
        that means it (ValueError if it has a link of a name ``links`` lacks,
        or two of one name).  O(links)."""
        values: dict[str, str] = {}
        for link in event.links:
            if link.name not in self._links or link.name in values:
                raise ValueError(
                    f"event {event.id!r}: a table row holds one link of each of "
                    f"{list(self._links)}; it has {[str(x) for x in event.links]}"
                )
            values[link.name] = link.value
        self.add_row(
            event.type,
            event.at,
            event.customer_id,
            event.data,
            rows,
            event.id,
            [values.get(name) for name in self._links],
        )

    def flush(self) -> None:
        """Record everything pending.  O(pending × log n)."""
        buckets, self._buckets, self._pending = self._buckets, {}, 0
        for weight, bucket in sorted(buckets.items()):
            self._record(weight, bucket)
        self._rejects.flush()

    def _record(self, weight: int, bucket: _Bucket) -> None:
        graph = self._graph
        saved = graph.register_unknown
        if self._register_unknown is not None:
            graph.register_unknown = self._register_unknown
        refused: list[tuple[int, Exception]] = []
        try:
            recorded, unchanged = _record_table(graph, bucket.table, refused)
        finally:
            graph.register_unknown = saved
        self.imported += recorded * weight
        self.unchanged += unchanged * weight
        for index, error in refused:
            event = event_of_row(bucket.table, index)
            reason = self._explain(event, type(error).__name__, escape_invalid(str(error)))
            column, value = self._column, event.id or event.content_id()  # the ledger's id
            if isinstance(error, SuppressedLink):
                # The rejects file must not write an erased value back out:
                # the line names its hash, under the column it came from.
                erased, shown = next(iter(error.shown.items()), ("", ""))
                value = shown.value if isinstance(shown, Link) else str(shown)
                chosen = self._erased_column(event, erased)
                column = column if chosen is None else chosen
            for row in bucket.rows[index]:
                self._rejects.add(row, [(column, value, reason)])
