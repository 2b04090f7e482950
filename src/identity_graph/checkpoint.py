"""A graph's state in a compact columnar form, for checkpoints.

A store keeps the journal forever, but opening a store must not replay the
whole journal: a checkpoint holds the state after entry ``seq`` (customers
in registration order, attributes, every link's change points, every merge,
the guards' frozen links and move times, the suppression list) and opening
replays only the entries after it.  Events and refusals are not in it; the
stores keep them in tables of their own.

Format 4 (written since the bulk work) is built for opening a store of
millions of customers in about a second.  Its bytes are zlib-compressed::

    header (compact JSON, one line) "\n" part 1 part 2 ...

The header holds the format, the seq, what is small (merges, guards,
suppression list, the multi-point link histories and multi-link claims)
and, for each large part, its kind, item count and byte length.  A part is
either **text** (UTF-8 strings joined by newlines: customer ids, link
values; neither can hold a control character, and a list whose strings do
is written as JSON instead) or a little-endian **array** of 32- or 64-bit
integers (indexes and seqs).  Every customer and link is named by its index
in the customer list and the link list, and every time by its index in one
table of distinct times, so a customer id, a link key and a time are each
one Python object shared by everything that names them, as in a live graph.

Restoring is bulk work in C: ``str.split``, ``array.frombytes``,
``dict.update(zip(...))`` and ``map(list.__getitem__, indexes)`` build the
registration order, the link histories and the claims without a Python
loop per customer; only the rare links with several change points,
customers with several claims, attributes and merges take a loop.  A damaged
part (a wrong length, an index out of range) raises ``ValueError`` and the
store reports the row; zlib's checksum catches garbled bytes.

Formats 2 and 3 (parallel JSON lists, one ISO string per time) are still
read.  Capture and restore are O(state).  A checkpoint is an encoding, not a
store: the stores keep its bytes without reading them.
"""

from __future__ import annotations

import gc
import itertools
import json
import operator
import sys
import zlib
from array import array
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import codec
from . import history as hist
from .resolution import Merge

if TYPE_CHECKING:
    from .ids import LinkKey
    from .state import GraphState

__all__ = [
    "FORMAT",
    "OLDER",
    "READABLE",
    "Damaged",
    "capture",
    "dumps",
    "encode",
    "loads",
    "restore",
]

#: Bumped whenever the layout changes.  A checkpoint of an older format
#: (:data:`OLDER`) is skipped and the journal replayed instead, so an upgrade
#: never misreads one; any other format is damage (or the work of a newer
#: library) and refuses to open.
FORMAT = 4
#: Earlier formats this version still restores (2 has no suppression list:
#: it was written before ``forget`` existed, so the list was empty; 2 and 3
#: are parallel JSON lists).
READABLE = (2, 3, FORMAT)
#: The formats earlier versions wrote that are skipped (the journal is replayed).
OLDER = range(1, 2)

_PLAIN = (str, int, bool, type(None))


class Damaged(ValueError):
    """Checkpoint bytes that break this module's own layout; the message
    says how (the store names the row)."""


#: Array part kinds: their typecode (chosen by size, the same on every
#: platform the library runs on) and width in bytes.
_ARRAYS = {"u4": ("I", 4), "u8": ("Q", 8)}
#: Indexes are unsigned (so none can count from a list's end), seqs too.
_INDEX, _SEQ = "I", "Q"
for _kind, (_code, _width) in _ARRAYS.items():
    assert array(_code).itemsize == _width, f"array {_code!r} is not {_width} bytes here"
_SWAP = sys.byteorder != "little"
#: The separator of text parts: no customer id or link value holds it.
_SEP = "\n"


def _value(value: Any) -> Any:
    return value if type(value) in _PLAIN else codec.encode(value)


def _unvalue(value: Any) -> Any:
    return codec.decode(value) if type(value) is dict else value


# ------------------------------------------------------------------ capture


