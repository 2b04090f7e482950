"""``MemoryStore``: the store contract kept in Python lists.

The plain ``IdentityGraph()`` needs no store at all; this one exists so the
contract suite, and code written against :class:`~.base.Store`, can run the
stored-graph machinery without a database (``IdentityGraph.open("memory:")``).
Writes land at once (a transaction sees its own rows, as in a database) and
a rollback truncates the lists back to where :meth:`begin` found them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

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
        self._refusal_serial = 0
        self._checkpoint: CheckpointRow | None = None
        self._key: bytes | None = None
        self._epoch = 0
        # What a rollback restores: the tables, checkpoint, key and epoch at
        # begin() (copies: an erasure changes rows in place).
        self._undo: tuple[Any, ...] | None = None
        self._closed = False

    def _open(self) -> None:
        if self._closed:
            raise StoreError("memory: store is closed")

    def begin(self, write: bool) -> None:
        self._open()
        # Appends are undone by cutting the lists back; an erasure's changes
        # in place take a full copy first (_copy_for_undo).
        self._undo = (
            ("cut", len(self._journal), len(self._events), len(self._refusals), self._checkpoint)
            if write
            else None
        )

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        if self._undo is None:
            return
        if self._undo[0] == "cut":
            _kind, journal, events, refusals, self._checkpoint = self._undo
            for event_id in [i for i, pos in self._event_ids.items() if pos > events]:
                del self._event_ids[event_id]
            del self._journal[journal:], self._events[events:], self._refusals[refusals:]
        else:
            (
                _kind,
                self._journal,
                self._events,
                self._event_ids,
                self._refusals,
                self._checkpoint,
                self._key,
                self._epoch,
            ) = self._undo
        self._undo = None

    def _copy_for_undo(self) -> None:
        """Before the first change in place of a transaction: keep a copy of
        everything as it was at begin() for a rollback.  O(rows)."""
        assert self._undo is not None
        if self._undo[0] == "copy":
            return
        _kind, journal, events, refusals, checkpoint = self._undo
        self._undo = (
            "copy",
            self._journal[:journal],
            self._events[:events],
            {i: pos for i, pos in self._event_ids.items() if pos <= events},
            self._refusals[:refusals],
            checkpoint,
            self._key,
            self._epoch,
        )

    def _writable(self) -> None:
        self._open()
        if self._undo is None:
            raise StoreError("memory: store written outside a write transaction")

    def head(self) -> Head:
        self._open()
        last = self._refusals[-1][0] if self._refusals else 0
        return Head(len(self._journal), len(self._events), last, epoch=self._epoch)

    def journal(self, since: int, upto: int | None = None) -> Iterator[tuple[int, str]]:
        end = len(self._journal) if upto is None else min(upto, len(self._journal))
        return iter(self._journal[max(since, 0) : end])

    def events(self, since: int, upto: int) -> Iterator[tuple[int, str, str]]:
        return iter(self._events[max(since, 0) : upto])

    def refusals(self, since: int, upto: int) -> Iterator[tuple[int, str, str, str, str]]:
        return iter([row for row in self._refusals if since < row[0] <= upto])

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
            # Positions are never reused, as a database's serial column.
            self._refusal_serial += 1
            self._refusals.append((self._refusal_serial, at, op, reason, body))

    def save_checkpoint(self, row: CheckpointRow) -> None:
        self._writable()
        self._checkpoint = row

    def rewrite_journal(self, rows: Sequence[tuple[int, str]]) -> None:
        self._writable()
        self._copy_for_undo()
        for seq, record in rows:
            self._journal[seq - 1] = (seq, record)

    def events_by_id(self, ids: Sequence[str]) -> list[tuple[int, str, str]]:
        self._open()
        found = []
        for event_id in ids:
            pos = self._event_ids.get(event_id)
            if pos is not None:
                found.append((pos, event_id, self._events[pos - 1][2]))
        return found

    def replace_events(self, rows: Sequence[tuple[int, EventRow]]) -> None:
        self._writable()
        self._copy_for_undo()
        for pos, (event_id, _type, _at, anchor, body) in rows:
            old = [i for i, at in self._event_ids.items() if at == pos]
            for gone in old:
                del self._event_ids[gone]
            self._event_ids[event_id] = pos
            self._events[pos - 1] = (pos, anchor, body)

    def delete_refusals(self, positions: Sequence[int]) -> None:
        self._writable()
        self._copy_for_undo()
        doomed = set(positions)
        self._refusals = [row for row in self._refusals if row[0] not in doomed]

    def erasure_key(self) -> bytes | None:
        self._open()
        return self._key

    def set_erasure_key(self, key: bytes) -> None:
        self._writable()
        self._copy_for_undo()
        self._key = key

    def bump_epoch(self) -> int:
        self._writable()
        self._copy_for_undo()
        self._epoch += 1
        return self._epoch

    def close(self) -> None:
        self._closed = True
