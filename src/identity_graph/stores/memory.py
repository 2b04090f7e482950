"""``MemoryStore``: the store contract kept in Python lists.

The plain ``IdentityGraph()`` needs no store at all; this one exists so the
contract suite, and code written against :class:`~.base.Store`, can run the
stored-graph machinery without a database (``IdentityGraph.open("memory:")``).
Writes land at once (a transaction sees its own rows, as in a database) and
a rollback truncates the lists back to where :meth:`begin` found them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..errors import StoreError
from .base import CheckpointRow, EventRow, Head, JournalRow, RefusalRow, Store
from .schema import LATEST

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Rows in lists; one process, one graph object."""

    describe = "memory:"

    def __init__(self) -> None:
        self._journal: list[tuple[int, str]] = []
        self._events: list[tuple[int, str, str]] = []
        self._event_ids: dict[str, int] = {}
        self._refusals: list[tuple[int, str, str, str, str]] = []
        self._checkpoint: CheckpointRow | None = None
        # What a rollback restores: table lengths and the checkpoint at begin().
        self._undo: tuple[int, int, int, CheckpointRow | None] | None = None
        self._closed = False

    def _open(self) -> None:
        if self._closed:
            raise StoreError("memory: store is closed")

    def begin(self, write: bool) -> None:
        self._open()
        self._undo = (
            (len(self._journal), len(self._events), len(self._refusals), self._checkpoint)
            if write
            else None
        )

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        if self._undo is None:
            return
        journal, events, refusals, self._checkpoint = self._undo
        for event_id in [i for i, pos in self._event_ids.items() if pos > events]:
            del self._event_ids[event_id]
        del self._journal[journal:], self._events[events:], self._refusals[refusals:]
        self._undo = None

    def _writable(self) -> None:
        self._open()
        if self._undo is None:
            raise StoreError("memory: store written outside a write transaction")

    def head(self) -> Head:
        self._open()
        return Head(len(self._journal), len(self._events), len(self._refusals))

    def journal(self, since: int, upto: int | None = None) -> Iterator[tuple[int, str]]:
        end = len(self._journal) if upto is None else min(upto, len(self._journal))
        return iter(self._journal[max(since, 0) : end])

    def events(self, since: int, upto: int) -> Iterator[tuple[int, str, str]]:
        return iter(self._events[max(since, 0) : upto])

    def refusals(self, since: int, upto: int) -> Iterator[tuple[int, str, str, str, str]]:
        return iter(self._refusals[max(since, 0) : upto])

    def checkpoint(self) -> CheckpointRow | None:
        return self._checkpoint

    def schema_version(self) -> int:
        return LATEST

    def append_journal(self, rows: Sequence[JournalRow]) -> None:
        self._writable()
        for seq, _op, _at, record in rows:
            if seq != len(self._journal) + 1:
                raise StoreError(f"journal seq {seq} would leave a gap after {len(self._journal)}")
            self._journal.append((seq, record))

    def append_events(self, rows: Sequence[EventRow]) -> None:
        self._writable()
        for event_id, _type, _at, anchor, body in rows:
            if event_id in self._event_ids:
                raise StoreError(f"event id {event_id!r} is stored already")
            self._events.append((len(self._events) + 1, anchor, body))
            self._event_ids[event_id] = len(self._events)

    def append_refusals(self, rows: Sequence[RefusalRow]) -> None:
        self._writable()
        for at, op, reason, body in rows:
            self._refusals.append((len(self._refusals) + 1, at, op, reason, body))

    def save_checkpoint(self, row: CheckpointRow) -> None:
        self._writable()
        self._checkpoint = row

    def close(self) -> None:
        self._closed = True
