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
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .ids import Link
from .ledger import Event

__all__ = ["decode", "dumps", "encode", "loads"]

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
            data=decode(body["data"]),
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


def loads(text: str | bytes) -> Any:
    """Inverse of :func:`dumps`."""
    return decode(json.loads(text))
