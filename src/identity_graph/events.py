"""Events: what a person did, as a frozen value, and the checks an event passes
before the ledger files it.

- :class:`Event` and :class:`FrozenMap` (its read-only, deep-copied data);
- :func:`check_purchase`: the purchase fields the indicators read, checked
  when an event is recorded, so that one malformed ticket can never break
  the indicators of everyone;
- :func:`prepare`: an event validated and normalised against a graph's link
  types and customers, with the anchor the ledger files it under.

Nothing here changes a graph: the facade calls :func:`prepare`, registers an
unknown customer and logs refusals; the ledger only stores what it is given.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from .errors import (
    IdentityGraphError,
    InvalidEvent,
    InvalidLink,
    InvalidTime,
    SuppressedLink,
    UnknownCustomer,
)
from .ids import (
    ERASED_PREFIX,
    ERASED_RULE,
    CustomerId,
    Link,
    LinkKey,
    LinkTypes,
    check_customer_id,
)
from .text import MAX_DATA_DEPTH, MAX_INT_DIGITS, text_problem
from .times import RANGE_RULE, utc

if TYPE_CHECKING:
    from .suppression import Suppression

__all__ = [
    "MAX_DATA_DEPTH",
    "MAX_EVENT_ID_LENGTH",
    "MAX_INT_DIGITS",
    "MAX_MONEY",
    "MONEY_DIGITS",
    "Anchor",
    "Event",
    "FrozenMap",
    "as_decimal",
    "build_event",
    "check_purchase",
    "check_purchase_data",
    "data_keeps_rules",
    "event_id_ok",
    "event_type_ok",
    "freeze_data",
    "plain_anchor",
    "plain_data",
    "prepare",
    "purchase_plain",
    "same_event",
    "stored_data",
]

#: What the ledger files an event under: its customer id, or a link's key.
Anchor: TypeAlias = "CustomerId | LinkKey"

MAX_EVENT_ID_LENGTH = 256


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping that owns its data: what event data is stored as.

    Unlike ``MappingProxyType`` it cannot be a view of a dict someone else
    still holds, so the ledger can trust it without copying it again.
    """

    __slots__ = ("_clean", "_data")
    _data: dict[str, Any]
    #: True only for the data of an ``Event`` frozen from plain values whose
    #: every key and string is ASCII without NUL, nested within the door's
    #: bound: such data keeps the text rule by construction, so the check
    #: when it is recorded (``prepare``) need not walk it again.
    _clean: bool

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_clean", False)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def as_dict(self) -> dict[str, Any]:
        """The mapping's own dict, for readers on a bulk path; never to be changed."""
        return self._data

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


_INT_BOUND = 10**MAX_INT_DIGITS
_SCALARS = frozenset({str, int, float, bool, Decimal, date, datetime, type(None)})
#: Values with no text and nothing to check, copied as they are.
_PLAIN = frozenset({int, float, bool, Decimal, date, type(None)})


