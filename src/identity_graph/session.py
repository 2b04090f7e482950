"""Sessions: what a graph does around each call to keep its store in step.

An :class:`IdentityGraph` *holds* a session.  :class:`Session` is the
in-memory twin and does nothing; :class:`StoreSession`, made by
``IdentityGraph.open(...)``, keeps the journal, events and refusals in a
:class:`~identity_graph.stores.base.Store`.  The graph's logic is not
repeated here: every call runs the in-memory core unchanged.  What this
module adds is *when* the store is read and written.

Opening
    Load the latest checkpoint (the state after entry ``seq``), replay the
    journal entries after it, then load events and refusals from their
    tables.  The cost is O(state + tail + events): no call is re-decided
    and nothing is replayed from entry 1 once a checkpoint exists.

    Nothing damaged is served.  Opening first checks that the journal's rows
    are exactly ``1..n`` (one count on the primary key), that ``n`` is the
    last seq the store recorded writing, and that the checkpoint stands
    within the journal and has this library's format (an older one is
    skipped); every journal row read (at opening, catching up or when
    ``journal()`` is asked) must carry its own seq and a matching checksum;
    every event row loaded must carry its number among the rows written and
    a matching checksum, and the rows loaded must be as many as the store
    recorded writing (``Head.events_written``);
    any row that cannot be read or applied, and a checkpoint that cannot be
    restored, raise :class:`~identity_graph.errors.StoreError` naming the
    table and the row, and saying what is wrong in the library's words
    (never a decoder's "not enough values to unpack").  Afterwards the
    session holds nothing (the next call loads again), so a damaged store
    keeps raising.

Every mutating call (``register`` … ``release``, ``record``)
    1. take the store's write lock (``BEGIN IMMEDIATE`` / an advisory lock);
    2. catch up: apply the entries, events and refusals other processes
       committed since this process last looked;
    3. run the core's call, which decides against that up-to-date state;
    4. write the new journal rows, events and refusals, and commit.

    A refused call (an ``IdentityGraphError``: ``LinkConflict``,
    ``LimitExceeded``, …) still commits its refusal, then raises; any other
    exception (a naive time, a wrong type) rolls the transaction back.
    If writing or committing fails (full disk,
    read-only file, lost connection) the transaction is rolled back, the
    in-memory state is reloaded from the store (it had run ahead of it) and
    :class:`~identity_graph.errors.StoreError` is raised: the store is as it
    was before the call.  Serialisation failures and deadlocks are retried.

Every read
    Catch up first (cheap when nothing changed: SQLite asks ``PRAGMA
    data_version``), then answer from memory.

``batch()`` runs several calls in one write transaction (the importers use
it); ``record_many`` writes one transaction per ``batch_size`` events.  A
checkpoint (:mod:`identity_graph.checkpoint`) is written by
``IdentityGraph.checkpoint()``, by ``close()`` when ``checkpoint_every``
entries were appended since the last one, and on opening when the replayed
tail was that long.

A graph object is not thread-safe (neither is the in-memory one); give
each thread or process its own ``IdentityGraph.open(...)``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import checkpoint as checkpoints
from . import codec
from .errors import IdentityGraphError, StoreError
from .events import Anchor, Event
from .guards import Refusal
from .journal import Entry, Journal, Record, flatten, raw
from .ledger import Ledger
from .state import GraphState

if TYPE_CHECKING:
    from .erasure import Erasure, EventFinder
    from .stores.base import CheckpointRow, Extent, Head, Store

__all__ = [
    "RETRIES",
    "Session",
    "StoreSession",
    "StoredJournal",
    "decode_record",
    "dumps_record",
    "encode_record",
]

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

    def append(
        self,
        op: str,
        args: Mapping[str, Any],
        at: datetime,
        changes: list[Any],
        short: Record | None = None,
    ) -> int:
        # The rows are the flat records: the short ones save memory only.
        self._length += 1
        self._pending.append((self._length, flatten(op, args, at, changes)))
        return self._length

    def advance(self, seq: int) -> None:
        """Count entry ``seq`` (read from the store) as part of this journal."""
        self._length = seq

    def rewrite(self, change: Callable[[Record], Record | None]) -> int:
        """Rewrite the pending records (the stored rows are the session's to
        rewrite, in the store).  O(pending)."""
        changed = 0
        for index, (seq, record) in enumerate(self._pending):
            new = change(record)
            if new is not None:
                self._pending[index] = (seq, new)
                changed += 1
        return changed

    def take_pending(self) -> list[tuple[int, Record]]:
        pending, self._pending = self._pending, []
        return pending

    def next_seq(self) -> int:
        return self._length + 1

    def _record(self, seq: int) -> Record:
        if self._pending and seq >= self._pending[0][0]:
            return self._pending[seq - self._pending[0][0]][1]
        try:
            rows = list(self._store.journal(seq - 1, seq))
        except self._store.driver_errors as error:
            raise StoreError(f"cannot read {self._store.describe}: {error}") from error
        for found, text in rows:
            if found == seq:
                return decode_record(seq, text, self._store.describe)
        raise StoreError(f"{self._store.describe}: ig_journal row {seq} is missing")

    def entry(self, seq: int) -> Entry:
        return Entry.from_record(seq, self._record(seq))

    def records(self, since: int = 0, upto: int | None = None) -> Iterator[tuple[int, Record]]:
        end = self._length if upto is None else min(upto, self._length)
        stored_end = self._pending[0][0] - 1 if self._pending else self._length
        store = self._store
        rows = store.journal(since, min(end, stored_end))
        expected = max(since, 0) + 1
        while True:
            # journal() is read lazily, after the call that returned it: a
            # lost connection must still surface as StoreError.
            try:
                row = next(rows, None)
            except store.driver_errors as error:
                raise StoreError(f"cannot read {store.describe}: {error}") from error
            if row is None:
                break
            if row[0] != expected:
                raise gap(store.describe, expected, row[0])
            expected += 1
            yield row[0], decode_record(row[0], row[1], store.describe)
        if expected <= min(end, stored_end):
            raise gap(store.describe, expected, None)
        for seq, record in self._pending:
            if since < seq <= end:
                yield seq, record

    def raw(self, seq: int) -> tuple[str, dict[str, Any], datetime]:
        return raw(self._record(seq))


# A journal row's text: ``{"s":[seq,crc,record]}``, where ``record`` is the
# codec's text of the flat record and ``crc`` its CRC-32.  The seq ties the
# row to its place (a row moved or copied to another seq is noticed), the
# checksum its content (a garbled byte is noticed; a garbled seq or crc
# fails one of the two comparisons).  Together about 1.5 us per row, on top
# of the ~9 us the codec spends decoding it.  Rows written before schema
# version 3 are the bare record and are read as they are.
_ROW_START = '{"s":['
_ROW_END = "]}"


def _crc(record: str) -> str:
    return str(zlib.crc32(record.encode("utf-8", "surrogatepass")))


def encode_record(seq: int, record: Record) -> str:
    """Journal row ``seq``'s text for ``record`` (see above).  O(size)."""
    text = dumps_record(record)
    return f"{_ROW_START}{seq},{_crc(text)},{text}{_ROW_END}"


