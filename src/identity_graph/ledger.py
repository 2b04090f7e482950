"""The event ledger: every event attributed to the profile that owned its identity
at the time of the event.

An event is stored once, under its **anchor** — its customer id, or else its
highest-priority link — in a per-anchor ``SortedList`` of ``(at, id)``.
Attribution is *never* stored: ``events(profile)`` asks the identity graph
which anchors can belong to the profile and over which time spans, and reads
only those slices.  So merges, splits, relinks and late-arriving change
points re-attribute events without rewriting a single one, and a split gives
each part back exactly its own events.

Costs: recording is O(log n) for the anchor's n events; a profile query is
O(anchors × spans × log n + result), never a scan of the ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
from sortedcontainers import SortedList

from . import history as hist
from .errors import (
    DuplicateEvent,
    IdentityGraphError,
    InvalidEvent,
    InvalidLink,
    UnknownCustomer,
)
from .ids import CustomerId, Link, LinkKey, check_customer_id

if TYPE_CHECKING:
    from .graph import IdentityGraph, Ref

__all__ = ["Event", "Ledger"]

Anchor: TypeAlias = "CustomerId | LinkKey"
MAX_EVENT_ID_LENGTH = 256


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping that owns its data: what event data is stored as.

    Unlike ``MappingProxyType`` it cannot be a view of a dict someone else
    still holds, so the ledger can trust it without copying it again.
    """

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a caught KeyError.
        return self._data.get(key, default)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("event data is read-only")

    def __eq__(self, other: object) -> bool:
        if type(other) is FrozenMap:
            return self._data == other._data
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


_SCALARS = frozenset({str, int, float, bool, Decimal, date, datetime, type(None)})


def _freeze(value: Any, path: str) -> Any:
    """A deep immutable copy of event data: mappings become read-only, lists tuples."""
    kind = type(value)
    if kind is datetime and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidEvent(
            f"event data value at {path} is a naive datetime ({value.isoformat()}); give a "
            "time zone (the library never guesses one)"
        )
    if kind in _SCALARS or kind is FrozenMap:
        return value
    if kind is dict or isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidEvent(f"event data key {key!r} at {path} is not a string")
            frozen[key] = _freeze(item, f"{path}.{key}")
        return FrozenMap(frozen)
    if kind is list or kind is tuple:
        return tuple([_freeze(item, f"{path}[{i}]") for i, item in enumerate(value)])
    # Subclasses (a StrEnum, an IntEnum, a pandas Timestamp…) are kept as
    # their base type: a stored event must read back equal to the recorded
    # one, and a store gives back base types.
    if isinstance(value, datetime):
        base = datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
            fold=value.fold,
        )
        return _freeze(base, path)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):  # bool is in _SCALARS: only int subclasses get here
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Decimal):
        return Decimal(value)
    raise InvalidEvent(
        f"event data value at {path} is a {type(value).__name__}; data holds str, int, "
        "float, bool, None, Decimal, date, datetime, lists and mappings"
    )


def _plain(value: Any) -> Any:
    """Event data as JSON-ready values, tagging the types JSON lacks (for hashing)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _data(value: Any) -> Mapping[str, Any]:
    if type(value) is FrozenMap:
        return value
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"event data {value!r} is not a mapping")
    frozen: Mapping[str, Any] = _freeze(value, "data")
    return frozen


def _links(value: Any) -> tuple[Link, ...]:
    if isinstance(value, Link):
        return (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidEvent(f"event links {value!r} must be a sequence of Link")
    links = tuple(value)
    for link in links:
        if not isinstance(link, Link):
            raise InvalidEvent(f"event link {link!r} is not a Link; write Link(name, value)")
    return links


@attrs.frozen
class Event:
    """Something a person did: a purchase, a call, a visit, an offline event.

    ``Event("purchase", at=t, customer_id="c1", links=(...), data={...}, id="T-1")``

    - ``type``: free text (``purchase``, ``call``, ``visit``, ``offline``, …);
    - ``at``: an aware datetime;
    - ``customer_id`` and/or ``links``: who did it;
    - ``data``: amounts, items, store, channel… (kept as a read-only deep copy);
    - ``id``: the idempotency key; when absent, the ledger derives a stable
      hash of the content.
    """

    type: str
    at: datetime = attrs.field(kw_only=True)
    customer_id: CustomerId | None = attrs.field(default=None, kw_only=True)
    links: tuple[Link, ...] = attrs.field(default=(), converter=_links, kw_only=True)
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_data, kw_only=True)
    id: str | None = attrs.field(default=None, kw_only=True)

    def content(self) -> str:
        """The canonical text of everything but the id (stable across runs)."""
        return json.dumps(
            {
                "type": self.type,
                "at": self.at.astimezone(UTC).isoformat(),
                "customer_id": self.customer_id,
                "links": sorted([link.name, link.value] for link in self.links),
                "data": _plain(self.data),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def content_id(self) -> str:
        """The id an event without one gets: ``h-`` and 32 hex digits of SHA-256."""
        return "h-" + hashlib.sha256(self.content().encode()).hexdigest()[:32]


def _same_value(a: Any, b: Any) -> bool:
    """Equal *and* of the same type, all the way down: the equality of
    :meth:`Event.content`.  Plain ``==`` will not do: ``True == 1 == 1.0`` and
    ``Decimal("10.0") == Decimal("10.00")``, yet they are different content.
    Much cheaper than comparing two canonical texts."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is FrozenMap:
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if kind is tuple:
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if kind is Decimal or kind is float:  # 10.0 vs 10.00; -0.0 vs 0.0; nan
        return str(a) == str(b)
    return bool(a == b)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def _same_event(a: Event, b: Event) -> bool:
    return (
        a.type == b.type
        # As instants, as content() does: PEP 495 makes a time in the hour
        # repeated by a DST change unequal to any time of another zone.
        and _utc(a.at) == _utc(b.at)
        and a.customer_id == b.customer_id
        and a.links == b.links
        and _same_value(a.data, b.data)
    )


