"""The ``Store`` contract: what a durable home for a graph must offer.

A store keeps four tables, appended to except by an erasure, and one
replaceable snapshot:

- the **journal** (``seq``, gap-free from 1, with its encoded record);
- the **events** of the ledger, each with its anchor, in recording order
  (``pos``);
- the **refusals** of the guards, in order (``pos``);
- the latest **checkpoint**: the graph's state after some ``seq``.

The graph's logic stays in the core (:mod:`identity_graph.graph`).  A store
never decides anything; it keeps rows, hands them back in order, and
serialises writers: :meth:`Store.begin` with ``write=True`` takes the
store's write lock, so every process applies every other process's entries
before it decides its own (:mod:`identity_graph.session`).  Rows are opaque
text produced by :mod:`identity_graph.codec`.

An erasure (``IdentityGraph.forget``) is the one writer that changes rows
in place: in its write transaction it rewrites journal rows, replaces event
rows by erased rows, deletes refusal rows and writes a new checkpoint, then
moves the store's erasure **epoch** on (:attr:`Head.epoch`) so every other
process loads again; after the commit :meth:`Store.scrub` clears the space
the old rows held.  The store also keeps the graph's erasure key, the
secret of the keyed hashes that replace erased values.

An integrator's own store subclasses :class:`Store` and is checked with
:class:`identity_graph.testing.StoreContract`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import attrs

__all__ = ["CheckpointRow", "EventRow", "Extent", "Head", "JournalRow", "RefusalRow", "Store"]

#: ``(seq, op, at as ISO text, encoded record)``
JournalRow = tuple[int, str, str, str]
#: ``(event id, type, at as ISO text in UTC, encoded anchor, encoded event)``
EventRow = tuple[str, str, str, str, str]
#: ``(at as ISO text, op, reason, encoded body)``
RefusalRow = tuple[str, str, str, str]
#: ``(seq, format, compressed state)``
CheckpointRow = tuple[int, int, bytes]


@attrs.frozen
class Head:
    """How far a store's tables reach: the last journal ``seq`` and the last
    event and refusal positions (0 when empty); and ``events_written``, the
    number of event rows the store recorded writing (None when it keeps no
    such record), read in the same statement.  A sound table holds exactly
    that many rows."""

    seq: int
    events: int
    refusals: int
    events_written: int | None = None
    #: How many erasures the store has committed: rows an erasure rewrote
    #: cannot be caught up with row by row, so a process whose memory was
    #: loaded at another epoch loads again.
    epoch: int = 0


@attrs.frozen
class Extent:
    """What the journal holds, for the checks made when a graph opens: the
    number of rows, the lowest and highest ``seq`` (0 when empty), and the
    ``seq`` the store recorded as its last one when it last wrote (None when
    it keeps no such record).  A sound journal has ``first == 1`` (unless
    empty) and ``last == rows == written``."""

    rows: int
    first: int
    last: int
    written: int | None = None


class Store(ABC):
    """Durable rows for one graph.  Not thread-safe: one store per graph object.

    Every read or write happens between :meth:`begin` and :meth:`commit` (or
    :meth:`rollback`); the graph makes those calls.  ``describe`` names the
    store in messages (a path, or a URL without its password).
    """

    describe: str = "store"
    #: Driver exceptions a store lets through; the graph turns them into
    #: ``StoreError`` after rolling back.
    driver_errors: tuple[type[BaseException], ...] = ()

    # ----------------------------------------------------------- transactions

    @abstractmethod
    def begin(self, write: bool) -> None:
        """Start a transaction; with ``write`` take the write lock, waiting for
        other writers rather than failing."""

    @abstractmethod
    def commit(self) -> None:
        """Make the transaction's writes durable (they are when this returns)."""

    @abstractmethod
    def rollback(self) -> None:
        """Drop the transaction's writes; safe to call when none is open."""

    def changed(self) -> bool:
        """Whether another connection may have written since the last call.

        A cheap hint so reads can skip asking for :meth:`head`; ``True`` is
        always a correct answer.
        """
        return True

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` (a driver error) means "run the operation again"
        (a serialisation failure or a deadlock)."""
        return False

    # ------------------------------------------------------------------ reads

    @abstractmethod
    def head(self) -> Head:
        """The last journal seq and event / refusal positions."""

    @abstractmethod
    def journal(self, since: int, upto: int | None = None) -> Iterator[tuple[int, str]]:
        """``(seq, record)`` for ``since < seq <= upto``, in order."""

    @abstractmethod
    def events(self, since: int, upto: int) -> Iterator[tuple[int, str, str]]:
        """``(pos, anchor, event)`` for ``since < pos <= upto``, in order."""

    @abstractmethod
    def refusals(self, since: int, upto: int) -> Iterator[tuple[int, str, str, str, str]]:
        """``(pos, at, op, reason, body)`` for ``since < pos <= upto``, in order."""

    def extent(self) -> Extent:
        """How far the journal reaches and how many rows it has (see
        :class:`Extent`).  This default reads every row: O(journal); a
        database answers from its index (and records ``written``)."""
        rows = first = last = 0
        for seq, _record in self.journal(0):
            rows += 1
            first = first or seq
            last = seq
        return Extent(rows, first, last)

    def journal_columns(self) -> Iterator[tuple[int, str, str, str]]:
        """``(seq, op, at, record)`` of every journal row, in order: for
        ``IdentityGraph.verify`` to compare the ``op`` and ``at`` columns
        (kept for queries, never served) with the record.  This default
        yields nothing (a store that keeps no such columns)."""
        return iter(())

    def event_columns(self) -> Iterator[tuple[int, str, str, str, str]]:
        """``(pos, id, type, at, event)`` of every event row, in order: for
        ``IdentityGraph.verify`` to compare the ``id``, ``type`` and ``at``
        columns with the event.  This default yields nothing."""
        return iter(())

    def verify(self, full: bool = False) -> None:
        """Check the store's own files or pages, not its rows; raise
        ``StoreError`` naming what is damaged.  ``full`` asks for the
        thorough check where a cheaper one exists.  This default checks
        nothing (a store without such a check, PostgreSQL among them)."""
        return None  # not abstract: an integrator's store need not have one

    @abstractmethod
    def checkpoint(self) -> CheckpointRow | None:
        """The latest checkpoint, or None."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version the store is at."""

    # ----------------------------------------------------------------- writes

    @abstractmethod
    def append_journal(self, rows: Sequence[JournalRow]) -> None:
        """Append journal rows (their seqs continue the journal without a gap)."""

    @abstractmethod
    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Append events; an id stored before is an error (the ledger checks first)."""

    @abstractmethod
    def append_refusals(self, rows: Sequence[RefusalRow]) -> None:
        """Append refusals, at positions above every position ever used:
        never reused, even after :meth:`delete_refusals` removed the last
        rows (a process that read up to a position skips what lies below)."""

    @abstractmethod
    def save_checkpoint(self, row: CheckpointRow) -> None:
        """Store a checkpoint and drop older ones."""

    # ---------------------------------------------------------------- erasure

    def journal_mentioning(
        self, needles: Sequence[str], folded: Sequence[str] = ()
    ) -> Iterator[tuple[int, str]]:
        """``(seq, record)`` of every journal row whose text contains one of
        ``needles``, or whose text with its ASCII letters lower-cased
        contains one of ``folded``, in order (an erasure looks for the rows
        to rewrite).  This default reads every row: O(journal); a database
        searches its rows in SQL."""
        from ..suppression import ascii_lower

        for seq, record in self.journal(0):
            if any(needle in record for needle in needles) or (
                folded and any(needle in ascii_lower(record) for needle in folded)
            ):
                yield seq, record

    def events_matching(
        self, anchors: Sequence[str], needles: Sequence[str]
    ) -> Iterator[tuple[int, str, str]]:
        """``(pos, anchor, event)`` of every event row whose anchor is one of
        ``anchors`` or whose text contains one of ``needles``, in order (an
        erasure looks for a person's events without loading them all).
        This default reads every row: O(events)."""
        wanted = set(anchors)
        for pos, anchor, body in self.events(0, self.head().events):
            if anchor in wanted or any(needle in body for needle in needles):
                yield pos, anchor, body

    @abstractmethod
    def rewrite_journal(self, rows: Sequence[tuple[int, str]]) -> None:
        """Replace the encoded record of existing journal rows ``(seq, record)``."""

    @abstractmethod
    def events_by_id(self, ids: Sequence[str]) -> list[tuple[int, str, str]]:
        """``(pos, id, event)`` of the event rows with these ids, in any order."""

    @abstractmethod
    def replace_events(self, rows: Sequence[tuple[int, EventRow]]) -> None:
        """Replace each event row at ``pos`` by a new ``EventRow`` (its
        ``pos`` stays; an erased event's row)."""

    @abstractmethod
    def delete_refusals(self, positions: Sequence[int]) -> None:
        """Delete the refusal rows at these positions (the others keep theirs,
        and deleted positions are never given out again)."""

    @abstractmethod
    def erasure_key(self) -> bytes | None:
        """The graph's erasure key, or None before the first erasure."""

    @abstractmethod
    def set_erasure_key(self, key: bytes) -> None:
        """Keep ``key`` as the graph's erasure key (once, in a write transaction)."""

    @abstractmethod
    def bump_epoch(self) -> int:
        """Move the erasure epoch on by one, in the write transaction; return it."""

    def erasing(self) -> None:
        """Called in the write transaction before an erasure's first write
        (SQLite turns ``secure_delete`` on).  This default does nothing."""
        return None

    def scrub(self) -> None:
        """Called after an erasure's commit: clear the space the old rows
        held, so no erased byte stays readable in the store's files (SQLite:
        ``VACUUM`` and a truncated WAL; PostgreSQL: ``VACUUM``).  This
        default does nothing (a store that keeps no freed space)."""
        return None

    # -------------------------------------------------------------- lifecycle

    @abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call twice."""