class _Times:
    """The table of distinct times: each time's index, by its ISO text (so
    two equal instants at different offsets stay apart, as they were)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def indexes(self, times: Any) -> array[int]:
        """The indexes of ``times``, adding the new ones.  O(n); in C when
        the table is empty (the change points come first)."""
        index = self.index
        isos = list(map(datetime.isoformat, times))
        if not index:
            index.update(zip(dict.fromkeys(isos), itertools.count()))
        else:
            for iso in isos:
                index.setdefault(iso, len(index))
        return array(_INDEX, map(index.__getitem__, isos))


def capture(state: GraphState) -> dict[str, Any]:
    """The state after its last journal entry, as the parts of a format-4
    checkpoint (lists of strings, arrays, small JSON data).  O(state)."""
    order = state.order
    customers = list(order)
    times = _Times()
    ownership = state.ownership

    # Links: each link's first change point in the columns; the points
    # after it (a link that changed hands) in the header.
    keys = list(ownership.links())
    histories = list(map(itemgetter(1), ownership.items()))
    names = list(dict.fromkeys(map(itemgetter(0), keys)))
    name_index = {name: i for i, name in enumerate(names)}
    later: list[list[Any]] = []
    firsts = histories
    if any(type(h) is not tuple for h in histories):
        firsts = []
        for i, history in enumerate(histories):
            if type(history) is tuple:
                firsts.append(history)
            else:
                first, *rest = hist.points(history)
                firsts.append(first)
                later.append([i, [[at.isoformat(), owner, seq] for at, owner, seq in rest]])
    del histories
    # An owner's index plus one; 0 is nobody (an unlinked link).
    owners = list(map(itemgetter(1), firsts))
    places = list(map(order.get, owners))
    if places.count(None) != owners.count(None):
        raise ValueError("a link's change point names a customer that is not registered")
    places = [-1 if place is None else place for place in places]
    p_owner = array(_INDEX, map(operator.add, places, itertools.repeat(1)))
    del owners, places
    p_at = times.indexes(map(itemgetter(0), firsts))
    p_seq = array(_SEQ, map(itemgetter(2), firsts))
    del firsts

    # Claims: each claimant's one link by index; several (or a link without
    # a history) in the header.
    link_index = dict(zip(keys, itertools.count()))
    one, keyed, several = ownership.saved_claims()
    found: list[Any] = list(map(link_index.get, keyed))
    if None in found:  # a claimed link without a history: kept by its key
        several.extend((c, (k,)) for c, k, i in zip(one, keyed, found, strict=True) if i is None)
        one = [c for c, i in zip(one, found, strict=True) if i is not None]
        found = [i for i in found if i is not None]
    c_customer = array(_INDEX, map(order.__getitem__, one))
    c_link = array(_INDEX, found)
    claims = [[c, [link_index.get(k, list(k)) for k in held]] for c, held in several]
    del link_index, one, keyed, found

    a_customer = array(_INDEX)
    a_name: list[str] = []
    a_value: list[Any] = []
    a_times: list[datetime] = []
    a_seq = array(_SEQ)
    for customer, values in state.with_attributes():
        for name, (value, at, seq) in values.items():
            a_customer.append(order[customer])
            a_name.append(name)
            a_value.append(_value(value))
            a_times.append(at)
            a_seq.append(seq)
    a_at = times.indexes(a_times)
    guards = state.guards.save()
    return {
        "format": FORMAT,
        "seq": len(state.journal),
        # Columns (large): text lists and integer arrays.
        "customers": customers,
        "values": list(map(itemgetter(1), keys)),
        "times": list(times.index),
        "link_name": array(_INDEX, map(name_index.__getitem__, map(itemgetter(0), keys))),
        "p_at": p_at,
        "p_owner": p_owner,
        "p_seq": p_seq,
        "c_customer": c_customer,
        "c_link": c_link,
        "a_customer": a_customer,
        "a_at": a_at,
        "a_seq": a_seq,
        # Small, or rare: JSON in the header.
        "names": names,
        "later": later,
        "claims": claims,
        "a_name": a_name,
        "a_value": a_value,
        "merges": [
            [m.id, m.a, m.b, m.reason, m.at.isoformat(), m.seq, m.active]
            for m in sorted(state.partition.merges.values(), key=lambda m: m.seq)
        ],
        "frozen": guards["frozen"],
        "moves": guards["moves"],
        # The suppression list: keyed hashes only (the secret is not here).
        "s_customers": sorted(state.suppression.customers),
        "s_links": [list(key) for key in sorted(state.suppression.links)],
        "s_events": sorted(state.suppression.events),
    }


#: The parts kept out of the header, in the order they follow it.
_TEXTS = ("customers", "values", "times")
_COLUMNS = (
    "link_name",
    "p_at",
    "p_owner",
    "p_seq",
    "c_customer",
    "c_link",
    "a_customer",
    "a_at",
    "a_seq",
)


def _text_part(items: list[str]) -> tuple[str, bytes]:
    joined = _SEP.join(items)
    if joined.count(_SEP) == max(len(items) - 1, 0) and not (len(items) == 1 and not joined):
        return "text", joined.encode()
    # A string holds the separator (or the list is one empty string): JSON.
    return "json", json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


def encode(saved: dict[str, Any]) -> bytes:
    """The bytes of a format-4 checkpoint whose parts are ``saved`` (what
    :func:`capture` gives, or :func:`loads` read).  O(state)."""
    # A part that is not a list of strings or an array (only a test
    # damaging a checkpoint makes one) goes into the header as it is.
    texts = [key for key in _TEXTS if type(saved.get(key)) is list]
    columns = [key for key in _COLUMNS if type(saved.get(key)) is array]
    header = {key: value for key, value in saved.items() if key not in (*texts, *columns)}
    parts: list[list[Any]] = []
    blobs: list[bytes] = []
    for key in texts:
        kind, blob = _text_part(saved[key])
        parts.append([key, kind, len(saved[key]), len(blob)])
        blobs.append(blob)
    for key in columns:
        column = saved[key]
        kind = "u8" if column.itemsize == 8 else "u4"
        if _SWAP:
            column = array(column.typecode, column)
            column.byteswap()
        blob = column.tobytes()
        parts.append([key, kind, len(column), len(blob)])
        blobs.append(blob)
    header["parts"] = parts
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    compressor = zlib.compressobj(1)
    chunks = [compressor.compress(text.encode()), compressor.compress(b"\n")]
    for blob in blobs:
        chunks.append(compressor.compress(blob))
    chunks.append(compressor.flush())
    return b"".join(chunks)


def dumps(state: GraphState) -> bytes:
    """The checkpoint of ``state`` (format :data:`FORMAT`).  O(state)."""
    return encode(capture(state))


# ------------------------------------------------------------------ reading


def loads(data: bytes) -> dict[str, Any]:
    """The parts of a checkpoint's bytes, any readable format (before
    :func:`restore`).  ``ValueError`` (or zlib's, JSON's error) if they are
    not a checkpoint's.  O(size)."""
    body = zlib.decompress(data)
    # Compact JSON holds no raw newline: formats 2 and 3 are one JSON
    # object, format 4 a one-line header and its parts.
    end = body.find(b"\n")
    if end < 0:
        saved: dict[str, Any] = json.loads(body)
        return saved
    saved = json.loads(body[:end])
    if type(saved) is not dict or type(saved.get("parts")) is not list:
        raise Damaged("its header lists no parts")
    view = memoryview(body)
    start = end + 1
    for part in saved.pop("parts"):
        key, kind, count, size = part
        blob = view[start : start + size]
        start += size
        if len(blob) != size:
            raise Damaged(f"its part {key!r} is cut short")
        if kind in _ARRAYS:
            code, width = _ARRAYS[kind]
            if size != count * width:
                raise Damaged(f"its part {key!r} holds {size} bytes, not {count} items")
            column = array(code)
            column.frombytes(blob)
            if _SWAP:
                column.byteswap()
            saved[key] = column
        elif kind == "text":
            items = str(blob, "utf-8").split(_SEP) if size or count == 1 else []
            if len(items) != count:
                raise Damaged(f"its part {key!r} holds {len(items)} strings, not {count}")
            saved[key] = items
        elif kind == "json":
            items = json.loads(bytes(blob))
            if type(items) is not list or len(items) != count:
                raise Damaged(f"its part {key!r} is not a list of {count} strings")
            saved[key] = items
        else:
            raise Damaged(f"its part {key!r} is of an unknown kind {kind!r}")
        del blob
    if start != len(body):
        raise Damaged("it holds bytes after its last part")
    return saved