_json_string = json.encoder.encode_basestring


def dumps_record(record: Record) -> str:
    """Exactly ``codec.dumps(record)``, several times faster: the items most
    records are made of (strings, link keys, times, whole numbers) are
    written here, the rest by the codec.  The text must not change: its
    checksum is stored with it, and erasures search it.  O(size)."""
    parts: list[str] = []
    append = parts.append
    for item in record:
        kind = type(item)
        if kind is str:
            append(_json_string(item))
        elif kind is tuple and len(item) == 2 and type(item[0]) is type(item[1]) is str:
            append(f'{{"t":[{_json_string(item[0])},{_json_string(item[1])}]}}')
        elif kind is datetime:
            append(f'{{"dt":"{item.isoformat()}"}}')
        elif kind is int:
            append(int.__repr__(item))
        else:
            append(codec.dumps(item))
    return '{"t":[' + ",".join(parts) + "]}"


# An event row's body: ``{"e":[n,crc,event]}``, where ``event`` is the
# codec's text of the event, ``n`` says it was the n-th event row written
# (so a row deleted, copied or moved among the others is noticed: rows are
# read in order and must count 1, 2, 3, ...) and ``crc`` is the CRC-32 of
# the anchor column, a newline and ``event`` (so an edited anchor or event
# is noticed).  The id, type and at columns repeat what the event says, for
# queries; the library never serves them, and ``verify`` compares them.
# Rows written before schema version 3 are the bare event, read unchecked.
_EVENT_START = '{"e":['


def encode_event(n: int, anchor: str, event: str) -> str:
    """The body of the ``n``-th event row written, for ``anchor``'s and
    ``event``'s texts (see above).  O(size)."""
    crc = _crc(anchor + "\n" + event)
    return f"{_EVENT_START}{n},{crc},{event}{_ROW_END}"


def event_text(body: str) -> str:
    """The event's text in a stored body, without the checks (their parts
    are read as they are).  O(size)."""
    if body.startswith(_EVENT_START):
        return body[len(_EVENT_START) : -len(_ROW_END)].split(",", 2)[-1]
    return body


class Unreadable(ValueError):
    """A stored row that fails one of this module's own checks; its message
    says which (unlike a decoder tripping over a row of another shape)."""


#: What each table's rows are, for the reason given when a row is not one.
_ROWS = {
    "ig_journal": "a journal row",
    "ig_events": "an event row",
    "ig_refusals": "a refusal row",
    "ig_checkpoints": "a checkpoint",
}


def shown(column: str, value: Any) -> str:
    """A stored value for a message: its column and the start of its text."""
    text = repr(value)
    return f"{column} {text if len(text) <= 60 else text[:59] + '…'}"


def culprit(*columns: tuple[str, Any, Callable[[Any], Any]]) -> str:
    """Of ``(column, stored value, decoder)``, the first column its decoder
    refuses, :func:`shown`; all of them if each decodes alone (they do not
    fit together).  Only on the error path: it decodes again."""
    for column, value, decode in columns:
        try:
            decode(value)
        except Exception:  # the decoder's own error was reported already
            return shown(column, value)
    return ", ".join(shown(column, value) for column, value, _decode in columns)


