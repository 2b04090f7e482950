"""A graph's state as compact JSON, for checkpoints.

A store keeps the journal forever, but opening a store must not replay the
whole journal: a checkpoint holds the state after entry ``seq`` (customers
in registration order, attributes, every link's change points, every merge,
the guards' frozen links and move times) and opening replays only the
entries after it.  Events and refusals are not in it; the stores keep them
in tables of their own.

The layout is **columnar**: parallel lists of strings and integers (one
list of link names, one of values, one of point times…), so that the C JSON
encoder and decoder do nearly all the work and a million links cost a few
million list items rather than millions of small tagged objects.  Times are
ISO strings; attribute values that JSON cannot hold are tagged by
:mod:`identity_graph.codec` (a tagged value is an object, a plain one never
is, so the two cannot be confused).

The state is rebuilt through :class:`~identity_graph.state.GraphState`'s
own restoring methods (``Partition.union`` for merges, ``Guards.restore``
for the guards), so a restored graph equals the one that was captured — the
contract suite checks it.  Capture and restore are O(state).  A checkpoint
is an encoding, not a store: the stores keep its bytes without reading them.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import codec
from . import history as hist
from .resolution import Merge

if TYPE_CHECKING:
    from .ids import LinkKey
    from .state import GraphState

__all__ = ["FORMAT", "OLDER", "READABLE", "capture", "dumps", "loads", "restore"]

#: Bumped whenever the layout below changes.  A checkpoint of an older format
#: (:data:`OLDER`) is skipped and the journal replayed instead, so an upgrade
#: never misreads one; any other format is damage (or the work of a newer
#: library) and refuses to open.
FORMAT = 3
#: Earlier formats this version still restores (2 has no suppression list:
#: it was written before ``forget`` existed, so the list was empty).
READABLE = (2, FORMAT)
#: The formats earlier versions wrote that are skipped (the journal is replayed).
OLDER = range(1, 2)

_PLAIN = (str, int, bool, type(None))


def _value(value: Any) -> Any:
    return value if type(value) in _PLAIN else codec.encode(value)


def _unvalue(value: Any) -> Any:
    return codec.decode(value) if type(value) is dict else value


def capture(state: GraphState) -> dict[str, Any]:
    """The state after its last journal entry, as plain JSON data.  O(state)."""
    a_customer: list[str] = []
    a_name: list[str] = []
    a_value: list[Any] = []
    a_at: list[str] = []
    a_seq: list[int] = []
    for customer, values in state.with_attributes():
        for name, (value, at, seq) in values.items():
            a_customer.append(customer)
            a_name.append(name)
            a_value.append(_value(value))
            a_at.append(at.isoformat())
            a_seq.append(seq)
    h_name: list[str] = []
    h_value: list[str] = []
    h_count: list[int] = []
    p_at: list[str] = []
    p_owner: list[str | None] = []
    p_seq: list[int] = []
    ownership = state.ownership
    for (name, value), history in ownership.items():
        h_name.append(name)
        h_value.append(value)
        points = hist.points(history)
        h_count.append(len(points))
        for at, owner, seq in points:
            p_at.append(at.isoformat())
            p_owner.append(owner)
            p_seq.append(seq)
    # Who ever claimed which link.  Not derivable from the points: a point
    # replaced at the same instant leaves its customer's claim behind.
    c_customer: list[str] = []
    c_count: list[int] = []
    c_name: list[str] = []
    c_value: list[str] = []
    for customer in ownership.claimants():
        keys = ownership.claimed_by(customer)
        c_customer.append(customer)
        c_count.append(len(keys))
        for name, value in keys:
            c_name.append(name)
            c_value.append(value)
    guards = state.guards.save()
    return {
        "format": FORMAT,
        "seq": len(state.journal),
        "order": list(state.order),
        "a_customer": a_customer,
        "a_name": a_name,
        "a_value": a_value,
        "a_at": a_at,
        "a_seq": a_seq,
        "h_name": h_name,
        "h_value": h_value,
        "h_count": h_count,
        "p_at": p_at,
        "p_owner": p_owner,
        "p_seq": p_seq,
        "c_customer": c_customer,
        "c_count": c_count,
        "c_name": c_name,
        "c_value": c_value,
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


def dumps(state: GraphState) -> bytes:
    """The checkpoint of ``state``: compressed JSON."""
    text = json.dumps(capture(state), separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode(), 1)


def loads(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`dumps` (before :func:`restore`)."""
    state: dict[str, Any] = json.loads(zlib.decompress(data))
    return state


def restore(state: GraphState, saved: dict[str, Any]) -> int:
    """Load ``saved`` into a new, empty ``state``; return the journal seq it stands at."""
    if saved.get("format") not in READABLE:
        raise ValueError(f"checkpoint format {saved.get('format')!r} is not one of {READABLE}")
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
            known = names[name] = name
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
    return int(saved["seq"])