def restore(state: GraphState, saved: dict[str, Any]) -> int:
    """Load ``saved`` (what :func:`loads` gave) into a new, empty ``state``;
    return the journal seq it stands at.  O(state)."""
    fmt = saved.get("format")
    if fmt not in READABLE:
        raise ValueError(f"checkpoint format {fmt!r} is not one of {READABLE}")
    # Millions of new tuples would set off the cycle collector again and
    # again, each time walking every object built so far; none of them can
    # form a cycle, so it waits until the state is built.
    paused = gc.isenabled()
    gc.disable()
    try:
        if fmt == FORMAT:
            try:
                _restore_columns(state, saved)
            except IndexError as error:  # a list looked up past its end
                raise Damaged("an index in it names an item beyond its list") from error
        else:
            _restore_lists(state, saved)
    finally:
        if paused:
            gc.enable()
    return int(saved["seq"])


def _restore_columns(state: GraphState, saved: dict[str, Any]) -> None:
    """Format 4.  An index out of range raises ``IndexError`` as it is
    looked up (the arrays are unsigned: none counts from a list's end)."""
    customers: list[str] = saved["customers"]
    values: list[str] = saved["values"]
    when = datetime.fromisoformat
    times = list(map(when, saved["times"]))
    n_customers, n_links = len(customers), len(values)

    # The registration indexes are ints the graph keeps; the seqs below the
    # number of customers share them (memory: otherwise a million one-link
    # customers keep a million more ints).
    numbers = list(range(n_customers))
    state.restore_customers(customers, numbers)
    if len(state.order) != n_customers:
        raise Damaged("its customer list names a customer twice")
    last = int(saved["seq"])

    def seqs(column: array[int]) -> Any:
        top = max(column, default=0)
        if top > last:
            raise Damaged(f"its seqs go beyond {last}, the entry it stands after")
        if top >= len(numbers):
            if top > 4 * n_customers + 1000:  # a long journal: share what can be
                return [numbers[s] if s < n_customers else s for s in column]
            numbers.extend(range(len(numbers), top + 1))
        return map(numbers.__getitem__, column)

    # The link name strings: one object per name, as in a live graph.
    names = [sys.intern(name) for name in saved["names"]]
    keys = list(zip(map(names.__getitem__, saved["link_name"]), values, strict=True))
    del values
    owners = [None, *customers]  # index 0: nobody
    points = zip(
        map(times.__getitem__, saved["p_at"]),
        map(owners.__getitem__, saved["p_owner"]),
        seqs(saved["p_seq"]),
        strict=True,
    )
    ownership = state.ownership
    ownership.restore_many(keys, points)
    del owners, points
    if len(ownership) != n_links:
        raise Damaged("its link list names a link twice")
    for index, rest in saved["later"]:
        key = keys[index]
        first = hist.points(ownership.history(key))  # type: ignore[arg-type]
        more = [(when(at), owner, int(seq)) for at, owner, seq in rest]
        if not more:
            raise Damaged("it lists a link with no later change point")
        ownership.restore(key, [*first, *more])

    ownership.restore_claims_many(
        map(customers.__getitem__, saved["c_customer"]), map(keys.__getitem__, saved["c_link"])
    )
    for customer, held in saved["claims"]:
        ownership.restore_claims(
            customer, [keys[k] if type(k) is int else (k[0], k[1]) for k in held]
        )

    restore_attribute = state.restore_attribute
    for customer, name, value, at, set_by in zip(
        map(customers.__getitem__, saved["a_customer"]),
        saved["a_name"],
        saved["a_value"],
        map(times.__getitem__, saved["a_at"]),
        seqs(saved["a_seq"]),
        strict=True,
    ):
        restore_attribute(customer, name, (_unvalue(value), at, set_by))
    _restore_rest(state, saved)