def damaged(
    where: str, table: str, row: int, error: BaseException, what: str | None = None
) -> StoreError:
    """The error for a stored row that cannot be read or applied.

    The reason is the library's own when it has one (a failed check, a link
    or a customer the graph refuses, zlib's account of bad compressed
    data); anything else is a decoder or the graph tripping over a value of
    another shape, whose words ("not enough values to unpack (expected 6,
    got 0)") name nothing the reader knows: then the reason says what the
    row is not and shows ``what`` (a column and its text)."""
    if isinstance(error, Unreadable | IdentityGraphError | zlib.error):
        reason = str(error)
    elif isinstance(error, checkpoints.Damaged):
        reason = f"it is not {_ROWS[table]} this library writes: {error}"
    else:
        reason = f"it is not {_ROWS[table]} this library writes"
        if what is None and isinstance(error, KeyError) and error.args:
            what = f"it has no field {error.args[0]!r}"
        if what is not None:
            reason = f"{reason}: {what}"
    return StoreError(f"{where}: {table} row {row} is damaged: {reason}")


def gap(where: str, expected: int, found: int | None) -> StoreError:
    """The error for a journal whose rows skip ``expected``."""
    after = "the journal ends there" if found is None else f"the next row is {found}"
    return StoreError(f"{where}: ig_journal row {expected} is missing ({after})")


def _envelope(text: str, start: str) -> tuple[str, str, str]:
    """The number, checksum and content of a checked row's text
    (``start + "n,crc,content" + end``); ``Unreadable`` if it is cut short."""
    parts = text[len(start) : -len(_ROW_END)].split(",", 2)
    if len(parts) != 3 or not text.endswith(_ROW_END):
        raise Unreadable("its text is cut short")
    return parts[0], parts[1], parts[2]


def decode_record(seq: int, text: str, where: str = "store") -> Record:
    """The record of journal row ``seq``; ``StoreError`` naming the row if its
    text is not one this library writes, carries another seq, or fails its
    checksum.  O(size)."""
    stored = text
    try:
        if text.startswith(_ROW_START):
            stored_seq, crc, text = _envelope(text, _ROW_START)
            if stored_seq != str(seq):
                raise Unreadable(f"it holds entry {stored_seq[:20]}")
            if crc != _crc(text):
                raise Unreadable("its checksum does not match its content")
        record = codec.loads(text)
        if (
            type(record) is not tuple
            or len(record) < 3
            or type(record[0]) is not str
            or type(record[1]) is not datetime
            or type(record[2]) is not int
            or len(record) < 3 + 2 * record[2]  # its arguments must pair up
        ):
            raise ValueError("not a record")  # reported with the row's text
    except Exception as error:  # whatever the decoder trips on, the row is at fault
        raise damaged(where, "ig_journal", seq, error, shown("record", stored)) from error
    return record


# An erased event's row stays in place, so the rows still count 1, 2, 3, ...
# and the store's count of rows written still holds: its body becomes
# ``{"x":[n]}`` (``{"x":[]}`` for a row written before numbers were), its
# anchor, type and time empty, and its id the event id's keyed hash, which
# keeps the id column unique and holds nothing readable.
_TOMBSTONE_START = '{"x":['


def tombstone(body: str) -> str:
    """The body that replaces an erased event's ``body``: its number kept."""
    if body.startswith(_EVENT_START):
        number = body[len(_EVENT_START) :].split(",", 1)[0]
        return f"{_TOMBSTONE_START}{number}{_ROW_END}"
    if body.startswith(_TOMBSTONE_START):
        return body
    return f"{_TOMBSTONE_START}{_ROW_END}"


def load_event_row(
    ledger: Ledger,
    pos: int,
    n: int,
    anchor: str,
    body: str,
    anchors: dict[str, Anchor],
    where: str = "store",
) -> None:
    """File event row ``pos``, expected to be the ``n``-th row written, in
    ``ledger`` (nothing for an erased event's row); ``StoreError`` naming the
    row if its text is not one this library writes, carries another number,
    or fails its checksum.  A checked row is filed by its text, decoded when
    first read (its checksum vouches for the text the library wrote); an
    older row without a checksum is decoded now.  ``anchors`` caches the
    anchors read so far by their text.  O(size of its head), O(size) for an
    older row."""
    text = body
    if body.startswith(_TOMBSTONE_START):
        number = body[len(_TOMBSTONE_START) : -len(_ROW_END)]
        if not body.endswith(_ROW_END) or number not in ("", str(n)) or anchor != "":
            problem = Unreadable(f"it is not the row of an erased event {n}")
            raise damaged(where, "ig_events", pos, problem, shown("body", body))
        return
    try:
        key = anchors.get(anchor)
        if key is None:
            key = anchors[anchor] = codec.loads_anchor(anchor)
        if body.startswith(_EVENT_START):
            number, crc, text = _envelope(body, _EVENT_START)
            if crc != _crc(anchor + "\n" + text):
                raise Unreadable("its checksum does not match its anchor and body")
            if number != str(n):
                raise Unreadable(
                    f"it was written as event row {number[:20]}, but is event row {n} in the"
                    " table's order: rows were deleted, copied or moved"
                )
            ledger.load_text(text, key)
        else:
            ledger.load(codec.loads_event(text), key)
    except Exception as error:  # whatever the decoder trips on, the row is at fault
        what = culprit(("body", body, _loads_event), ("anchor", anchor, codec.loads_anchor))
        raise damaged(where, "ig_events", pos, error, what) from error


def _loads_event(body: str) -> Event:
    return codec.loads_event(event_text(body))


