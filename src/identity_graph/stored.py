"""``StoredGraph``: an :class:`IdentityGraph` whose journal and ledger live in a store.

The graph's logic is not repeated here: every call runs the in-memory core
unchanged.  What this module adds is *when* the store is read and written.

Opening
    Load the latest checkpoint (the state after entry ``seq``), replay the
    journal entries after it, then load events and refusals from their
    tables.  The cost is O(state + tail + events): no call is re-decided
    and nothing is replayed from entry 1 once a checkpoint exists.

Every mutating call (``register`` … ``release``, ``record``)
    1. take the store's write lock (``BEGIN IMMEDIATE`` / an advisory lock);
    2. catch up: apply the entries, events and refusals other processes
       committed since this process last looked;
    3. run the core's call, which decides against that up-to-date state;
    4. write the new journal rows, events and refusals, and commit.

    A refused call (``LinkConflict``, ``LimitExceeded``, …) still commits
    its refusal, then raises.  If writing or committing fails (full disk,
    read-only file, lost connection) the transaction is rolled back, the
    in-memory state is reloaded from the store (it had run ahead of it) and
    :class:`~identity_graph.errors.StoreError` is raised: the store is as it
    was before the call.  Serialisation failures and deadlocks are retried.

Every read
    Catch up first (cheap when nothing changed: SQLite asks ``PRAGMA
    data_version``), then answer from memory.

``batch()`` runs several calls in one write transaction (the importers use
it); ``record_many`` writes one transaction per ``batch_size`` events.  A
checkpoint is written by :meth:`StoredGraph.checkpoint`, by ``close()``
when ``checkpoint_every`` entries were appended since the last one, and on
opening when the replayed tail was that long.

A graph object is not thread-safe (neither is the in-memory one); give
each thread or process its own ``IdentityGraph.open(...)``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

from . import checkpoint as checkpoints
from . import codec
from .errors import IdentityGraphError, StoreError
from .graph import IdentityGraph
from .guards import Refusal
from .journal import Entry, Journal, Record, flatten, raw
from .state import GraphState
from .stores.base import Store

__all__ = ["StoredGraph", "StoredJournal"]

P = ParamSpec("P")
R = TypeVar("R")

#: How often a write is retried after a serialisation failure or deadlock.
RETRIES = 20


class StoredJournal(Journal):
    """The journal of a stored graph: rows in the store, new ones pending until
    the transaction writes them.  Only the pending records stay in memory."""

    __slots__ = ("_length", "_pending", "_store")

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store
        self._length = 0
        self._pending: list[tuple[int, Record]] = []

    def __len__(self) -> int:
        return self._length

    def append(self, op: str, args: Mapping[str, Any], at: datetime, changes: list[Any]) -> int:
        self._length += 1
        self._pending.append((self._length, flatten(op, args, at, changes)))
        return self._length

    def advance(self, seq: int) -> None:
        """Count entry ``seq`` (read from the store) as part of this journal."""
        self._length = seq

    def take_pending(self) -> list[tuple[int, Record]]:
        pending, self._pending = self._pending, []
        return pending

    def drop_pending(self) -> None:
        self._length -= len(self._pending)
        self._pending = []

    def next_seq(self) -> int:
        return self._length + 1

    def _record(self, seq: int) -> Record:
        if self._pending and seq >= self._pending[0][0]:
            return self._pending[seq - self._pending[0][0]][1]
        try:
            rows = list(self._store.journal(seq - 1, seq))
        except self._store.driver_errors as error:
            raise StoreError(f"cannot read {self._store.describe}: {error}") from error
        for _seq, text in rows:
            return decode_record(text)
        raise KeyError(f"journal entry {seq} is not in {self._store.describe}")

    def entry(self, seq: int) -> Entry:
        return Entry._from_record(seq, self._record(seq))

    def records(self, since: int = 0, upto: int | None = None) -> Iterator[tuple[int, Record]]:
        end = self._length if upto is None else min(upto, self._length)
        stored_end = self._pending[0][0] - 1 if self._pending else self._length
        store = self._store
        rows = store.journal(since, min(end, stored_end))
        while True:
            # journal() is read lazily, after the call that returned it: a
            # lost connection must still surface as StoreError.
            try:
                row = next(rows, None)
            except store.driver_errors as error:
                raise StoreError(f"cannot read {store.describe}: {error}") from error
            if row is None:
                break
            yield row[0], decode_record(row[1])
        for seq, record in self._pending:
            if since < seq <= end:
                yield seq, record

    def raw(self, seq: int) -> tuple[str, dict[str, Any], datetime]:
        return raw(self._record(seq))


def _utc_text(at: datetime) -> str:
    """``at`` in UTC as ISO text: the events table's sortable time column."""
    return (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat()


def decode_record(text: str) -> Record:
    record = codec.loads(text)
    if type(record) is not tuple:
        raise StoreError(f"journal row {text[:60]!r} is not a record this library writes")
    return record


def _stored(
    method: Callable[Concatenate[IdentityGraph, P], R],
    *,
    write: bool,
    events: bool = False,
) -> Callable[Concatenate[StoredGraph, P], R]:
    """``method`` as one write transaction (``write``), or answered from memory
    after catching up; ``events``: it needs the ledger's events loaded."""

    @functools.wraps(method)
    def run(self: StoredGraph, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if events and not self._events_wanted:
            self._want_events()
        call = functools.partial(method, self, *args, **kwargs)
        return self._write(call) if write else self._read(call)

    return run


class StoredGraph(IdentityGraph):
    """An identity graph kept in a :class:`~identity_graph.stores.base.Store`.

    Made by ``IdentityGraph.open(target, **config)``; behaves exactly as the
    in-memory graph (the contract suite runs the same tests on both).
    """

    def __init__(
        self,
        store: Store,
        *,
        checkpoint_every: int = 10_000,
        batch_size: int = 10_000,
        **config: Any,
    ) -> None:
        if checkpoint_every < 1 or batch_size < 1:
            raise ValueError("checkpoint_every and batch_size must be at least 1")
        self._store = store
        self._checkpoint_every = checkpoint_every
        self._batch_size = batch_size
        self._init_config = config
        self._depth = 0
        self._closed = False
        self._store_changed = False
        try:
            self._load()
        except BaseException:
            store.close()
            raise

    @classmethod
    def from_journal(cls, entries: Iterable[Entry], **config: Any) -> IdentityGraph:
        """Replay ``entries`` into a new *in-memory* graph; see
        :meth:`IdentityGraph.from_journal`."""
        return IdentityGraph.from_journal(entries, **config)

    @property
    def store(self) -> Store:
        """The store this graph reads and writes."""
        return self._store

    # ------------------------------------------------------------- loading

    def _reset(self) -> None:
        # Settings changed on the object since it was opened survive a reload.
        register_unknown = getattr(self, "register_unknown", None)
        IdentityGraph.__init__(self, **self._init_config)
        if register_unknown is not None:
            self.register_unknown = register_unknown
        self._core.journal = self._stored_journal = StoredJournal(self._store)
        self._ledger.added = []
        self._event_pos = 0
        self._refusal_pos = 0
        self._checkpoint_seq = 0
        # Events are loaded on the first call that needs them (events, kpis,
        # as_of, record…): a process that only resolves never pays for them.
        # A reload after a failed write keeps wanting them (the ledger is
        # empty again and _event_pos 0, so the catch-up reloads them all).
        self._events_wanted: bool = getattr(self, "_events_wanted", False)

    def _load(self, checkpoint: bool = True) -> None:
        """Fill memory from the store: checkpoint, journal tail, events, refusals."""
        self._reset()
        store = self._store
        try:
            store.begin(False)
            try:
                found = store.checkpoint()
                if found is not None and found[1] == checkpoints.FORMAT:
                    seq = checkpoints.restore(self._core, checkpoints.loads(found[2]))
                    self._stored_journal.advance(seq)
                    self._checkpoint_seq = seq
                self._catch_up()
            finally:
                store.rollback()  # a read transaction: nothing to keep
        except store.driver_errors as error:
            raise StoreError(f"cannot read {store.describe}: {error}") from error
        if (
            checkpoint
            and len(self._stored_journal) - self._checkpoint_seq >= self._checkpoint_every
        ):
            # A read-only store still opens; the next writer checkpoints.
            with contextlib.suppress(StoreError):
                self.checkpoint()

    def _catch_up(self) -> None:
        """Apply what other connections committed, up to one head read in one
        statement (rows below it are committed and never change)."""
        store = self._store
        head = store.head()
        journal = self._stored_journal
        if head.seq > len(journal):
            for seq, text in store.journal(len(journal), head.seq):
                op, args, at = raw(decode_record(text))
                self._core.apply(op, args, at, seq)
                journal.advance(seq)
        if self._events_wanted and head.events > self._event_pos:
            load = self._ledger.load
            for pos, anchor, body in store.events(self._event_pos, head.events):
                load(codec.loads_event(body), codec.loads_anchor(anchor))
                self._event_pos = pos
        if head.refusals > self._refusal_pos:
            log = self._guards.log
            for pos, when, what, reason, body in store.refusals(self._refusal_pos, head.refusals):
                details = codec.loads(body)
                log.append(
                    Refusal(
                        datetime.fromisoformat(when),
                        what,
                        details["args"],
                        reason,
                        details["error"],
                    )
                )
                self._refusal_pos = pos

    def _sync(self) -> None:
        if self._closed:
            raise StoreError(f"{self._store.describe} is closed")
        store = self._store
        try:
            if not store.changed() and not self._store_changed:
                return
            self._store_changed = False
            # No transaction: rows are append-only, and _catch_up reads only
            # rows up to the head it read in one statement, all committed.
            self._catch_up()
        except store.driver_errors as error:
            self._store_changed = True  # try again on the next call
            raise StoreError(f"cannot read {store.describe}: {error}") from error

    def _read(self, call: Callable[[], R]) -> R:
        """Run a read: catch up first (unless inside another call), and turn
        driver errors, even lazy ones, into StoreError."""
        if self._depth == 0:
            self._sync()
        self._depth += 1
        try:
            return call()
        except self._store.driver_errors as error:
            raise StoreError(f"cannot read {self._store.describe}: {error}") from error
        finally:
            self._depth -= 1

    # ------------------------------------------------------------- writing

    def _flush(self) -> None:
        """Write what the call appended in memory; the caller holds the write lock."""
        store = self._store
        pending = self._stored_journal.take_pending()
        if pending:
            store.append_journal(
                [(seq, rec[0], rec[1].isoformat(), codec.dumps(rec)) for seq, rec in pending]
            )
        added = self._ledger.added or []
        if added:
            dumps_anchor, dumps_event = codec.dumps_anchor, codec.dumps_event
            rows = []
            for event, anchor in added:
                at = event.at
                # Usually UTC already: then one isoformat serves both columns.
                text = at.isoformat() if at.tzinfo is UTC else None
                rows.append(
                    (
                        event.id or "",
                        event.type,
                        text or _utc_text(at),
                        dumps_anchor(anchor),
                        dumps_event(event, text),
                    )
                )
            store.append_events(rows)
        new = self._guards.log[self._refusal_count :]
        if new:
            store.append_refusals(
                [
                    (
                        r.at.isoformat(),
                        r.op,
                        r.reason,
                        codec.dumps({"args": r.args, "error": r.error}),
                    )
                    for r in new
                ]
            )
        if added or new:
            # Our own rows are committed with the lock held, so they follow
            # every row this process has loaded: skip past them.
            head = store.head()
            self._refusal_pos = head.refusals
            if self._events_wanted:
                self._event_pos = head.events
            added.clear()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction around the block: lock, catch up, (block),
        write the new rows, commit.  Any exception leaving the block rolls
        back and reloads memory; a driver error becomes ``StoreError`` (its
        ``__cause__`` the driver's error)."""
        store = self._store
        self._depth += 1
        committed = False
        try:
            store.begin(True)
            self._catch_up()
            self._refusal_count = len(self._guards.log)
            yield
            self._flush()
            store.commit()
            committed = True
        except store.driver_errors as error:
            self._abandon()
            raise StoreError(
                f"{store.describe}: the {what} failed and was rolled back: {error}"
            ) from error
        except BaseException:
            if not committed:
                self._abandon()
            raise
        finally:
            self._depth -= 1

    def _check_open(self, op: str) -> None:
        if self._closed:
            raise StoreError(f"{self._store.describe} is closed")
        self._writable(op)

    def _write(self, call: Callable[[], R]) -> R:
        if self._depth:
            return call()  # a call made by another call (register_unknown): one transaction
        self._check_open("write")
        for attempt in itertools.count(1):
            refused: Exception | None = None
            try:
                with self._transaction("write"):
                    try:
                        result = call()
                    except (IdentityGraphError, ValueError, TypeError) as error:
                        refused = error  # committed with its refusal, then raised
            except StoreError as error:
                cause = error.__cause__
                if cause is not None and self._store.retryable(cause) and attempt < RETRIES:
                    continue
                raise
            if refused is not None:
                raise refused
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _want_events(self) -> None:
        """Start keeping events in memory (from the next catch-up on; at once
        when inside a transaction, so a record in a batch sees them all)."""
        self._events_wanted = True
        self._store_changed = True
        if self._depth:
            self._catch_up()

    @contextlib.contextmanager
    def batch(self) -> Iterator[IdentityGraph]:
        """Several calls in one transaction: one lock, one commit (see
        :meth:`IdentityGraph.batch`).  Nested batches join the outer one.
        A serialisation failure at the commit is not retried here (the
        block cannot be run again for you): it raises ``StoreError``."""
        if self._depth:
            yield self
            return
        self._check_open("batch")
        with self._transaction("batch"):
            yield self

    def _abandon(self) -> None:
        """Roll back and reload: memory had run ahead of the store."""
        # The connection may be gone; the reload says so if it is.
        with contextlib.suppress(*self._store.driver_errors):
            self._store.rollback()
        self._load_after_failure()

    def _load_after_failure(self) -> None:
        try:
            self._load(checkpoint=False)
        except StoreError:
            # The next call must load everything again, not answer from the
            # empty state below (SQLite's data_version may not have moved).
            self._store_changed = True
            # Keep the object usable for the error to surface on the next call.
            self._reset()

    # ----------------------------------------------------- wrapped public API

    register = _stored(IdentityGraph.register, write=True)
    link = _stored(IdentityGraph.link, write=True)
    relink = _stored(IdentityGraph.relink, write=True)
    unlink = _stored(IdentityGraph.unlink, write=True)
    merge = _stored(IdentityGraph.merge, write=True)
    split = _stored(IdentityGraph.split, write=True)
    detach = _stored(IdentityGraph.detach, write=True)
    release = _stored(IdentityGraph.release, write=True)
    record = _stored(IdentityGraph.record, write=True, events=True)

    def record_many(self, events: Iterable[Any]) -> tuple[int, int]:
        """Record many events, one transaction per ``batch_size`` events."""
        if not self._events_wanted:
            self._want_events()
        recorded = unchanged = 0
        iterator = iter(events)
        while batch := list(itertools.islice(iterator, self._batch_size)):
            done = self._write(partial(IdentityGraph.record_many, self, batch))
            recorded += done[0]
            unchanged += done[1]
        return recorded, unchanged

    owner = _stored(IdentityGraph.owner, write=False)
    history = _stored(IdentityGraph.history, write=False)
    resolve = _stored(IdentityGraph.resolve, write=False)
    profile = _stored(IdentityGraph.profile, write=False)
    profiles = _stored(IdentityGraph.profiles, write=False)
    customers = _stored(IdentityGraph.customers, write=False)
    attributes = _stored(IdentityGraph.attributes, write=False)
    links = _stored(IdentityGraph.links, write=False)
    explain = _stored(IdentityGraph.explain, write=False)
    to_networkx = _stored(IdentityGraph.to_networkx, write=False)
    events = _stored(IdentityGraph.events, write=False, events=True)
    kpis = _stored(IdentityGraph.kpis, write=False, events=True)
    journal = _stored(IdentityGraph.journal, write=False)
    changes = _stored(IdentityGraph.changes, write=False)
    as_of = _stored(IdentityGraph.as_of, write=False, events=True)
    refusals = _stored(IdentityGraph.refusals, write=False)
    frozen_links = _stored(IdentityGraph.frozen_links, write=False)
    _state = _stored(IdentityGraph._state, write=False)

    @property
    def state(self) -> GraphState:
        """The graph's state, brought up to date with the store first."""
        return self._read(lambda: self._core)

    _check = _stored(IdentityGraph._check, write=False, events=True)

    # ------------------------------------------------------------ lifecycle

    def checkpoint(self) -> int:
        """Write the current state as the store's checkpoint; return its seq.

        Opening then replays only the entries after it.  O(state).
        """

        def save() -> int:
            seq = len(self._stored_journal)
            self._store.save_checkpoint((seq, checkpoints.FORMAT, checkpoints.dumps(self._core)))
            self._checkpoint_seq = seq
            return seq

        return self._write(save)

    def close(self) -> None:
        """Checkpoint if ``checkpoint_every`` entries were appended, then close."""
        if self._closed:
            return
        try:
            if len(self._stored_journal) - self._checkpoint_seq >= self._checkpoint_every:
                self.checkpoint()
        except StoreError:
            pass  # a checkpoint only saves start-up time; the journal is already durable
        finally:
            self._closed = True
            self._store.close()

    def __repr__(self) -> str:
        return f"<StoredGraph {self._store.describe} seq={len(self._stored_journal)}>"