def _freeze(value: Any, path: str, depth: int, limit: int, texts: list[str]) -> Any:
    """A deep immutable copy of event data: mappings become read-only, lists
    tuples.  ``depth`` is the level ``value`` is at; a mapping or list below
    level ``limit`` is refused (a cycle too), before recursion runs out.

    Every key and string met is appended to ``texts`` (and a NUL for a
    ``FrozenMap`` kept without being walked), so that the caller can test
    them all for the text rule in one pass (:func:`_data`).  Plain values
    inside mappings and lists are copied inline, without a call or a path.
    """
    kind = type(value)
    if kind is str:
        texts.append(value)
        return value
    if kind is datetime or kind is int:
        problem = _leaf_problem(value)
        if problem is not None:
            raise InvalidEvent(f"event data value at {path} {problem}")
    if kind in _SCALARS:
        return value
    if kind is FrozenMap:  # kept as it is, unwalked: a NUL sends it to the door's walk
        texts.append("\x00")
        return value
    if kind is dict or isinstance(value, Mapping):
        if depth > limit:
            raise InvalidEvent(_too_deep(path))
        frozen = {}
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidEvent(f"event data key {key!r} at {path} is not a string")
            texts.append(key)
            item_kind = type(item)
            if item_kind is str:
                texts.append(item)
            elif item_kind not in _PLAIN or (
                item_kind is int and not -_INT_BOUND < item < _INT_BOUND
            ):  # (an int too long is refused by the full check)
                item = _freeze(item, f"{path}.{key}", depth + 1, limit, texts)
            frozen[key] = item
        return FrozenMap(frozen)
    if kind is list or kind is tuple:
        if depth > limit:
            raise InvalidEvent(_too_deep(path))
        items = []
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind is str:
                texts.append(item)
            elif item_kind not in _PLAIN or (
                item_kind is int and not -_INT_BOUND < item < _INT_BOUND
            ):
                item = _freeze(item, f"{path}[{index}]", depth + 1, limit, texts)
            items.append(item)
        return tuple(items)
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
        return _freeze(base, path, depth, limit, texts)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, str):
        return _freeze(str.__str__(value), path, depth, limit, texts)
    if isinstance(value, int):  # bool is in _SCALARS: only int subclasses get here
        return _freeze(int.__int__(value), path, depth, limit, texts)  # its digits checked
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Decimal):
        return Decimal(value)
    raise InvalidEvent(
        f"event data value at {path} is a {type(value).__name__}; data holds str, int, "
        "float, bool, None, Decimal, date, datetime, lists and mappings"
    )


def _too_deep(path: str) -> str:
    return f"event data at {path} {_TOO_DEEP}"


def stored_data(data: Mapping[str, Any]) -> FrozenMap:
    """Event data read back from a store, frozen as :class:`Event` freezes it
    but without the door's limits: what a store holds was accepted when it
    was written, perhaps by an earlier version with other limits, and must
    still open.  O(size)."""
    frozen: FrozenMap = _freeze(data, "data", 1, sys.getrecursionlimit(), [])
    return frozen


def _data_fault(value: Any, depth: int) -> tuple[str, str] | None:
    """``(path, problem)`` of the first text or nesting fault in event data
    (``value``, a mapping or a list, is at level ``depth``; the path is
    relative to it), or None.  One pass, no copy: the check of the door.
    O(size); on the bulk path, so strings are checked inline and a
    message is only formatted for a fault."""
    if depth > MAX_DATA_DEPTH:
        return "", _TOO_DEEP
    kind = type(value)
    if kind is tuple or kind is list:
        pairs: Iterable[tuple[Any, Any]] = enumerate(value)
    elif kind is FrozenMap:
        pairs = value._data.items()
    else:
        pairs = value.items()
    sequence = kind is tuple or kind is list
    for key, item in pairs:
        if not sequence:
            if type(key) is not str:
                return "", f"has the key {key!r}, which is not a string"
            if "\x00" in key or not key.isascii():
                problem = text_problem(key)
                if problem is not None:
                    return "", f"has the key {key!r}, which {problem}"
        item_kind = type(item)
        if item_kind is str:
            if "\x00" in item or not item.isascii():
                problem = text_problem(item)
                if problem is not None:
                    return (f"[{key}]" if sequence else f".{key}"), problem
        elif item_kind is datetime or (isinstance(item, int) and item_kind is not bool):
            # The value rules of a leaf, for data the constructor did not
            # freeze (a FrozenMap built directly, a subclass inside one).
            problem = _leaf_problem(item)
            if problem is not None:
                return (f"[{key}]" if sequence else f".{key}"), problem
        elif item_kind not in _LEAVES and (
            item_kind is tuple or item_kind is list or isinstance(item, Mapping)
        ):
            fault = _data_fault(item, depth + 1)
            if fault is not None:
                return (f"[{key}]" if sequence else f".{key}") + fault[0], fault[1]
    return None