def _compare(
    where: str, table: str, row: int, source: str, columns: tuple[tuple[str, Any, str], ...]
) -> None:
    """``StoreError`` naming the row if a column's value is not the one its
    ``source`` (its record, its event) gives."""
    for column, value, expected in columns:
        if value != expected:
            problem = Unreadable(f"{shown(column, value)}, but its {source} says {expected!r}")
            raise damaged(where, table, row, problem)


def decode_refusal(row: tuple[int, str, str, str, str], where: str = "store") -> Refusal:
    """The refusal of one ``(pos, at, op, reason, body)`` row; ``StoreError``
    naming the row if it is not one this library writes.  O(size)."""
    pos, when, op, reason, body = row
    try:
        args, name = _refused(body)
        return Refusal(datetime.fromisoformat(when), op, args, reason, name)
    except Exception as error:  # whatever the decoder trips on, the row is at fault
        what = culprit(("at", when, datetime.fromisoformat), ("body", body, _refused))
        raise damaged(where, "ig_refusals", pos, error, what) from error


def _refused(body: str) -> tuple[Any, str]:
    """A refusal row's body: what the refused call was given, and its error's name."""
    details = codec.loads(body)
    return details["args"], details["error"]


class _Rewritten(Exception):
    """Raised inside a catch-up: another process erased someone since this
    memory was loaded (the store's erasure epoch moved), so rows it was
    built from were rewritten; the caller loads everything again."""


class Session:
    """The session of an in-memory graph: nothing to load, catch up or write.

    Each method states what :class:`StoreSession` does instead.
    """

    #: Whether calls go through :meth:`read` and :meth:`write` at all.
    stored = False

    @property
    def store(self) -> Store | None:
        """The store, if any."""
        return None

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction is open: a call made now joins it."""
        return False

    def read(self, call: Callable[[], R], events: bool = False) -> R:
        """Answer ``call`` (a store session catches up first).  O(1) here."""
        return call()

    def write(self, call: Callable[[], R], events: bool = False) -> R:
        """Run ``call`` (a store session: in one write transaction).  O(1) here."""
        return call()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several calls as one unit (a store session: one transaction)."""
        yield

    def chunks(self) -> int | None:
        """How many events ``record_many`` writes per transaction (None: all at once)."""
        return None

    def event_finder(self) -> EventFinder | None:
        """How an erasure finds the events that go with a person: None when
        the ledger in memory holds them all (here, always)."""
        return None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside the block see one state of the store (none here)."""
        yield

    def erase(self, plan: Erasure, state: GraphState, ledger: Ledger) -> None:
        """Remove what ``plan`` erases from the journal's past entries, the
        ledger and the refusal log (a store session: from the store's rows
        first).  O(journal + erased events + refusals)."""
        state.journal.rewrite(plan.record)
        ledger.erase(plan.events)
        log = state.guards.log
        log[:] = [refusal for refusal in log if not plan.names(refusal)]

    def close(self) -> None:
        """Release the store (none here)."""

    def verify(self) -> None:
        """Check the store's pages and read back every row (none here)."""

    def describe(self) -> str:
        return "memory"

    def unreplayable(self, seq: int, record: Record, error: Exception) -> Exception:
        """What to raise when journal entry ``seq`` does not replay: in
        memory the error itself (the graph wrote the entry: a bug)."""
        return error


