"""The event ledger: every event attributed to the profile that owned its identity
at the time of the event.

An event is stored once, under its **anchor** — its customer id, or else its
highest-priority link.  Attribution is *never* stored: ``events(profile)``
asks the ownership index which anchors can belong to the profile and over
which time spans, and reads only those slices.  So merges, splits, relinks
and late-arriving change points re-attribute events without rewriting a
single one, and a split gives each part back exactly its own events.

How events are kept, for memory:

- **by id**, each as its ``Event``, or — for a row loaded from a store — as
  the row's text (:func:`~identity_graph.codec.dumps_event`), decoded into
  an ``Event`` the first time it is read and kept so from then on.  Opening
  a store of millions of events builds no ``Event`` at all;
- **per anchor, by time**: a bare ``(at, id)`` tuple for an anchor with one
  event, else two columns (times as ``array('q')`` of microseconds since
  1970 UTC, ids as a list) kept sorted by ``(at, id)`` *lazily*: filing
  appends, and the first read after an out-of-order append sorts once
  (timsort is linear on a sorted run followed by appended ones);
- the purchases' columns (:class:`~identity_graph.purchases.PurchaseColumns`),
  read from the events on the first access of :attr:`Ledger.purchases`.

The ledger only stores and reads: the facade has checked each event
(:func:`identity_graph.events.prepare`), registered its customer and logged
any refusal before the ledger sees it.

Costs: filing is O(1) amortised (``add_many`` groups by anchor first); a
profile query is O(anchors × spans × log n + result), plus a sort of each
anchor read whose events arrived out of order since its last read (O(n log
n), about O(n) when they arrived nearly in order), never a scan of the ledger.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import TypeAlias

from . import codec
from .errors import DuplicateEvent
from .events import Anchor, Event, FrozenMap, as_decimal, same_event
from .ids import CustomerId, Link, LinkKey
from .purchases import PurchaseColumns
from .state import Ownership
from .times import micros

__all__ = ["Anchor", "Event", "FrozenMap", "Ledger", "as_decimal", "micros"]


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two lower bounds (None is the open past)."""
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two upper bounds (None is the open future)."""
    return b if a is None else a if b is None else min(a, b)


class _Times:
    """The events of an anchor with two or more: ``at`` (µs UTC) and ``ids``
    side by side, sorted by ``(at, id)`` unless ``unsorted``."""

    __slots__ = ("at", "ids", "unsorted")

    def __init__(self, at: array[int], ids: list[str], unsorted: bool) -> None:
        self.at = at
        self.ids = ids
        self.unsorted = unsorted

    def append(self, at: int, event_id: str) -> None:
        """Append one event, noting whether it breaks the order.  O(1) amortised."""
        last = self.at[-1]
        if at < last or (at == last and event_id < self.ids[-1]):
            self.unsorted = True
        self.at.append(at)
        self.ids.append(event_id)

    def sort(self) -> None:
        """Sort by ``(at, id)``: O(n log n), O(n) for sorted runs."""
        at, ids = self.at, self.ids
        # By time alone first (int keys compare faster than tuples); only
        # equal times, rare, need the ids compared.
        order = sorted(range(len(ids)), key=at.__getitem__)
        times = array("q", map(at.__getitem__, order))
        if len(set(times)) == len(times):
            self.at, self.ids = times, list(map(ids.__getitem__, order))
        else:
            pairs = sorted(zip(at, ids, strict=True))
            self.at = array("q", map(itemgetter(0), pairs))
            self.ids = list(map(itemgetter(1), pairs))
        self.unsorted = False


#: One anchor's events: a bare ``(at, id)`` for a single one.
_Index: TypeAlias = "tuple[int, str] | _Times"


class _ById(Mapping[str, Event]):
    """Every event by id, each decoded on first access (then kept)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __getitem__(self, event_id: str) -> Event:
        return self._ledger.event(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ledger.ids()

    def __iter__(self) -> Iterator[str]:
        return iter(self._ledger.ids())

    def __len__(self) -> int:
        return len(self._ledger)


class Ledger:
    """The events of one graph, indexed by anchor and time.

    ``ownership`` is the graph's ownership index (read only), which decides
    who an event anchored on a link belongs to.
    """

    def __init__(self, ownership: Ownership) -> None:
        self._ownership = ownership
        self.clear()
        # True in an as_of() view, whose shared events may name later customers.
        self.is_view = False
        # A store session collects here what each call recorded, to write it.
        self.added: list[tuple[Event, Anchor]] | None = None

    def clear(self) -> None:
        """Forget every event (new containers: an as_of() view keeps the old ones)."""
        # id -> its Event, or its stored text until first read.
        self._events: dict[str, Event | str] = {}
        self._by_anchor: dict[Anchor, _Index] = {}
        # For each link an event names besides its anchor (an event with a
        # customer id and links, or several links), the ids of such events:
        # an erasure finds the events that name the person's link this way.
        self._naming: dict[LinkKey, list[str]] = {}
        # What the indicators read of each purchase, as columns.
        self._purchases = PurchaseColumns()

    def view(self, ownership: Ownership) -> Ledger:
        """The same events, attributed through another (read-only) ownership index."""
        shared = Ledger(ownership)
        shared.is_view = True
        shared._events = self._events
        shared._by_anchor = self._by_anchor
        shared._naming = self._naming
        shared._purchases = self._purchases
        return shared

    def __len__(self) -> int:
        return len(self._events)

    @property
    def purchases(self) -> PurchaseColumns:
        """The purchases as columns, read from the purchases filed since the
        last access first.  O(1), plus O(their items) for those."""
        columns = self._purchases
        if columns.pending_ids:
            columns.settle(self._peek)
        return columns

    # --------------------------------------------------------------- recording

    def is_new(self, event: Event) -> bool:
        """False when ``event`` (checked, with its id) is recorded already;
        ``DuplicateEvent`` when its id was recorded with other content.
        O(data): a stored text is compared as text first, and decoded only
        when the texts differ (a time written in another zone, say)."""
        assert event.id is not None
        known = self._events.get(event.id)
        if known is None:
            return True
        if type(known) is str:
            if known == codec.dumps_event(event):
                return False
            known = codec.loads_event(known)
        if same_event(known, event):  # type: ignore[arg-type]
            return False
        raise DuplicateEvent(
            f"event id {event.id!r} was recorded with other content; an event id "
            "is an idempotency key and names one event"
        )

    def add(self, event: Event, anchor: Anchor) -> None:
        """File a new checked event and note it for a store to write.  O(1) amortised."""
        self.load(event, anchor)
        if self.added is not None:
            self.added.append((event, anchor))

    def add_many(self, items: Sequence[tuple[Event, Anchor]]) -> None:
        """File many new checked events at once (none recorded before, ids
        distinct) and note them for a store to write, as ``add`` does one by
        one.  Each anchor's index is extended once, and sorted on its next
        read.  O(m) for m events, plus O(m log m) at those reads at worst."""
        events = self._events
        groups: dict[Anchor, list[int | str]] = {}
        defer = self._purchases.defer
        for event, anchor in items:
            event_id = event.id
            assert event_id is not None
            events[event_id] = event
            at = micros(event.at)
            group = groups.get(anchor)
            if group is None:
                groups[anchor] = [at, event_id]
            else:
                group.append(at)
                group.append(event_id)
            links = event.links
            if links and (len(links) > 1 or event.customer_id is not None):
                self._name(event_id, anchor, [link.key for link in links])
            if event.type == "purchase":
                defer(event_id, anchor)
        by_anchor = self._by_anchor
        for anchor, group in groups.items():
            times: list[int] = group[0::2]  # type: ignore[assignment]
            ids: list[str] = group[1::2]  # type: ignore[assignment]
            index = by_anchor.get(anchor)
            if index is None and len(ids) == 1:
                by_anchor[anchor] = (times[0], ids[0])
                continue
            if index is None:
                by_anchor[anchor] = _Times(array("q", times), ids, True)
            elif type(index) is tuple:
                at, event_id = index
                by_anchor[anchor] = _Times(array("q", [at, *times]), [event_id, *ids], True)
            else:
                assert isinstance(index, _Times)
                index.at.extend(times)
                index.ids.extend(ids)
                index.unsorted = True
        if self.added is not None:
            self.added.extend(items)

    def load(self, event: Event, anchor: Anchor) -> None:
        """File an event checked and recorded before (a store loading its rows).
        O(1) amortised."""
        event_id = event.id
        assert event_id is not None
        self._events[event_id] = event
        self._file(micros(event.at), event_id, anchor)
        links = event.links
        if links and (len(links) > 1 or event.customer_id is not None):
            self._name(event_id, anchor, [link.key for link in links])
        if event.type == "purchase":
            self._purchases.defer(event_id, anchor)

    def load_text(self, text: str, anchor: Anchor) -> None:
        """File an event recorded before by its stored text (a store loading
        its rows), decoded only when first read.  ``ValueError`` if the text
        is not an event's.  O(size of its type, time, ids and links)."""
        head = codec.event_head(text)
        if head is None:  # the general form, rare: decoded now
            self.load(codec.loads_event(text), anchor)
            return
        kind, at, customer_id, links, event_id = head
        self._events[event_id] = text
        self._file(micros(datetime.fromisoformat(at)), event_id, anchor)
        if links and (len(links) > 1 or customer_id is not None):
            self._name(event_id, anchor, [(name, value) for name, value in links])
        if kind == "purchase":
            self._purchases.defer(event_id, anchor)

    def _file(self, at: int, event_id: str, anchor: Anchor) -> None:
        """Add ``(at, id)`` to ``anchor``'s index.  O(1) amortised."""
        index = self._by_anchor.get(anchor)
        if index is None:
            self._by_anchor[anchor] = (at, event_id)
        elif type(index) is tuple:
            first = index
            times = _Times(array("q", [first[0]]), [first[1]], False)
            times.append(at, event_id)
            self._by_anchor[anchor] = times
        else:
            index.append(at, event_id)  # type: ignore[union-attr]

    def _name(self, event_id: str, anchor: Anchor, keys: list[LinkKey]) -> None:
        """Note the links an event names besides its anchor.  O(links)."""
        naming = self._naming
        for key in keys:
            if key != anchor:
                held = naming.get(key)
                if held is None:
                    naming[key] = [event_id]
                else:
                    held.append(event_id)

    def erase(self, ids: Iterable[str]) -> int:
        """Remove the events with these ids (an erasure) from the ledger, its
        indexes and its purchase columns; return how many were here.
        O(erased × (size + the anchor's events) + purchases when a purchase goes)."""
        gone = set(ids)
        found = 0
        purchases = False
        for event_id in gone:
            stored = self._events.pop(event_id, None)
            if stored is None:
                continue
            found += 1
            event = codec.loads_event(stored) if type(stored) is str else stored
            for link in event.links:  # type: ignore[union-attr]
                held = self._naming.get(link.key)
                if held is not None and event_id in held:
                    held.remove(event_id)
                    if not held:
                        del self._naming[link.key]
            purchases = purchases or event.type == "purchase"  # type: ignore[union-attr]
            anchors: list[Anchor] = [event.customer_id] if event.customer_id is not None else []  # type: ignore[union-attr]
            anchors.extend(link.key for link in event.links)  # type: ignore[union-attr]
            for anchor in anchors:
                if self._unfile(anchor, event_id):
                    break
        if purchases:
            self._purchases.remove(gone)
        return found

    def _unfile(self, anchor: Anchor, event_id: str) -> bool:
        """Remove ``event_id`` from ``anchor``'s index; False if not there.  O(n)."""
        index = self._by_anchor.get(anchor)
        if index is None:
            return False
        if type(index) is tuple:
            if index[1] != event_id:
                return False
            del self._by_anchor[anchor]
            return True
        assert isinstance(index, _Times)
        try:
            position = index.ids.index(event_id)
        except ValueError:
            return False
        del index.ids[position]
        del index.at[position]
        if len(index.ids) == 1:
            self._by_anchor[anchor] = (index.at[0], index.ids[0])
        return True

    # --------------------------------------------------------------- reading

    def event(self, event_id: str) -> Event:
        """The event with this id, decoded from its text on first read and
        kept so.  ``KeyError`` if unknown.  O(1), O(size) the first time."""
        stored = self._events[event_id]
        if type(stored) is str:
            stored = self._events[event_id] = codec.loads_event(stored)
        return stored  # type: ignore[return-value]

    def _peek(self, event_id: str) -> Event:
        """The event with this id, decoded for this read only (a pass over
        every purchase must not keep them all).  O(size)."""
        stored = self._events[event_id]
        return codec.loads_event(stored) if type(stored) is str else stored  # type: ignore[return-value]

    def type_of(self, event_id: str) -> str:
        """The type of the event with this id, without decoding it.  O(1)."""
        stored = self._events[event_id]
        return codec.event_type(stored) if type(stored) is str else stored.type  # type: ignore[union-attr]

    def ids(self) -> Mapping[str, object]:
        """The ids of every event, in filing order (read only; the values
        are internal).  O(1)."""
        return self._events

    # --------------------------------------------------------------- queries

    def events(
        self,
        profile: Link | CustomerId,
        members: Iterable[CustomerId],
        start: datetime | None = None,
        end: datetime | None = None,
        types: Iterable[str] | None = None,
    ) -> list[Event]:
        """The events of a profile in ``[start, end)``, ordered by ``(at, id)``.

        ``profile`` is a resolved profile id: an anonymous profile (its
        link) or a customer profile with its ``members``.  Bounds are aware
        times (the facade checks them).  Events are decoded (once) only
        when they are in the answer.  O(anchors × spans × log n + result).
        """
        wanted = None if types is None else frozenset([types] if isinstance(types, str) else types)
        keys: list[tuple[int, str]] = []
        if isinstance(profile, Link):
            self._collect(profile.key, {None}, start, end, keys)
        else:
            customers = set(members)
            seen: set[LinkKey] = set()
            claims_of = self._ownership.claimed_by
            for customer in customers:
                self._slice(customer, start, end, keys)
                for key in claims_of(customer):
                    if key not in seen:
                        seen.add(key)
                        self._collect(key, customers, start, end, keys)
        keys.sort()
        stored = self._events
        if wanted is not None:
            type_of = self.type_of
            keys = [key for key in keys if type_of(key[1]) in wanted]
        found: list[Event] = []
        for _at, event_id in keys:
            event = stored[event_id]
            if type(event) is str:
                event = stored[event_id] = codec.loads_event(event)
            found.append(event)  # type: ignore[arg-type]
        return found

    def between(
        self, anchor: Anchor, start: datetime | None = None, end: datetime | None = None
    ) -> list[str]:
        """Ids of the events anchored on ``anchor`` in ``[start, end)``, by
        ``(at, id)``.  O(log n + result)."""
        found: list[tuple[int, str]] = []
        self._slice(anchor, start, end, found)
        return [event_id for _at, event_id in found]

    def naming(self, keys: Iterable[LinkKey]) -> list[str]:
        """Ids of the events whose links name one of ``keys`` besides their
        anchor (events with more than one identity).  O(result)."""
        naming = self._naming
        return [event_id for key in keys for event_id in naming.get(key, ())]

    def by_id(self) -> Mapping[str, Event]:
        """Every event by id (read only), each decoded on first access.  O(1)."""
        return _ById(self)

    def anchored(self) -> Iterator[tuple[Anchor, Sequence[int], Sequence[str]]]:
        """Every anchor with its events' times (µs UTC) and ids, sorted by
        ``(at, id)``.  O(anchors), plus the sorts owed."""
        for anchor in list(self._by_anchor):
            yield (anchor, *self._columns(anchor))  # type: ignore[misc]

    def _columns(self, anchor: Anchor) -> tuple[Sequence[int], Sequence[str]] | None:
        """``anchor``'s sorted times and ids, or None.  O(1), plus a sort owed."""
        index = self._by_anchor.get(anchor)
        if index is None:
            return None
        if type(index) is tuple:
            return (index[0],), (index[1],)
        assert isinstance(index, _Times)
        if index.unsorted:
            index.sort()
        return index.at, index.ids

    def _collect(
        self,
        key: LinkKey,
        owners: set[CustomerId] | set[None],
        start: datetime | None,
        end: datetime | None,
        out: list[tuple[int, str]],
    ) -> None:
        """Append the events anchored on ``key`` while one of ``owners`` owned it."""
        if key not in self._by_anchor:
            return
        spans = self._ownership.spans(key)
        if not spans:  # never claimed: the anonymous profile's throughout
            if None in owners:
                self._slice(key, start, end, out)
            return
        for span_start, span_end, owner in spans:
            if owner in owners:
                self._slice(key, _later(span_start, start), _earlier(span_end, end), out)

    def _slice(
        self,
        anchor: Anchor,
        start: datetime | None,
        end: datetime | None,
        out: list[tuple[int, str]],
    ) -> None:
        """Append ``anchor``'s ``(at, id)`` in ``[start, end)``.  O(log n + result)."""
        index = self._by_anchor.get(anchor)
        if index is None:
            return
        if type(index) is tuple:
            at = index[0]
            if (start is None or at >= micros(start)) and (end is None or at < micros(end)):
                out.append(index)
            return
        assert isinstance(index, _Times)
        if index.unsorted:
            index.sort()
        times = index.at
        low = 0 if start is None else bisect_left(times, micros(start))
        # Every event at ``end`` is left out: the window is half-open.
        high = len(times) if end is None else bisect_left(times, micros(end))
        if low < high:
            out.extend(zip(times[low:high], index.ids[low:high], strict=True))

    def check(self) -> None:
        """Verify the indexes against the events (for tests); decodes every
        stored text without keeping it.  O(n log n)."""
        indexed = 0
        for anchor, index in self._by_anchor.items():
            if type(index) is tuple:
                pairs = [index]
            else:
                assert isinstance(index, _Times)
                assert len(index.at) == len(index.ids) >= 2
                pairs = list(zip(index.at, index.ids, strict=True))
                if not index.unsorted:
                    assert pairs == sorted(pairs), f"{anchor}: said sorted, is not"
            for at, event_id in pairs:
                event = self._peek(event_id)
                assert micros(event.at) == at
                if isinstance(anchor, str):
                    assert event.customer_id == anchor
                else:
                    assert event.customer_id is None and Link(*anchor) in event.links
                indexed += 1
        assert indexed == len(self._events), "an event is indexed twice or not at all"
        named = 0
        for key, ids in self._naming.items():
            assert ids and len(set(ids)) == len(ids), f"{key}: an empty or repeated list"
            for event_id in ids:
                assert Link(*key) in self._peek(event_id).links, f"{event_id} does not name {key}"
            named += len(ids)
        several = 0
        purchases = 0
        for event_id in self._events:
            event = self._peek(event_id)
            if event.links and (len(event.links) > 1 or event.customer_id is not None):
                several += len(event.links) - (event.customer_id is None)
            purchases += event.type == "purchase"
        assert named == several, "an event names a link the index misses"
        columns = self._purchases
        if columns.exact:
            assert len(columns) + len(columns.pending_ids) == purchases, "a purchase column misses"