def as_decimal(value: Any) -> Decimal:
    """A number from event data as a ``Decimal``, never through float arithmetic.

    ``Decimal`` and ``int`` as they are; numeric text parsed; a ``float``
    through its shortest text (``repr``), so ``0.1`` is ``Decimal("0.1")``.
    Raises ``TypeError`` for anything else (``bool`` included) and
    ``ArithmeticError`` for text that is not a number.
    """
    if type(value) is Decimal:
        return value
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is a bool, not a number")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        return Decimal(value.strip())
    raise TypeError(f"{value!r} is not a number")


def _number(value: Any, where: str, rule: str) -> Decimal:
    try:
        number = as_decimal(value)
    except (TypeError, ArithmeticError):
        raise InvalidEvent(f"{where} {value!r} {rule}") from None
    if not number.is_finite():
        raise InvalidEvent(f"{where} {value!r} {rule}")
    return number


def _check_purchase(event: Event) -> None:
    """The purchase fields the indicators read, checked when recorded so
    that one malformed ticket can never break the indicators of everyone."""
    data, name = event.data, f"purchase {event.id or ''}".strip()
    money = "is not a finite amount (Decimal, int or numeric text)"
    amount = data.get("amount")
    if amount is not None:
        _money(amount, f"{name}: amount", money)
    for field in _LISTED:
        _check_strings(data.get(field), f"{name}: {field}")
    for field in _NAMED:
        _check_scalar(data.get(field), f"{name}: {field}")
    items = data.get("items")
    if items is None:
        return
    if not isinstance(items, tuple):
        raise InvalidEvent(f"{name}: items {items!r} must be a list of mappings")
    # Bulk loads check millions of items: plain ints (the usual quantity)
    # take a fast path, and messages are only formatted for a bad item.
    for index, item in enumerate(items):
        if type(item) is not FrozenMap and not isinstance(item, Mapping):
            raise InvalidEvent(f"{name}: items[{index}] {item!r} must be a mapping")
        quantity = item.get("quantity", 1)
        if type(quantity) is not int or quantity < 0:
            where = f"{name}: items[{index}].quantity"
            whole = _number(quantity, where, "must be a whole number >= 0")
            if whole != whole.to_integral_value() or whole < 0:
                raise InvalidEvent(f"{where} {quantity!r} must be a whole number >= 0")
        price = item.get("unit_price")
        if price is not None:
            _money(price, f"{name}: items[{index}].unit_price", money)
        for field in _ITEM_NAMED:
            _check_scalar(item.get(field), f"{name}: items[{index}].{field}")
        _check_strings(item.get("seller"), f"{name}: items[{index}].seller")


#: Money beyond this is no purchase, and sums of it would overflow Decimal's
#: default context, breaking kpis() for every profile.
MAX_MONEY = 10**24


def _money(value: Any, where: str, rule: str) -> None:
    if type(value) is int:  # the bulk path: no Decimal built
        if -MAX_MONEY < value < MAX_MONEY:
            return
    else:
        number = _number(value, where, rule)
        if -MAX_MONEY < number < MAX_MONEY:
            return
    raise InvalidEvent(f"{where} {value!r} is beyond ±10**24, which no purchase reaches")