def _restore_rest(state: GraphState, saved: dict[str, Any]) -> None:
    """Merges, guards and the suppression list (every format)."""
    when = datetime.fromisoformat
    partition = state.partition
    for merge_id, a, b, reason, at, seq, active in saved["merges"]:
        merge = Merge(merge_id, a, b, reason, when(at), seq)
        if active:
            partition.union(merge)
        else:
            merge.active = False
            partition.merges[merge_id] = merge
    state.guards.restore({"frozen": saved["frozen"], "moves": saved["moves"]})
    if saved["format"] >= 3:
        suppression = state.suppression
        suppression.customers.update(saved["s_customers"])
        suppression.links.update((name, value) for name, value in saved["s_links"])
        suppression.events.update(saved["s_events"])


def _restore_lists(state: GraphState, saved: dict[str, Any]) -> None:
    """Formats 2 and 3: parallel JSON lists, one ISO string per time."""
    when = datetime.fromisoformat
    state.restore_customers(saved["order"])
    for customer, name, value, at, seq in zip(
        saved["a_customer"],
        saved["a_name"],
        saved["a_value"],
        saved["a_at"],
        saved["a_seq"],
        strict=True,
    ):
        state.restore_attribute(customer, name, (_unvalue(value), when(at), seq))

    ownership = state.ownership
    # Bound once: opening a store of millions of links runs these per link.
    restore_point, restore_points = ownership.restore_point, ownership.restore
    restore_claim, restore_claims = ownership.restore_claim, ownership.restore_claims
    names: dict[str, str] = {}  # one string object per link name, as in a live graph
    interned: dict[LinkKey, LinkKey] = {}
    p_at, p_owner, p_seq = saved["p_at"], saved["p_owner"], saved["p_seq"]
    index = 0
    for name, value, count in zip(saved["h_name"], saved["h_value"], saved["h_count"], strict=True):
        known = names.get(name)
        if known is None:
            known = names[name] = sys.intern(name)
        key: LinkKey = (known, value)
        if count == 1:  # most links: one bare point
            restore_point(key, (when(p_at[index]), p_owner[index], p_seq[index]))
        else:
            points = [(when(p_at[i]), p_owner[i], p_seq[i]) for i in range(index, index + count)]
            restore_points(key, points)
        index += count
        interned[key] = key
    # The graph shares one key tuple per link between its history and the
    # claims; so do we (memory).
    c_name, c_value = saved["c_name"], saved["c_value"]
    index = 0
    for customer, count in zip(saved["c_customer"], saved["c_count"], strict=True):
        if count == 1:
            pair = (c_name[index], c_value[index])
            restore_claim(customer, interned.get(pair, pair))
        else:
            pairs = [(c_name[i], c_value[i]) for i in range(index, index + count)]
            restore_claims(customer, [interned.get(pair, pair) for pair in pairs])
        index += count
    _restore_rest(state, saved)