def _leaf_problem(item: Any) -> str | None:
    """What breaks the rule of a whole number (an int or a subclass) or a
    time (a datetime) in data, or None: the one rule of both the freezing
    walk and the door's.  A Decimal prints whatever its length, but Python
    will not print an int of more than 4,300 digits; a time's content id is
    computed in UTC, which near the calendar's ends does not exist.  O(1)."""
    if isinstance(item, int):
        if -_INT_BOUND < item < _INT_BOUND:
            return None
        return (
            f"has more than {MAX_INT_DIGITS:,} digits; a whole number in data may have at "
            "most that many"
        )
    if item.tzinfo is None or item.utcoffset() is None:
        return (
            f"is a naive datetime ({item.isoformat()}); give a time zone (the library never "
            "guesses one)"
        )
    if not 1 < item.year < 9999:
        try:
            utc(item)
        except InvalidTime:
            return f"({item.isoformat()}) is outside the supported times: {RANGE_RULE}"
    return None


_TOO_DEEP = (
    f"nests mappings and lists more than {MAX_DATA_DEPTH} levels deep (the data mapping is "
    "level 1), or holds itself"
)


#: Data values with no text and nothing inside: skipped by the door's walk.
_LEAVES = frozenset({int, float, bool, Decimal, date, datetime, type(None)})


#: The tags :meth:`Event.content` writes for the types JSON lacks, and the
#: keys a one-key data mapping would share with them: ``$decimal``,
#: ``$$decimal``, ``$$$decimal``… (likewise ``date`` and ``datetime``).
_TAG_LIKE = re.compile(r"\$+(?:decimal|datetime|date)")


def _plain(value: Any) -> Any:
    """Event data as JSON-ready values, tagging the types JSON lacks (for hashing).

    A ``Decimal`` is ``{"$decimal": text}`` (a date ``$date``, a datetime
    ``$datetime``).  So that no data can spell a tag, a mapping with one key
    of the form ``$…$decimal`` (``$date``, ``$datetime``) gets one more
    ``$``: ``{"$decimal": "1"}`` is written ``{"$$decimal": "1"}``, which no
    tag is.  Reading the text back is then unambiguous, so two different
    data values never share a content id; and every other mapping is
    written as before, so the content ids of stored events stay valid.
    """
    if isinstance(value, Mapping):
        plain = {key: _plain(item) for key, item in value.items()}
        if len(plain) == 1:
            ((key, item),) = plain.items()
            if key[:1] == "$" and _TAG_LIKE.fullmatch(key):
                return {"$" + key: item}
        return plain
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
    return freeze_data(value)


def freeze_data(value: Any) -> FrozenMap:
    """Event data as :class:`Event` keeps it: a read-only deep copy, marked
    clean when every key and string is plain ASCII without NUL (then
    :func:`prepare` need not walk it again).  ``InvalidEvent`` for what
    data cannot hold.  O(size)."""
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"event data {value!r} is not a mapping")
    texts: list[str] = []
    frozen: FrozenMap = _freeze(value, "data", 1, MAX_DATA_DEPTH, texts)
    # Every key and string at once: plain ASCII without NUL keeps the text
    # rule, and the door need not walk this data again.
    joined = "".join(texts)
    if joined.isascii() and "\x00" not in joined:
        object.__setattr__(frozen, "_clean", True)
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
    if kind is datetime:
        # Content keeps the UTC instant.  Compared as instants: ``==`` says
        # an hour repeated or skipped by a zone (fold=1, a gap) never equals
        # a time of another zone, such as the same time read back from a
        # stored text with a fixed offset.
        aware = a.utcoffset() is not None
        if aware != (b.utcoffset() is not None):
            return False
        return bool(a.astimezone(UTC) == b.astimezone(UTC)) if aware else bool(a == b)
    return bool(a == b)