#: Purchase fields that hold one string or a list of them.
_LISTED = ("seller", "payment_methods", "shipping_methods", "promo_codes")
#: Purchase fields that name one thing, and item fields that do.
_NAMED = ("store",)
_ITEM_NAMED = ("sku", "brand", "category")


def _check_scalar(value: Any, where: str) -> None:
    """A name (store, sku, brand, category): text or a number, read as its text."""
    if isinstance(value, tuple | Mapping):
        raise InvalidEvent(f"{where} {value!r} must be a string, not a list or mapping")


def _check_strings(value: Any, where: str) -> None:
    """One name or a flat list of names."""
    if isinstance(value, Mapping) or (
        isinstance(value, tuple) and any(isinstance(v, tuple | Mapping) for v in value)
    ):
        raise InvalidEvent(f"{where} {value!r} must be a string or a list of strings")


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two lower bounds (None is the open past)."""
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two upper bounds (None is the open future)."""
    return b if a is None else a if b is None else min(a, b)


class Ledger:
    """The events of one graph, indexed by anchor and time."""

    def __init__(self, graph: IdentityGraph) -> None:
        from .purchases import PurchaseColumns  # it reads FrozenMap from here

        self._graph = graph
        self._events: dict[str, Event] = {}
        self._by_anchor: dict[Anchor, SortedList] = {}
        # What the indicators read of each purchase, as columns.
        self.purchases = PurchaseColumns()
        # True in an as_of() view, whose shared events may name later customers.
        self.is_view = False
        # A stored graph collects here what each call recorded, to write it.
        self.added: list[tuple[Event, Anchor]] | None = None

    def view(self, graph: IdentityGraph) -> Ledger:
        """The same events, attributed through another (read-only) graph."""
        shared = Ledger(graph)
        shared.is_view = True
        shared._events = self._events
        shared._by_anchor = self._by_anchor
        shared.purchases = self.purchases
        return shared

    def __len__(self) -> int:
        return len(self._events)

    # --------------------------------------------------------------- recording

    def _prepare(self, event: Event) -> tuple[Event, Anchor]:
        """Validate and normalise ``event``; return it with its id and its anchor.

        Invalid or blocked links are dropped and each drop logged as a refusal.
        """
        graph = self._graph
        if type(event) is not Event:
            raise InvalidEvent(f"{event!r} is not an Event")
        kind, at, event_id = event.type, event.at, event.id
        name = event_id or kind
        if type(kind) is not str or not kind or kind.isspace():
            raise InvalidEvent(f"event type {kind!r} must be a non-empty string")
        if not (type(at) is datetime and at.tzinfo is UTC):  # else check it properly
            if not isinstance(at, datetime):
                raise InvalidEvent(f"event {name!r}: at={at!r} is not a datetime")
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(
                    f"event {name!r}: at={at.isoformat()} is a naive datetime; "
                    "give a time zone (the library never guesses one)"
                )
        if event_id is not None and (
            type(event_id) is not str
            or not event_id
            or event_id.isspace()
            or len(event_id) > MAX_EVENT_ID_LENGTH
        ):
            raise InvalidEvent(
                f"event id {event_id!r} must be a non-empty string of at most "
                f"{MAX_EVENT_ID_LENGTH} characters"
            )
        keys: list[LinkKey] = []
        for link in event.links:
            try:
                key = graph._types.key(link)
            except InvalidLink as error:
                graph._guards.refuse(at, "record", {"event": event_id, "link": link}, error)
                continue
            if key not in keys:
                keys.append(key)
        customer = event.customer_id
        if customer is not None and customer not in graph._order:
            try:
                customer = check_customer_id(customer)
            except IdentityGraphError as error:
                raise InvalidEvent(f"event {name!r}: {error}") from None
            if customer not in graph._order and not graph.register_unknown:
                raise UnknownCustomer(
                    f"event {name!r} names customer {customer!r}, which is not registered "
                    "(IdentityGraph(register_unknown=True) registers it)"
                )
        if customer is None and not keys:
            raise InvalidEvent(
                f"event {name!r} has no customer id and no valid link left to identify it"
            )
        if kind == "purchase" or kind.strip() == "purchase":  # " purchase " is one too
            _check_purchase(event)
        keys.sort()
        links = event.links
        if len(links) != len(keys) or any(x.key != k for x, k in zip(links, keys, strict=True)):
            links = tuple(Link(*key) for key in keys)
        normalised = event
        if kind != kind.strip() or customer != event.customer_id or links is not event.links:
            normalised = attrs.evolve(event, type=kind.strip(), customer_id=customer, links=links)
        if event_id is None:
            normalised = attrs.evolve(normalised, id=normalised.content_id())
        anchor: Anchor
        if customer is not None:
            anchor = customer
        elif len(keys) == 1:
            anchor = keys[0]
        else:
            priority = graph._types.priority_key
            anchor = min(keys, key=lambda key: (priority(key[0]), key[1]))
        return normalised, anchor

    def record(self, event: Event) -> bool:
        """Record one event; False when the same event (id and content) is recorded.

        Raises ``DuplicateEvent`` for a known id with other content,
        ``InvalidEvent``, ``UnknownCustomer`` or ``ValueError`` (naive time);
        each refusal is logged.  O(log n).
        """
        try:
            normalised, anchor = self._prepare(event)
            return self._store(normalised, anchor)
        except IdentityGraphError as error:
            self._refuse(event, error)
            raise

    def record_many(self, events: Iterable[Event]) -> tuple[int, int]:
        """Record every event; return ``(recorded, unchanged)``.

        A refused event is logged (``refusals()``) and skipped; the others are
        recorded.  O(m log n) for m events.
        """
        recorded = unchanged = 0
        for event in events:
            try:
                normalised, anchor = self._prepare(event)
                if self._store(normalised, anchor):
                    recorded += 1
                else:
                    unchanged += 1
            except (IdentityGraphError, ValueError) as error:
                self._refuse(event, error)
        return recorded, unchanged

    def _refuse(self, event: object, error: Exception) -> None:
        """Log a refused event at its own time, or now if it has no valid time."""
        at = getattr(event, "at", None)
        if not isinstance(at, datetime) or at.utcoffset() is None:
            at = self._graph._clock()
        self._graph._guards.refuse(at, "record", {"event": event}, error)

    def _store(self, event: Event, anchor: Anchor) -> bool:
        assert event.id is not None
        known = self._events.get(event.id)
        if known is not None:
            if _same_event(known, event):
                return False
            raise DuplicateEvent(
                f"event id {event.id!r} was recorded with other content; an event id "
                "is an idempotency key and names one event"
            )
        if isinstance(anchor, str) and anchor not in self._graph._order:
            self._graph.register(anchor, at=event.at)  # register_unknown=True
        self.load(event, anchor)
        if self.added is not None:
            self.added.append((event, anchor))
        return True

    def load(self, event: Event, anchor: Anchor) -> None:
        """File an event checked and recorded before (a store loading its rows).  O(log n)."""
        assert event.id is not None
        self._events[event.id] = event
        index = self._by_anchor.get(anchor)
        if index is None:
            index = self._by_anchor[anchor] = SortedList()
        # Keyed by the UTC instant: Python compares two times of one zone by
        # their wall clock, which misorders the hour repeated when DST ends.
        index.add((_utc(event.at), event.id))
        if event.type == "purchase":
            self.purchases.add(event, anchor)

    # --------------------------------------------------------------- queries

    def events(
        self,
        ref: Ref,
        start: datetime | None = None,
        end: datetime | None = None,
        types: Iterable[str] | None = None,
        at: datetime | None = None,
    ) -> list[Event]:
        """The events of ``ref``'s profile in ``[start, end)``, ordered by ``(at, id)``.

        ``ref`` is resolved as ``resolve(ref, at)`` resolves it, so
        ``events(link, at=t)`` reaches the anonymous profile of a link that
        was unowned at ``t`` even if someone owns it now.
        O(anchors × spans × log n + result).
        """
        graph = self._graph
        for bound in (start, end):
            if bound is not None:
                graph._now(bound)  # refuses naive or non-datetime bounds, naming them
        wanted = None if types is None else frozenset([types] if isinstance(types, str) else types)
        profile = graph.resolve(ref, at)
        keys: list[tuple[datetime, str]] = []
        if isinstance(profile, Link):
            self._collect(profile.key, {None}, start, end, keys)
        else:
            customers = set(graph._partition.members(profile))
            seen: set[LinkKey] = set()
            for customer in customers:
                self._slice(customer, start, end, keys)
                for key in graph._claimed_by(customer):
                    if key not in seen:
                        seen.add(key)
                        self._collect(key, customers, start, end, keys)
        keys.sort()
        found = [self._events[event_id] for _at, event_id in keys]
        if wanted is not None:
            found = [event for event in found if event.type in wanted]
        return found

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
        history = self._graph._history.get(key)
        if history is None:
            if None in owners:
                self._slice(key, start, end, out)
            return
        for span_start, span_end, owner in hist.spans(history):
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
                assert _utc(event.at) == at
                if isinstance(anchor, str):
                    assert event.customer_id == anchor
                else:
                    assert event.customer_id is None and Link(*anchor) in event.links
                indexed += 1
        assert indexed == len(self._events), "an event is indexed twice or not at all"