class StoreSession(Session):
    """A graph's journal, events and refusals kept in a store.

    It loads ``state`` and ``ledger`` (both empty) from ``store`` at once;
    both stay owned by the graph, which this session never calls.
    """

    stored = True

    def __init__(
        self,
        store: Store,
        state: GraphState,
        ledger: Ledger,
        *,
        checkpoint_every: int = 10_000,
        batch_size: int = 10_000,
        on_reset: Callable[[], object] | None = None,
    ) -> None:
        if checkpoint_every < 1 or batch_size < 1:
            raise ValueError("checkpoint_every and batch_size must be at least 1")
        #: Called whenever memory is emptied to load again (another process
        #: erased someone, or a write failed): the graph drops its caches.
        self._on_reset = on_reset
        self._store = store
        self._state = state
        self._ledger = ledger
        self._checkpoint_every = checkpoint_every
        self._batch_size = batch_size
        self._in_transaction = False
        self._in_snapshot = False
        self._closed = False
        self._store_changed = False
        # Events are loaded on the first call that needs them (events, kpis,
        # as_of, record…): a process that only resolves never pays for them.
        self._events_wanted = False
        self._load()

    @property
    def store(self) -> Store:
        return self._store

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def describe(self) -> str:
        return self._store.describe

    def unreplayable(self, seq: int, record: Record, error: Exception) -> Exception:
        """A stored entry that decodes but does not replay: its row is damaged."""
        return damaged(self._store.describe, "ig_journal", seq, error, shown("record", record))

    def chunks(self) -> int | None:
        return self._batch_size

    # ------------------------------------------------------------- loading

    def _reset(self) -> None:
        """Empty the state and ledger, to load them again from the store."""
        self._journal = StoredJournal(self._store)
        self._state.clear(self._journal)
        self._ledger.clear()
        self._ledger.added = []
        self._event_pos = 0
        self._event_count = 0  # event rows loaded (or written) so far
        self._refusal_pos = 0
        self._refusal_count = 0
        self._checkpoint_seq = 0
        # The store's erasure epoch when this memory was loaded (None: not
        # yet); another value means a process erased someone since, and
        # rows this memory was built from were rewritten: load again.
        self._epoch: int | None = None
        # Owed by an erasure in the open transaction: a checkpoint and a new
        # epoch before the commit, clearing the freed space after it.
        self._erased = False
        # True while an erasure writes its rows: a failure then (even one a
        # caller catches inside a batch) must roll the transaction back.
        self._erasing = False
        if self._on_reset is not None:
            self._on_reset()  # caches of values the rows held (a link's spelling)

    def _load(self, checkpoint: bool = True) -> None:
        """Fill memory from the store: checkpoint, journal tail, events, refusals.

        The journal's extent is checked first (gap-free, not cut short, the
        checkpoint within it): one count on the primary key, about 12 ms for
        100,000 rows in SQLite."""
        self._reset()
        store = self._store
        try:
            store.begin(False)
            try:
                self._fill()
            finally:
                store.rollback()  # a read transaction: nothing to keep
        except store.driver_errors as error:
            self._reset()
            raise StoreError(f"cannot read {store.describe}: {error}") from error
        except BaseException:
            self._reset()  # never serve what was loaded before the damage
            raise
        tail = len(self._journal) - self._checkpoint_seq
        if checkpoint and tail >= self._checkpoint_every:
            # A read-only store still opens; the next writer checkpoints.
            with contextlib.suppress(StoreError):
                self.checkpoint()

    def _fill(self) -> None:
        """Load the (reset) memory from the store, inside the caller's
        transaction: the erasure key, the checkpoint, then the rest."""
        store = self._store
        key = store.erasure_key()
        if key is not None:
            self._state.suppression.secret = key
        extent = store.extent()
        self._check_extent(extent)
        found = store.checkpoint()
        if found is not None and found[0] > extent.last:
            raise StoreError(
                f"{store.describe}: ig_checkpoints row {found[0]} is the state after"
                f" entry {found[0]}, but the journal ends at row {extent.last}"
            )
        if found is not None and found[1] in checkpoints.READABLE:
            self._restore(found)
        elif found is not None and found[1] not in checkpoints.OLDER:
            older = ", ".join(map(str, checkpoints.OLDER))
            raise StoreError(
                f"{store.describe}: ig_checkpoints row {found[0]} is damaged: format"
                f" {found[1]!r} is not one this library reads (it writes format"
                f" {checkpoints.FORMAT}, and skips the older {older} by replaying the"
                " journal), unless a newer identity_graph wrote it (deleting that row"
                " makes the next open replay the whole journal)"
            )
        self._catch_up()

    def _check_extent(self, extent: Extent) -> None:
        """Raise ``StoreError`` naming the first missing journal row, if any."""
        where = self._store.describe
        if extent.rows != extent.last or (extent.rows and extent.first != 1):
            # Only on damage: find the first missing row by reading the seqs.
            expected = 1
            for seq, _text in self._store.journal(0):
                if seq != expected:
                    raise gap(where, expected, seq)
                expected += 1
            raise StoreError(f"{where}: ig_journal changed while it was read")
        if extent.written is None or extent.written == extent.last:
            return
        if extent.written > extent.last:
            raise StoreError(
                f"{where}: ig_journal ends at row {extent.last}, but rows up to"
                f" {extent.written} were written (ig_meta row journal_seq):"
                f" row {extent.last + 1} is missing"
            )
        # Every write sets journal_seq to its last row in the same
        # transaction: rows beyond it were not appended by this library.
        raise StoreError(
            f"{where}: ig_meta row journal_seq says the last journal row written is"
            f" {extent.written}, but ig_journal goes on to row {extent.last}: the store is damaged"
        )

    def _restore(self, found: CheckpointRow) -> None:
        """Load checkpoint row ``found``; ``StoreError`` naming it if it
        cannot be read.  O(state)."""
        seq = found[0]
        try:
            saved = checkpoints.loads(found[2])
            if type(saved) is not dict:
                raise ValueError("not an object")
            if saved.get("seq") != seq:
                raise Unreadable(f"it says it stands after entry {saved.get('seq')!r}")
            if saved.get("format") != found[1]:
                raise Unreadable(f"it says it has format {saved.get('format')!r}")
            checkpoints.restore(self._state, saved)
        except Exception as error:  # zlib, JSON, a missing field: the row is at fault
            text = isinstance(error, json.JSONDecodeError | UnicodeDecodeError)
            what = "its content is not JSON" if text else None
            problem = damaged(self._store.describe, "ig_checkpoints", seq, error, what)
            raise StoreError(
                f"{problem} (deleting that row makes the next open replay the whole journal)"
            ) from error
        self._journal.advance(seq)
        self._checkpoint_seq = seq

    def _catch_up(self) -> None:
        """Apply what other connections committed, up to one head read in one
        statement (rows below it are committed and never change).  Journal
        rows must continue without a gap; a row that cannot be read or
        applied raises ``StoreError`` naming its table and row."""
        store = self._store
        where = store.describe
        head = store.head()
        if self._epoch is None:
            self._epoch = head.epoch
        elif head.epoch != self._epoch:
            raise _Rewritten
        journal = self._journal
        if head.seq > len(journal):
            apply = self._state.apply
            for seq, text in store.journal(len(journal), head.seq):
                if seq != len(journal) + 1:
                    raise gap(where, len(journal) + 1, seq)
                op, args, at = raw(decode_record(seq, text, where))
                try:
                    apply(op, args, at, seq)
                except Exception as error:  # a record that decodes but does not fit
                    raise damaged(where, "ig_journal", seq, error, shown("record", text)) from error
                journal.advance(seq)
        if self._events_wanted and head.events > self._event_pos:
            ledger = self._ledger
            anchors: dict[str, Anchor] = {}
            for pos, anchor, body in store.events(self._event_pos, head.events):
                load_event_row(ledger, pos, self._event_count + 1, anchor, body, anchors, where)
                self._event_pos = pos
                self._event_count += 1
        if self._events_wanted and head.events_written not in (None, self._event_count):
            raise self._events_missing(head.events_written)
        if head.refusals > self._refusal_pos:
            log = self._state.guards.log
            for row in store.refusals(self._refusal_pos, head.refusals):
                log.append(decode_refusal(row, where))
                self._refusal_pos = row[0]

    def _events_missing(self, written: int | None) -> StoreError:
        """The error for an event table of another length than written."""
        where, rows = self._store.describe, self._event_count
        if written is not None and written > rows:
            lost = "row written is" if written == rows + 1 else f"{written - rows} rows written are"
            return StoreError(
                f"{where}: ig_events holds {rows} rows, but {written} were written (ig_meta row"
                f" event_count): the last {lost} missing"
            )
        # Every write adds its count in the same transaction: rows beyond
        # it were not written by this library.
        return StoreError(
            f"{where}: ig_meta row event_count says {written} event rows were written, but"
            f" ig_events holds {rows}: the store is damaged"
        )

    def _sync(self) -> None:
        store = self._store
        try:
            if not store.changed() and not self._store_changed:
                return
            self._store_changed = False
            if self._up_to(store.head()):
                return  # one statement when nothing changed (PostgreSQL's usual read)
            # One read transaction: the head and the rows read after it come
            # from one snapshot, so an erasure committed meanwhile (which
            # rewrites rows) is seen whole or not at all.
            store.begin(False)
            try:
                self._catch_up()
            except _Rewritten:
                store.rollback()
                self._load(checkpoint=False)
            finally:
                store.rollback()
        except store.driver_errors as error:
            self._store_changed = True  # try again on the next call
            raise StoreError(f"cannot read {store.describe}: {error}") from error
        except StoreError:
            # A damaged row: drop what was loaded, so no later call answers
            # from it; the next one loads again (and raises while it lasts).
            self._reset()
            self._store_changed = True
            raise

    def _up_to(self, head: Head) -> bool:
        """Whether memory already holds everything ``head`` says the store
        has (no new row, no erasure since).  O(1)."""
        return (
            head.epoch == self._epoch
            and head.seq == len(self._journal)
            and head.refusals <= self._refusal_pos
            and (not self._events_wanted or head.events <= self._event_pos)
        )

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads of stored rows inside the block (a replay of the journal for
        ``as_of`` or ``verify``, the change feed) see one state of the store,
        the one memory was loaded from: an erasure another process commits
        meanwhile rewrites rows, and a replay must not mix rows from before
        and after it.  Memory loads again first if one was committed since."""
        self._check_open()
        if self._in_transaction or self._in_snapshot:
            yield
            return
        store = self._store
        try:
            for _attempt in range(RETRIES):
                store.begin(False)
                if store.head().epoch == self._epoch:
                    break
                store.rollback()
                self._load(checkpoint=False)
            else:  # pragma: no cover - erasures committed faster than a load
                raise StoreError(f"{store.describe}: erasures kept rewriting rows while read")
        except store.driver_errors as error:
            raise StoreError(f"cannot read {store.describe}: {error}") from error
        self._in_snapshot = True
        try:
            yield
        finally:
            self._in_snapshot = False
            with contextlib.suppress(*store.driver_errors):
                store.rollback()

    def _want_events(self) -> None:
        """Start keeping events in memory (from the next catch-up on; at once
        inside a transaction, so a record in a batch sees them all)."""
        self._events_wanted = True
        self._store_changed = True
        if self._in_transaction:
            self._catch_up()

    def read(self, call: Callable[[], R], events: bool = False) -> R:
        """Catch up (unless inside a transaction, which did), then answer
        ``call``; driver errors, even lazy ones, become ``StoreError``."""
        self._check_open()
        if events and not self._events_wanted:
            self._want_events()
        if not self._in_transaction and not self._in_snapshot:
            self._sync()
        try:
            return call()
        except self._store.driver_errors as error:
            raise StoreError(f"cannot read {self._store.describe}: {error}") from error

    # ------------------------------------------------------------- writing

    def _flush(self) -> None:
        """Write what the calls appended in memory; the caller holds the write lock."""
        store = self._store
        pending = self._journal.take_pending()
        if pending:
            store.append_journal(
                [(seq, rec[0], rec[1].isoformat(), encode_record(seq, rec)) for seq, rec in pending]
            )
        added = self._ledger.added or []
        if added:
            dumps_anchor, dumps_event = codec.dumps_anchor, codec.dumps_event
            anchors: dict[object, str] = {}  # a batch files many events per anchor
            rows = []
            # Events are added only by calls that load them first, so the
            # rows in the store are counted (the rows' numbers go on from it).
            assert self._events_wanted, "events written before they were loaded"
            for event, anchor in added:
                at = event.at
                # Usually UTC already: then one isoformat serves both columns.
                text = at.isoformat() if at.tzinfo is UTC else None
                key = anchors.get(anchor)
                if key is None:
                    key = anchors[anchor] = dumps_anchor(anchor)
                self._event_count += 1
                rows.append(
                    (
                        event.id or "",
                        event.type,
                        text or at.astimezone(UTC).isoformat(),
                        key,
                        encode_event(self._event_count, key, dumps_event(event, text)),
                    )
                )
            store.append_events(rows)
        new = self._state.guards.log[self._refusal_count :]
        if new:
            store.append_refusals(
                [
                    (
                        r.at.isoformat(),
                        r.op,
                        r.reason,
                        codec.dumps_refused({"args": r.args, "error": r.error}),
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
        self._refusal_count = len(self._state.guards.log)

    def _finish_erasures(self) -> None:
        """Before the commit of a transaction that erased (once, however
        many people it erased): the old checkpoint holds the erased values,
        so a new one replaces it, and the epoch moves on so other processes
        know that rows they loaded were rewritten."""
        if self._erasing:
            # An erasure that did not finish (its caller caught the error and
            # went on): nothing of it may be committed.
            raise StoreError(
                f"{self._store.describe}: an erasure failed before it finished; the whole"
                " transaction was rolled back"
            )
        if self._erased:
            store = self._store
            seq = len(self._journal)
            store.save_checkpoint((seq, checkpoints.FORMAT, checkpoints.dumps(self._state)))
            self._checkpoint_seq = seq
            self._epoch = store.bump_epoch()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction around the block: lock, catch up, (block),
        write the new rows, commit.  Any exception leaving the block rolls
        back and reloads memory; a driver error becomes ``StoreError`` (its
        ``__cause__`` the driver's error)."""
        store = self._store
        self._in_transaction = True
        committed = False
        before: tuple[int, int, int] | None = None  # memory as the store has it
        self._erased = False
        self._erasing = False
        try:
            store.begin(True)
            try:
                self._catch_up()
            except _Rewritten:  # an erasure since: load again (the lock is held)
                self._reset()
                self._fill()
            self._refusal_count = len(self._state.guards.log)
            before = self._memory_mark()
            yield
            self._flush()
            self._finish_erasures()
            store.commit()
            committed = True
            if self._erased:
                self._erased = False
                self._scrub()
        except store.driver_errors as error:
            self._abandon()
            raise StoreError(
                f"{store.describe}: the {what} failed and was rolled back: {error}"
            ) from error
        except BaseException:
            if not committed:
                if before is not None and self._memory_mark() == before:
                    # Refused at the door (a naive time, a wrong type): memory
                    # is as the store has it, so a rollback is all that is owed.
                    with contextlib.suppress(*store.driver_errors):
                        store.rollback()
                else:
                    self._abandon()
            raise
        finally:
            self._in_transaction = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._store.describe} is closed")

    def write(self, call: Callable[[], R], events: bool = False) -> R:
        """Run ``call`` in one write transaction, retried on a serialisation
        failure; inside a batch, as part of the batch's transaction.

        A refusal (an ``IdentityGraphError``) is committed with its log entry,
        then raised; any other exception rolls the transaction back."""
        self._check_open()
        if events and not self._events_wanted:
            self._want_events()
        if self._in_transaction:
            return call()
        for attempt in itertools.count(1):
            refused: IdentityGraphError | None = None
            try:
                with self._transaction("write"):
                    try:
                        result = call()
                    except StoreError:
                        raise  # damage found, or a failed erasure: roll back
                    except IdentityGraphError as error:
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

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several calls in one transaction; a nested batch joins the outer one.
        A serialisation failure at the commit is not retried here (the block
        cannot be run again for you): it raises ``StoreError``."""
        self._check_open()
        if self._in_transaction:
            yield
            return
        with self._transaction("batch"):
            yield

    def _memory_mark(self) -> tuple[int, int, int]:
        """What a call can change in memory: operations applied, events
        filed, refusals logged.  Equal before and after: nothing ran ahead."""
        state = self._state
        return state.applied, len(self._ledger), len(state.guards.log)

    def _abandon(self) -> None:
        """Roll back and reload: memory had run ahead of the store."""
        # The connection may be gone; the reload says so if it is.
        with contextlib.suppress(*self._store.driver_errors):
            self._store.rollback()
        try:
            self._load(checkpoint=False)
        except StoreError:
            # The next call must load everything again, not answer from the
            # empty state below (SQLite's data_version may not have moved).
            self._store_changed = True
            # Keep the object usable for the error to surface on the next call.
            self._reset()

    # ------------------------------------------------------------ lifecycle

    def verify(self) -> None:
        """The store's thorough page check (SQLite: ``PRAGMA
        integrity_check``), then everything loaded again with every check,
        events included, and the columns kept for queries compared with the
        rows they repeat.  The journal rows before the checkpoint are
        replayed by the caller (``IdentityGraph.verify``).  O(store)."""
        self._check_open()
        store = self._store
        try:
            store.verify(full=True)
        except store.driver_errors as error:
            raise StoreError(f"cannot read {store.describe}: {error}") from error
        self._events_wanted = True
        self._load(checkpoint=False)
        try:
            self._check_columns()
        except store.driver_errors as error:
            raise StoreError(f"cannot read {store.describe}: {error}") from error

    def _check_columns(self) -> None:
        """``StoreError`` naming the first journal row whose ``op`` or ``at``
        column, or event row whose ``id``, ``type`` or ``at`` column, says
        other than its record or event.  The library never serves these
        columns (they are there for SQL queries), so a mismatch misleads
        only those queries; but it is damage all the same.  O(store)."""
        where = self._store.describe
        for seq, op, at, text in self._store.journal_columns():
            record = decode_record(seq, text, where)
            said = (("op", op, record[0]), ("at", at, record[1].isoformat()))
            _compare(where, "ig_journal", seq, "record", said)
        for pos, event_id, kind, at, body in self._store.event_columns():
            if body.startswith(_TOMBSTONE_START):
                said = (("type", kind, ""), ("at", at, ""))
                _compare(where, "ig_events", pos, "erased row", said)
                continue
            try:
                event = _loads_event(body)
            except Exception as error:  # the load above read it: changed since
                raise damaged(where, "ig_events", pos, error, shown("body", body)) from error
            utc = event.at.astimezone(UTC).isoformat()
            _compare(
                where,
                "ig_events",
                pos,
                "event",
                (("id", event_id, event.id or ""), ("type", kind, event.type), ("at", at, utc)),
            )

    def event_finder(self) -> EventFinder | None:
        """None when this process keeps the events in memory; otherwise one
        search of the store's event rows (by anchor, and by the erased
        values' text), so a process that never read events does not load
        them all to erase one person's.  O(event rows), in the database."""
        if self._events_wanted:
            return None
        return self._find_events

    def _find_events(
        self, anchors: list[Anchor], values: list[str]
    ) -> Iterator[tuple[Event, Anchor]]:
        store = self._store
        where = store.describe
        texts = [codec.dumps_anchor(anchor) for anchor in anchors]
        needles = [json.dumps(value, ensure_ascii=False) for value in values]
        for pos, anchor, body in store.events_matching(texts, needles):
            if body.startswith(_TOMBSTONE_START):
                continue  # erased before
            try:
                yield _loads_event(body), codec.loads_anchor(anchor)
            except Exception as error:  # whatever the decoder trips on, the row is at fault
                what = culprit(("body", body, _loads_event), ("anchor", anchor, codec.loads_anchor))
                raise damaged(where, "ig_events", pos, error, what) from error

    def erase(self, plan: Erasure, state: GraphState, ledger: Ledger) -> None:
        """Remove what ``plan`` erases from the store's rows, in the open write
        transaction, then from memory: journal rows rewritten with the
        keyed hashes, event rows replaced by erased rows, refusal rows
        deleted.  Every row is read and checked before the first write.  A
        new checkpoint and epoch follow before the commit (once per
        transaction), and the freed space is cleared after it.  O(rows
        that hold the values' text + the person's events + refusals)."""
        assert self._in_transaction, "an erasure runs in a write transaction"
        store = self._store
        where = store.describe
        self._flush()  # what this transaction did so far, into the store first
        # The hashes in the plan were made with memory's secret: the store
        # keeps it from the first erasure on, so a graph opened later (or
        # another process, which loads again at the new epoch) makes the same
        # hashes and still recognises the suppressed values.
        key = store.erasure_key()
        if key is not None and key != state.suppression.secret:
            raise StoreError(
                f"{where}: ig_meta row erasure_key changed while the graph was open;"
                " nothing was erased"
            )
        rows = []
        exact, folded = plan.needles()
        for seq, text in store.journal_mentioning(exact, folded):
            record = plan.record(decode_record(seq, text, where))
            if record is not None:
                rows.append((seq, encode_record(seq, record)))
        found = store.events_by_id(list(plan.events)) if plan.events else []
        doomed = []
        for row in store.refusals(0, store.head().refusals):
            if plan.names(decode_refusal(row, where)):
                doomed.append(row[0])
        # Everything read: now the writes, all or (on any failure) none.
        self._erasing = True
        store.erasing()
        if key is None:
            store.set_erasure_key(state.suppression.secret)
        store.rewrite_journal(rows)
        store.replace_events(
            [
                (pos, (plan.events[event_id], "", "", "", tombstone(body)))
                for pos, event_id, body in found
            ]
        )
        store.delete_refusals(doomed)
        super().erase(plan, state, ledger)
        self._refusal_count = len(state.guards.log)
        self._erased = True
        self._erasing = False

    def _scrub(self) -> None:
        """Clear the space an erasure freed (after its commit)."""
        store = self._store
        try:
            store.scrub()
        except store.driver_errors as error:
            raise StoreError(
                f"{store.describe}: the erasure was committed, but clearing the space it freed"
                f" failed: {error}; the erased values are gone from every table, and may stay"
                " in free pages until the store is vacuumed (see docs/erasure.md)"
            ) from error

    def checkpoint(self) -> int:
        """Write the state as the store's checkpoint, in a write transaction
        (which first catches up); return the seq it stands at.  O(state)."""

        def save() -> int:
            at = len(self._journal)
            self._store.save_checkpoint((at, checkpoints.FORMAT, checkpoints.dumps(self._state)))
            self._checkpoint_seq = at
            return at

        return self.write(save)

    def close(self) -> None:
        """Checkpoint if ``checkpoint_every`` entries were appended, then close."""
        if self._closed:
            return
        try:
            if len(self._journal) - self._checkpoint_seq >= self._checkpoint_every:
                self.checkpoint()
        except StoreError:
            pass  # a checkpoint only saves start-up time; the journal is already durable
        finally:
            self._closed = True
            self._store.close()
