"""The event ledger: every event attributed to the profile that owned its identity
at the time of the event.

An event is stored once, under its **anchor** — its customer id, or else its
highest-priority link — in a per-anchor ``SortedList`` of ``(at, id)``.
Attribution is *never* stored: ``events(profile)`` asks the ownership index
which anchors can belong to the profile and over which time spans, and reads
only those slices.  So merges, splits, relinks and late-arriving change
points re-attribute events without rewriting a single one, and a split gives
each part back exactly its own events.

The ledger only stores and reads: the facade has checked each event
(:func:`identity_graph.events.prepare`), registered its customer and logged
any refusal before the ledger sees it.

Costs: filing is O(log n) for the anchor's n events; a profile query is
O(anchors × spans × log n + result), never a scan of the ledger.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Mapping, Sequence
from datetime import datetime

from sortedcontainers import SortedList

from .errors import DuplicateEvent
from .events import Anchor, Event, FrozenMap, as_decimal, same_event
from .ids import CustomerId, Link, LinkKey
from .purchases import PurchaseColumns
from .state import Ownership
from .times import utc

__all__ = ["Anchor", "Event", "FrozenMap", "Ledger", "as_decimal"]


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two lower bounds (None is the open past)."""
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two upper bounds (None is the open future)."""
    return b if a is None else a if b is None else min(a, b)


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
        self._events: dict[str, Event] = {}
        self._by_anchor: dict[Anchor, SortedList] = {}
        # For each link an event names besides its anchor (an event with a
        # customer id and links, or several links), the ids of such events:
        # an erasure finds the events that name the person's link this way.
        self._naming: dict[LinkKey, list[str]] = {}
        # What the indicators read of each purchase, as columns.
        self.purchases = PurchaseColumns()

    def view(self, ownership: Ownership) -> Ledger:
        """The same events, attributed through another (read-only) ownership index."""
        shared = Ledger(ownership)
        shared.is_view = True
        shared._events = self._events
        shared._by_anchor = self._by_anchor
        shared._naming = self._naming
        shared.purchases = self.purchases
        return shared

    def __len__(self) -> int:
        return len(self._events)

    # --------------------------------------------------------------- recording

    def is_new(self, event: Event) -> bool:
        """False when ``event`` (checked, with its id) is recorded already;
        ``DuplicateEvent`` when its id was recorded with other content.  O(data)."""
        assert event.id is not None
        known = self._events.get(event.id)
        if known is None:
            return True
        if same_event(known, event):
            return False
        raise DuplicateEvent(
            f"event id {event.id!r} was recorded with other content; an event id "
            "is an idempotency key and names one event"
        )

    def add(self, event: Event, anchor: Anchor) -> None:
        """File a new checked event and note it for a store to write.  O(log n)."""
        self.load(event, anchor)
        if self.added is not None:
            self.added.append((event, anchor))

    def add_many(self, items: Sequence[tuple[Event, Anchor]]) -> None:
        """File many new checked events (none recorded before, ids distinct)
        and note them for a store to write, exactly as :meth:`add` one by
        one.  O(m log n)."""
        add = self.add
        for event, anchor in items:
            add(event, anchor)

    def load(self, event: Event, anchor: Anchor) -> None:
        """File an event checked and recorded before (a store loading its rows).  O(log n)."""
        assert event.id is not None
        self._events[event.id] = event
        index = self._by_anchor.get(anchor)
        if index is None:
            index = self._by_anchor[anchor] = SortedList()
        # Keyed by the UTC instant: Python compares two times of one zone by
        # their wall clock, which misorders the hour repeated when DST ends.
        index.add((utc(event.at), event.id))
        links = event.links
        if links and (len(links) > 1 or event.customer_id is not None):
            naming = self._naming
            for link in links:
                key = link.key
                if key != anchor:
                    held = naming.get(key)
                    if held is None:
                        naming[key] = [event.id]
                    else:
                        held.append(event.id)
        if event.type == "purchase":
            self.purchases.add(event, anchor)

    def erase(self, ids: Iterable[str]) -> int:
        """Remove the events with these ids (an erasure) from the ledger, its
        indexes and its purchase columns; return how many were here.
        O(erased × log n + purchases when a purchase goes)."""
        gone = set(ids)
        found = 0
        purchases = False
        for event_id in gone:
            event = self._events.pop(event_id, None)
            if event is None:
                continue
            found += 1
            for link in event.links:
                held = self._naming.get(link.key)
                if held is not None and event_id in held:
                    held.remove(event_id)
                    if not held:
                        del self._naming[link.key]
            purchases = purchases or event.type == "purchase"
            mark = (utc(event.at), event_id)
            anchors: list[Anchor] = [event.customer_id] if event.customer_id is not None else []
            anchors.extend(link.key for link in event.links)
            for anchor in anchors:
                index = self._by_anchor.get(anchor)
                if index is not None and mark in index:
                    index.remove(mark)
                    if not index:
                        del self._by_anchor[anchor]
                    break
        if purchases:
            self.purchases.remove(gone)
        return found

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
        times (the facade checks them).  O(anchors × spans × log n + result).
        """
        wanted = None if types is None else frozenset([types] if isinstance(types, str) else types)
        keys: list[tuple[datetime, str]] = []
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
        found = [self._events[event_id] for _at, event_id in keys]
        if wanted is not None:
            found = [event for event in found if event.type in wanted]
        return found

    def index(self, anchor: Anchor) -> SortedList | None:
        """The ``(at in UTC, event id)`` index of one anchor, or None.  O(1)."""
        return self._by_anchor.get(anchor)

    def naming(self, keys: Iterable[LinkKey]) -> list[str]:
        """Ids of the events whose links name one of ``keys`` besides their
        anchor (events with more than one identity).  O(result)."""
        naming = self._naming
        return [event_id for key in keys for event_id in naming.get(key, ())]

    def by_id(self) -> Mapping[str, Event]:
        """Every event by id (read only).  O(1)."""
        return self._events

    def anchored(self) -> ItemsView[Anchor, SortedList]:
        """Every anchor with its ``(at in UTC, event id)`` index, sorted by time."""
        return self._by_anchor.items()

    def _collect(
        self,
        key: LinkKey,
        owners: set[CustomerId] | set[None],
        start: datetime | None,
        end: datetime | None,
        out: list[tuple[datetime, str]],
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
        out: list[tuple[datetime, str]],
    ) -> None:
        index = self._by_anchor.get(anchor)
        if index is None:
            return
        low = None if start is None else (start,)
        high = None if end is None else (end,)
        # (end,) sorts before every (end, id): the window is half-open.
        out.extend(index.irange(low, high, inclusive=(True, False)))

    def check(self) -> None:
        """Verify the indexes against the events (for tests).  O(n)."""
        indexed = 0
        for anchor, index in self._by_anchor.items():
            for at, event_id in index:
                event = self._events[event_id]
                assert utc(event.at) == at
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
                assert Link(*key) in self._events[event_id].links, f"{event_id} does not name {key}"
            named += len(ids)
        several = sum(
            len(e.links) - (e.customer_id is None)
            for e in self._events.values()
            if e.links and (len(e.links) > 1 or e.customer_id is not None)
        )
        assert named == several, "an event names a link the index misses"