def same_event(a: Event, b: Event) -> bool:
    """Whether two checked events have the same content (ids aside).  O(size of data)."""
    return (
        a.type == b.type
        # As instants, as content() does: PEP 495 makes a time in the hour
        # repeated by a DST change unequal to any time of another zone.
        and utc(a.at) == utc(b.at)
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
        raise InvalidEvent(f"{where} {_shown(value)} {rule}") from None
    if not number.is_finite():
        raise InvalidEvent(f"{where} {_shown(value)} {rule}")
    return number


def check_purchase(event: Event) -> None:
    """The purchase fields the indicators read, checked when recorded so
    that one malformed ticket can never break the indicators of everyone."""
    check_purchase_data(event.data, f"purchase {event.id or ''}".strip())


def check_purchase_data(data: Mapping[str, Any], name: str) -> None:
    """:func:`check_purchase` of a purchase's data; messages start with ``name``.
    O(items)."""
    if type(data) is FrozenMap and purchase_plain(data._data):
        return  # the common case, sure to pass: no message to name
    _check_purchase_fields(data, name)


def _check_purchase_fields(data: Mapping[str, Any], name: str) -> None:
    """Every rule of :func:`check_purchase_data`, in its order, naming the
    first one broken.  O(items)."""
    money = "is not a finite amount (Decimal, int or numeric text)"
    # Bulk loads check millions of purchases: the dicts are read directly,
    # a missing field or a plain string is passed over without a call, and
    # messages are only formatted for a bad value.
    get = plain_data(data).get
    amount = get("amount")
    if amount is not None:
        _money(amount, f"{name}: amount", money)
    for field in _LISTED:
        value = get(field)
        if value is not None and type(value) is not str:
            _check_strings(value, f"{name}: {field}")
    for field in _NAMED:
        value = get(field)
        if value is not None and type(value) is not str:
            _check_scalar(value, f"{name}: {field}")
    items = get("items")
    if items is None:
        return
    if not isinstance(items, tuple):
        raise InvalidEvent(f"{name}: items {items!r} must be a list of mappings")
    # Plain ints (the usual quantity) take a fast path.
    for index, item in enumerate(items):
        if type(item) is not FrozenMap and not isinstance(item, Mapping):
            raise InvalidEvent(f"{name}: items[{index}] {item!r} must be a mapping")
        item_get = plain_data(item).get
        quantity = item_get("quantity", 1)
        if type(quantity) is not int or quantity < 0:
            where = f"{name}: items[{index}].quantity"
            whole = _number(quantity, where, "must be a whole number >= 0")
            if whole != whole.to_integral_value() or whole < 0:
                raise InvalidEvent(f"{where} {quantity!r} must be a whole number >= 0")
        price = item_get("unit_price")
        if price is not None:
            _money(price, f"{name}: items[{index}].unit_price", money)
        line_total = item_get("line_total")  # what the offline-data importer writes
        if line_total is not None:
            _money(line_total, f"{name}: items[{index}].line_total", money)
        for field in _ITEM_NAMED:
            value = item_get(field)
            if value is not None and type(value) is not str:
                _check_scalar(value, f"{name}: items[{index}].{field}")
        seller = item_get("seller")
        if seller is not None and type(seller) is not str:
            _check_strings(seller, f"{name}: items[{index}].seller")


#: Money beyond this is no purchase, and sums of it would overflow Decimal's
#: default context, breaking kpis() for every profile.
MAX_MONEY = 10**24


#: The significant digits an amount may have: ``Decimal``'s default
#: precision, which the indicators add at; a longer amount would be rounded.
MONEY_DIGITS = 28


#: Both money rules in one C call: ``plus`` at 28 digits rounds (Inexact)
#: exactly when an amount has more significant digits, and overflows past an
#: adjusted exponent of 23, i.e. from ±10**24 on.  It only answers "fine";
#: anything it traps is judged again by the plain checks below.
_MONEY_RULES = Context(
    prec=MONEY_DIGITS, Emax=23, Emin=-999_999, traps=[Inexact, Overflow, InvalidOperation]
)


def _money(value: Any, where: str, rule: str) -> None:
    if type(value) is int:  # the bulk path: no Decimal built (and below 10**24, few digits)
        if -MAX_MONEY < value < MAX_MONEY:
            return
    else:
        # The bulk path, ~0.15 us instead of ~0.6 us (NaN and infinities
        # pass plus() untrapped, hence is_finite first).
        if type(value) is Decimal and value.is_finite():
            try:
                _MONEY_RULES.plus(value)
            except ArithmeticError:  # a rule broken, or a value plus() cannot judge
                pass
            else:
                return
        number = _number(value, where, rule)
        if -MAX_MONEY < number < MAX_MONEY:
            digits = number.as_tuple().digits
            if len(digits) <= MONEY_DIGITS or significant_digits(number) <= MONEY_DIGITS:
                return
            raise InvalidEvent(
                f"{where} {_shown(value)} has more than {MONEY_DIGITS} significant digits, the "
                "precision amounts are added at; it could not be kept exactly"
            )
    raise InvalidEvent(f"{where} {_shown(value)} is beyond ±10**24, which no purchase reaches")


def _shown(value: Any) -> str:
    """An amount as a person writes it (``1E+30``, not ``Decimal('1E+30')``)."""
    return str(value) if isinstance(value, Decimal) else repr(value)


def significant_digits(number: Decimal) -> int:
    """The digits of ``number``'s coefficient without its trailing zeros
    (``1.2300`` has 3): what an exact sum must keep of it.  O(digits)."""
    digits = number.as_tuple().digits
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    return end


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


def _money_plain(value: Any) -> bool:
    """Whether ``value`` keeps both money rules, answered only for the
    common types (an int, a finite Decimal); False means "ask
    :func:`_money`", which names the rule.  O(1)."""
    if type(value) is int:
        return -MAX_MONEY < value < MAX_MONEY
    if type(value) is Decimal and value.is_finite():
        try:
            _MONEY_RULES.plus(value)
        except ArithmeticError:
            return False
        return True
    return value is None


def _names_plain(value: Any) -> bool:
    """Whether a field of names passes as it is: None, a string or a tuple
    of strings."""
    return (
        value is None
        or type(value) is str
        or (type(value) is tuple and all(type(v) is str for v in value))
    )


def purchase_plain(data: dict[str, Any]) -> bool:
    """Whether a purchase's data (a frozen mapping's dict) certainly passes
    :func:`check_purchase_data`: a walk over the keys present only, with
    no message formatted.  False means "not sure": the full check then
    runs and names the fault, so this need only be right when it says
    yes.  O(fields + items × their fields)."""
    for key, value in data.items():
        if key == "amount":
            if not _money_plain(value):
                return False
        elif key == "items":
            if value is None:
                continue
            if type(value) is not tuple:
                return False
            for item in value:
                if type(item) is not FrozenMap:
                    return False
                for field, field_value in item._data.items():
                    if field == "quantity":
                        if type(field_value) is not int or field_value < 0:
                            return False
                    elif field == "unit_price" or field == "line_total":
                        if not _money_plain(field_value):
                            return False
                    elif field == "seller":
                        if not _names_plain(field_value):
                            return False
                    elif (
                        field in _ITEM_NAMED
                        and field_value is not None
                        and type(field_value) is not str
                    ):
                        return False
        elif key in _LISTED:
            if not _names_plain(value):
                return False
        elif key in _NAMED and value is not None and type(value) is not str:
            return False
    return True


def plain_data(mapping: Any) -> Any:
    """Stored event data (a ``FrozenMap``) as its dict, which answers ``get``
    without ``Mapping.get``'s caught ``KeyError``; anything else as it is."""
    # FrozenMap's own module: its dict is read directly, one call less per
    # event and per item on the bulk paths (recording, the indicators).
    return mapping._data if type(mapping) is FrozenMap else mapping


def event_type_ok(kind: object) -> bool:
    """Whether ``kind`` is a valid event type (what :func:`prepare` checks
    first; it names the rule broken).  O(len)."""
    return type(kind) is str and bool(kind) and not kind.isspace() and text_problem(kind) is None


def event_id_ok(event_id: object) -> bool:
    """Whether ``event_id`` (not None) is a valid event id: a non-empty
    string of at most ``MAX_EVENT_ID_LENGTH`` characters that keeps the text
    rule and does not look like an erased value's hash (:func:`prepare`
    names the rule broken).  O(len)."""
    if type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        return False
    if event_id.isascii() and "\x00" not in event_id:  # the common case
        plain = True
    else:
        plain = text_problem(event_id) is None
    return plain and not event_id.isspace() and not event_id.startswith(ERASED_PREFIX)


def data_keeps_rules(data: FrozenMap) -> bool:
    """Whether frozen event data keeps the text rule and the nesting bound
    (:func:`prepare` names the fault).  O(1) for data frozen clean, else O(size)."""
    return data._clean or not data or _data_fault(data, 1) is None


def build_event(
    kind: str,
    at: datetime,
    customer_id: CustomerId | None,
    links: tuple[Link, ...],
    data: FrozenMap,
    event_id: str | None,
) -> Event:
    """An :class:`Event` of parts checked already (a bulk path), without
    the constructor's converters, which would check and copy them again.
    The caller vouches for every part: ``links`` a tuple of ``Link``,
    ``data`` frozen by :func:`freeze_data`.  O(1)."""
    event = object.__new__(Event)
    setattr_ = object.__setattr__
    setattr_(event, "type", kind)
    setattr_(event, "at", at)
    setattr_(event, "customer_id", customer_id)
    setattr_(event, "links", links)
    setattr_(event, "data", data)
    setattr_(event, "id", event_id)
    return event


def plain_anchor(
    event: object,
    types: LinkTypes,
    registered: Container[CustomerId],
    kinds: dict[str, bool],
) -> Anchor | None:
    """The anchor of an event that :func:`prepare` would accept *as it is*
    (same object back: nothing to normalise, drop, log or register), or
    None when that is not certain; then :func:`prepare` decides and names
    any fault.  The bulk path of ``record_many``: no message, no copy, the
    data trusted unwalked only when :func:`freeze_data` marked it clean (a
    flag only the library's freezing sets).  ``kinds`` caches each type's
    verdict for a batch.  Erasures are not looked at: the caller takes this
    path only while nothing is suppressed.  O(links + purchase fields)."""
    if type(event) is not Event:
        return None
    kind, at, event_id, data = event.type, event.at, event.id, event.data
    if type(kind) is not str:
        return None
    kind_ok = kinds.get(kind)
    if kind_ok is None:
        kind_ok = kinds[kind] = event_type_ok(kind) and kind == kind.strip()
    if not kind_ok:
        return None
    if not (type(at) is datetime and at.tzinfo is UTC and 1 < at.year < 9999):
        return None
    if event_id is None or not event_id_ok(event_id):
        return None  # (no id: prepare derives it)
    if type(data) is not FrozenMap or not (data._clean or not data._data):
        return None
    if kind == "purchase" and not purchase_plain(data._data):
        return None
    customer = event.customer_id
    if customer is not None and (type(customer) is not str or customer not in registered):
        return None  # a new or unchecked customer id: prepare checks and registers it
    links = event.links
    if not links:
        return customer
    value_key = types.value_key
    previous: LinkKey | None = None
    for link in links:  # each normalised already, sorted, distinct: kept as given
        if type(link) is not Link:
            return None
        try:
            key = value_key(link.name, link.value)
        except (IdentityGraphError, TypeError, ValueError):
            return None
        if key != link.key or (previous is not None and not previous < key):
            return None
        previous = key
    if customer is not None:
        return customer
    if len(links) == 1:
        return links[0].key
    priority = types.priority_key
    return min((link.key for link in links), key=lambda key: (priority(key[0]), key[1]))


def prepare(
    event: object,
    types: LinkTypes,
    registered: Container[CustomerId],
    register_unknown: bool,
    drop_link: Callable[[datetime, str | None, Link, InvalidLink], object],
    suppression: Suppression | None = None,
) -> tuple[Event, Anchor]:
    """``event`` validated and normalised, with the anchor to file it under.

    Invalid or blocked links are dropped, each one passed to ``drop_link``
    (the facade logs it as a refusal).  Raises ``InvalidEvent``,
    ``UnknownCustomer`` (a customer not in ``registered`` unless
    ``register_unknown``) or ``ValueError`` (a naive time).  Texts must keep
    the rules of :mod:`identity_graph.text` and data nest at most
    ``MAX_DATA_DEPTH`` levels: checked here, once, whoever built the event.
    The anchor is the customer id, else the link of the highest priority.
    With a ``suppression`` list, an erased link is dropped like an invalid
    one (logged by its hash) and an erased customer id raises
    ``SuppressedLink``, as does an event left with nothing but erased links.
    O(links + data).
    """
    if type(event) is not Event:
        raise InvalidEvent(f"{event!r} is not an Event")
    kind, at, event_id = event.type, event.at, event.id
    name = event_id or kind
    if type(kind) is not str or not kind or kind.isspace():
        raise InvalidEvent(f"event type {kind!r} must be a non-empty string")
    problem = text_problem(kind)
    if problem is not None:
        raise InvalidEvent(f"event type {kind!r} {problem}")
    if not (type(at) is datetime and at.tzinfo is UTC and 1 < at.year < 9999):  # else check it
        if not isinstance(at, datetime):
            raise InvalidEvent(f"event {name!r}: at={at!r} is not a datetime")
        utc(at, f"event {name!r}: at")
    if event_id is not None and (
        type(event_id) is not str
        or not event_id
        or event_id.isspace()
        or len(event_id) > MAX_EVENT_ID_LENGTH
    ):  # the rules of event_id_ok, each named
        raise InvalidEvent(
            f"event id {event_id!r} must be a non-empty string of at most "
            f"{MAX_EVENT_ID_LENGTH} characters"
        )
    if event_id is not None:
        problem = text_problem(event_id)
        if problem is not None:
            raise InvalidEvent(f"event id {event_id!r} {problem}")
        if event_id.startswith(ERASED_PREFIX):
            raise InvalidEvent(f"event id {event_id[:40]!r} {ERASED_RULE}")
    data = event.data
    # Data an Event froze from plain ASCII text needs no second walk.
    clean = type(data) is FrozenMap and data._clean
    fault = None if clean or not data else _data_fault(data, 1)
    if fault is not None:
        raise InvalidEvent(f"event {name!r}: data{fault[0]} {fault[1]}")
    keys: list[LinkKey] = []
    erased: SuppressedLink | None = None
    for link in event.links:
        try:
            key = types.key(link)
        except InvalidLink as error:
            drop_link(at, event_id, link, error)
            continue
        if suppression is not None:
            refused = suppression.link(key)
            if refused is not None:
                types.forget_recent(link)  # the erased value stays out of the cache
                drop_link(at, event_id, refused.shown["link"], refused)  # type: ignore[arg-type]
                erased = refused
                continue
        if key not in keys:
            keys.append(key)
    customer = event.customer_id
    if customer is not None and customer not in registered:
        try:
            customer = check_customer_id(customer)
        except IdentityGraphError as error:
            raise InvalidEvent(f"event {name!r}: {error}") from None
        if suppression is not None:
            refused = suppression.customer(customer)
            if refused is not None:
                raise refused
        if customer not in registered and not register_unknown:
            raise UnknownCustomer(
                f"event {name!r} names customer {customer!r}, which is not registered "
                "(IdentityGraph(register_unknown=True) registers it)"
            )
    if customer is None and not keys:
        if erased is not None:
            raise erased
        raise InvalidEvent(
            f"event {name!r} has no customer id and no valid link left to identify it"
        )
    if kind == "purchase" or kind.strip() == "purchase":  # " purchase " is one too
        check_purchase(event)
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
        priority = types.priority_key
        anchor = min(keys, key=lambda key: (priority(key[0]), key[1]))
    return normalised, anchor
