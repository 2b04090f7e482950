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

The state is rebuilt into the same structures the live graph uses
(``history.LinkHistory``, ``Partition.union``), so a restored graph equals
the one that was captured — the contract suite checks it.  Capture and
restore are O(state).
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedList

from .. import codec
from .. import history as hist
from ..resolution import Merge

if TYPE_CHECKING:
    from ..graph import IdentityGraph
    from ..ids import LinkKey

__all__ = ["FORMAT", "capture", "dumps", "loads", "restore"]

#: Bumped whenever the layout below changes; a checkpoint of another format is
#: ignored (the journal is replayed instead), so an upgrade never misreads one.
FORMAT = 2

_PLAIN = (str, int, bool, type(None))


def _value(value: Any) -> Any:
    return value if type(value) in _PLAIN else codec.encode(value)


def _unvalue(value: Any) -> Any:
    return codec.decode(value) if type(value) is dict else value


def capture(graph: IdentityGraph) -> dict[str, Any]:
    """The state after the graph's last journal entry, as plain JSON data.  O(state)."""
    a_customer: list[str] = []
    a_name: list[str] = []
    a_value: list[Any] = []
    a_at: list[str] = []
    a_seq: list[int] = []
    for customer, values in graph._attributes.items():
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
    for (name, value), history in graph._history.items():
        h_name.append(name)
        h_value.append(value)
        if type(history) is tuple:  # one change point, kept bare
            h_count.append(1)
            p_at.append(history[0].isoformat())
            p_owner.append(history[1])
            p_seq.append(history[2])
        else:
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
    for customer in graph._claimed:
        keys = graph._claimed_by(customer)
        c_customer.append(customer)
        c_count.append(len(keys))
        for name, value in keys:
            c_name.append(name)
            c_value.append(value)
    guards = graph._guards
    return {
        "format": FORMAT,
        "seq": len(graph._journal),
        "order": list(graph._order),
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
            for m in sorted(graph._partition.merges.values(), key=lambda m: m.seq)
        ],
        "frozen": [list(key) for key in sorted(guards.frozen)],
        "moves": [
            [key[0], key[1], [t.isoformat() for t in times]] for key, times in guards._moves.items()
        ],
    }


def dumps(graph: IdentityGraph) -> bytes:
    """The checkpoint of ``graph``: its state as compressed JSON."""
    text = json.dumps(capture(graph), separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode(), 1)


def loads(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`dumps` (before :func:`restore`)."""
    state: dict[str, Any] = json.loads(zlib.decompress(data))
    return state


def restore(graph: IdentityGraph, state: dict[str, Any]) -> int:
    """Load ``state`` into a new, empty ``graph``; return the journal seq it stands at."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT}")
    when = datetime.fromisoformat
    order = graph._order
    for customer in state["order"]:
        order[customer] = len(order)
    attributes = graph._attributes
    for customer, name, value, at, seq in zip(
        state["a_customer"],
        state["a_name"],
        state["a_value"],
        state["a_at"],
        state["a_seq"],
        strict=True,
    ):
        attributes.setdefault(customer, {})[name] = (_unvalue(value), when(at), seq)

    history_of = graph._history
    claimed = graph._claimed
    names: dict[str, str] = {}  # one string object per link name, as in a live graph
    interned: dict[LinkKey, LinkKey] = {}
    p_at, p_owner, p_seq = state["p_at"], state["p_owner"], state["p_seq"]
    index = 0
    for name, value, count in zip(state["h_name"], state["h_value"], state["h_count"], strict=True):
        known = names.get(name)
        if known is None:
            known = names[name] = name
        key: LinkKey = (known, value)
        if count == 1:  # most links: one bare point
            history_of[key] = (when(p_at[index]), p_owner[index], p_seq[index])
            index += 1
        else:
            history_of[key] = hist.LinkHistory(
                [(when(p_at[i]), p_owner[i], p_seq[i]) for i in range(index, index + count)]
            )
            index += count
        interned[key] = key
    # The graph shares one key tuple per link between its history and the
    # claims; so do we (memory).
    c_name, c_value = state["c_name"], state["c_value"]
    index = 0
    for customer, count in zip(state["c_customer"], state["c_count"], strict=True):
        if count == 1:
            pair = (c_name[index], c_value[index])
            claimed[customer] = interned.get(pair, pair)
            index += 1
            continue
        pairs = [(c_name[i], c_value[i]) for i in range(index, index + count)]
        claimed[customer] = tuple([interned.get(pair, pair) for pair in pairs])
        index += count

    partition = graph._partition
    for merge_id, a, b, reason, at, seq, active in state["merges"]:
        merge = Merge(merge_id, a, b, reason, when(at), seq)
        if active:
            partition.union(merge)
        else:
            merge.active = False
            partition.merges[merge_id] = merge
    guards = graph._guards
    guards.frozen.update((name, value) for name, value in state["frozen"])
    for name, value, times in state["moves"]:
        guards._moves[(name, value)] = SortedList(when(t) for t in times)
    return int(state["seq"])
