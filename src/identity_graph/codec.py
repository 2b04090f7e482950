"""Typed JSON for what the stores keep: journal records, events, refusals, state.

JSON alone would turn tuples into lists, datetimes into strings and
``Decimal`` into floats; a stored journal must give back *equal* values, or a
replay would not equal the graph that wrote it.  Every non-JSON value is
therefore written as a one-key object whose key names its type::

    tuple       {"t": [...]}           datetime  {"dt": "2024-01-01T00:00:00+00:00"}
    mapping     {"m": [[k, v], ...]}   date      {"d": "2024-01-01"}
    Link        {"l": [name, value]}   Decimal   {"n": "12.50"}
    Event       {"e": {...fields}}     timedelta {"td": [days, seconds, microseconds]}
    anything else (a refused call's odd argument): {"r": repr(value)}

Plain JSON objects never appear, so a tag cannot be mistaken for data.  An
aware datetime comes back with a fixed offset (``timezone(offset)``), equal
to the original instant; a ``zoneinfo`` name is not kept.  The output is
compact (no spaces) and deterministic (mapping order is kept).

Encoding and decoding are O(size of the value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .events import Event, FrozenMap, stored_data
from .ids import Link
from .text import text_problem

__all__ = [
    "decode",
    "dumps",
    "dumps_anchor",
    "dumps_event",
    "dumps_refused",
    "encode",
    "event_head",
    "event_type",
    "loads",
    "loads_anchor",
    "loads_event",
]

_PLAIN = (str, int, float, bool, type(None))


def encode(value: Any) -> Any:
    """``value`` as plain JSON-able data with type tags."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is tuple:
        return {"t": [encode(v) for v in value]}
    if kind is datetime:
        return {"dt": value.isoformat()}
    if kind is Link:
        return {"l": [value.name, value.value]}
    if isinstance(value, Mapping):
        return {"m": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, timedelta):
        return {"td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Event):
        return {
            "e": {
                "type": value.type,
                "at": encode(value.at),
                "customer_id": value.customer_id,
                "links": [[link.name, link.value] for link in value.links],
                "data": encode(value.data),
                "id": value.id,
            }
        }
    if isinstance(value, tuple):
        return {"t": [encode(v) for v in value]}
    if isinstance(value, str):  # subclasses (str-based enums and ids) as the plain value
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return {"r": repr(value)}


def _decode_tagged(tag: str, body: Any) -> Any:
    if tag == "t":
        return tuple(decode(v) for v in body)
    if tag == "dt":
        return datetime.fromisoformat(body)
    if tag == "m":
        return {decode(k): decode(v) for k, v in body}
    if tag == "l":
        return Link(body[0], body[1])
    if tag == "n":
        return Decimal(body)
    if tag == "d":
        return date.fromisoformat(body)
    if tag == "td":
        return timedelta(days=body[0], seconds=body[1], microseconds=body[2])
    if tag == "e":
        return Event(
            body["type"],
            at=decode(body["at"]),
            customer_id=body["customer_id"],
            links=tuple(Link(name, value) for name, value in body["links"]),
            # Frozen without the door's limits: a store may hold what an
            # earlier version accepted, and must still open.
            data=stored_data(decode(body["data"])),
            id=body["id"],
        )
    if tag == "r":
        return body
    raise ValueError(f"stored value tagged {tag!r} is not one this library writes")


def decode(value: Any) -> Any:
    """The value :func:`encode` was given (see the module notes for datetimes)."""
    if type(value) is dict:
        ((tag, body),) = value.items()
        return _decode_tagged(tag, body)
    if type(value) is list:
        return [decode(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``encode`` then compact JSON text."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def dumps_refused(value: Any) -> str:
    """:func:`dumps` for what a refused call was given, which may be the very
    text the door refused: lone surrogates (which no store can write) are
    then kept as JSON escapes (``\\ud800``), which :func:`loads` reads back
    as they were.  NUL is a JSON escape already.  O(size)."""
    text = dumps(value)
    if not text.isascii() and text_problem(text) is not None:
        return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=True)
    return text


def loads(text: str | bytes) -> Any:
    """Inverse of :func:`dumps`."""
    return decode(json.loads(text))


# --------------------------------------------------------------------------
# Events: the ledger's bulk path.
#
# An event's data holds only str-keyed mappings, tuples and scalars, and the
# Event converter turns lists back into tuples, so it can be written by the
# C JSON encoder with a ``default`` hook for the few non-JSON types instead of
# walking it in Python: about three times faster on a typical ticket.  Tags
# are one-key objects whose key is NUL and a letter ("\u0000n" for a Decimal).
# Only a data mapping with exactly one key that *is* such a tag could be
# mistaken for one; ``_default`` sees every data mapping (a FrozenMap is not
# a dict, so the encoder asks it), spots that case, and the event is then
# written with the general codec above, marked by a leading "T".  NULs
# elsewhere in keys or values are plain JSON escapes and harmless.

_TAGS = frozenset({"\x00n", "\x00dt", "\x00d"})


class _Ambiguous(Exception):
    """A data mapping that would read back as a tag."""


def _default(value: Any) -> Any:
    if type(value) is FrozenMap:
        data = value.as_dict()
        if len(data) == 1 and next(iter(data)) in _TAGS:
            raise _Ambiguous
        return data
    if isinstance(value, Decimal):
        return {"\x00n": str(value)}
    if isinstance(value, datetime):
        return {"\x00dt": value.isoformat()}
    if isinstance(value, date):
        return {"\x00d": value.isoformat()}
    raise TypeError(f"event data value {value!r} cannot be stored")


def _tuple(items: list[Any]) -> tuple[Any, ...]:
    return tuple([_tuple(v) if type(v) is list else v for v in items])


def _hook(obj: dict[str, Any]) -> Any:
    """Decode one JSON object of event data: a tag, or a mapping frozen as the
    ledger freezes it (lists as tuples), so no second pass is needed."""
    if len(obj) == 1:
        ((key, body),) = obj.items()
        if key in _TAGS:
            if key == "\x00n":
                return Decimal(body)
            if key == "\x00dt":
                return datetime.fromisoformat(body)
            if key == "\x00d":
                return date.fromisoformat(body)
    for key, value in obj.items():
        if type(value) is list:
            obj[key] = _tuple(value)
    return FrozenMap(obj)


_EVENT_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)
_PLAIN_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder(object_hook=_hook)


def dumps_event(event: Event, at_text: str | None = None) -> str:
    """One recorded event as compact text (see the notes above).  O(size).

    ``at_text``: ``event.at.isoformat()`` when the caller has it already.
    """
    try:
        return _EVENT_ENCODER.encode(
            [
                event.type,
                at_text or event.at.isoformat(),
                event.customer_id,
                [[link.name, link.value] for link in event.links],
                event.data,
                event.id,
            ]
        )
    except _Ambiguous:
        return "T" + dumps(event)


def loads_event(text: str) -> Event:
    """Inverse of :func:`dumps_event`."""
    if text[:1] == "T":
        general = loads(text[1:])
        if type(general) is not Event:
            raise ValueError(f"stored event {text[:60]!r} is not an event")
        return general
    kind, at, customer_id, links, data, event_id = _DECODER.decode(text)
    # The row was written from an event the ledger had checked and frozen, and
    # the decoder above rebuilt its data frozen: skip Event's converters,
    # which would check and copy it all again (a third of the time to open).
    event = object.__new__(Event)
    for name, value in (
        ("type", kind),
        ("at", datetime.fromisoformat(at)),
        ("customer_id", customer_id),
        ("links", tuple([Link(name, value) for name, value in links])),
        ("data", data),
        ("id", event_id),
    ):
        object.__setattr__(event, name, value)
    return event


# The decoder's C scanner: (text, index) -> (value, end); typeshed omits it.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def event_head(text: str) -> tuple[str, str, str | None, list[list[str]], str] | None:
    """The ``(type, at text, customer id, [[name, value], ...] links, id)`` of
    an event's text (:func:`dumps_event`) without decoding its data, or None
    for text in the general form (a leading "T"), which only
    :func:`loads_event` reads.  ``ValueError`` when the text does not have
    the shape :func:`dumps_event` writes.  O(size of those parts): the data
    between them is skipped, not parsed (so it is not checked either).
    """
    if text[:1] == "T":
        return None
    # Inline, not in helpers: this runs once per event row a store loads.
    try:
        if text[:1] != "[" or text[-1:] != "]":
            raise ValueError("not a JSON array")
        kind, i = _SCAN(text, 1)
        if text[i : i + 1] != ",":
            raise ValueError(f"a comma expected at character {i}")
        at, i = _SCAN(text, i + 1)
        if text[i : i + 1] != ",":
            raise ValueError(f"a comma expected at character {i}")
        customer_id, i = _SCAN(text, i + 1)
        if text[i : i + 1] != ",":
            raise ValueError(f"a comma expected at character {i}")
        links, i = _SCAN(text, i + 1)
        if text[i : i + 1] != ",":
            raise ValueError(f"a comma expected at character {i}")
        # The id is the last element.  Inside a JSON string every quote is
        # escaped, so the last ',"' opens it, unless the id itself ends in a
        # comma (then that quote closes it, and the scan from it fails).
        start = text.rfind(',"', i)
        try:
            event_id, end = _SCAN(text, start + 1) if start > 0 else (None, 0)
        except (StopIteration, ValueError):  # an unterminated string: not the id
            end = 0
        if end != len(text) - 1:
            event_id, end = _SCAN(text, _last_string(text, i))
    except StopIteration as stop:
        raise ValueError(f"no JSON value at character {stop.value}") from None
    if end != len(text) - 1 or type(event_id) is not str:
        raise ValueError(f"the text does not end with the event id (character {end})")
    if type(kind) is not str or type(at) is not str or type(links) is not list:
        raise ValueError("its type, time or links are not of their types")
    if customer_id is not None and type(customer_id) is not str:
        raise ValueError("its customer id is not text")
    for link in links:
        if type(link) is not list or len(link) != 2:
            raise ValueError("a link is not a [name, value] pair")
    return kind, at, customer_id, links, event_id


def _last_string(text: str, after: int) -> int:
    """Where the string that ends ``text`` (before its closing bracket)
    starts: its opening quote is the first quote before the closing one
    not escaped by a backslash (a JSON string holds no other), so the data
    before it need not be read.  O(length of that string)."""
    quote = len(text) - 2
    if text[quote : quote + 1] != '"':
        raise ValueError("the event id does not end the text")
    start = quote
    while True:
        start = text.rfind('"', after, start)
        if start < 0:
            raise ValueError("no event id at the end")
        slashes = start
        while text[slashes - 1] == "\\":
            slashes -= 1
        if (start - slashes) % 2 == 0:
            break
    if text[start - 1] != ",":
        raise ValueError(f"a comma expected at character {start - 1}")
    return start


def event_type(text: str) -> str:
    """The type of an event's text, reading nothing else.  O(len(type))."""
    if text[:1] == "T":
        return loads_event(text).type
    kind: str = _SCAN(text, 1)[0]
    return kind


def dumps_anchor(anchor: str | tuple[str, str]) -> str:
    """An event's anchor (a customer id or a link key) as JSON text."""
    return _PLAIN_ENCODER.encode(anchor)


def loads_anchor(text: str) -> str | tuple[str, str]:
    """Inverse of :func:`dumps_anchor`."""
    anchor = json.loads(text)
    return anchor if type(anchor) is str else (anchor[0], anchor[1])
