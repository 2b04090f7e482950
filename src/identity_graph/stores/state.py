"""A graph's state as plain data, for checkpoints (§7).

A store keeps the journal forever, but opening a store must not replay the
whole journal: a checkpoint holds the state after entry ``seq`` (customers
in registration order, attributes, every link's change points, every merge,
the guards' frozen links and move times) and opening replays only the
entries after it.  Events and refusals are not in it; the stores keep them
in tables of their own and load them directly.

The state is rebuilt through the same structures the live graph uses
(``history.insert``, ``Partition.union``), so a restored graph equals the
one that was captured — the contract suite checks it.  Capture and restore
are O(state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedList

from .. import history as hist
from ..resolution import Merge

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["FORMAT", "capture", "restore"]

#: Bumped whenever the layout below changes; a checkpoint of another format is
#: ignored (the journal is replayed instead), so an upgrade never misreads one.
FORMAT = 1


def capture(graph: IdentityGraph) -> dict[str, Any]:
    """The state after the graph's last journal entry, as codec-ready data."""
    guards = graph._guards
    return {
        "format": FORMAT,
        "seq": len(graph._journal),
        "order": list(graph._order),
        "attributes": [
            [customer, [[name, *record] for name, record in values.items()]]
            for customer, values in graph._attributes.items()
        ],
        "history": [[key, hist.points(history)] for key, history in graph._history.items()],
        "merges": [
            [m.id, m.a, m.b, m.reason, m.at, m.seq, m.active]
            for m in sorted(graph._partition.merges.values(), key=lambda m: m.seq)
        ],
        "frozen": sorted(guards.frozen),
        "moves": [[key, list(times)] for key, times in guards._moves.items()],
    }


def restore(graph: IdentityGraph, state: dict[str, Any]) -> int:
    """Load ``state`` into a new, empty ``graph``; return the journal seq it stands at."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT}")
    order = graph._order
    for customer in state["order"]:
        order[customer] = len(order)
    for customer, values in state["attributes"]:
        graph._attributes[customer] = {name: (value, at, seq) for name, value, at, seq in values}
    claimed: dict[str, list[Any]] = {}
    for key, points in state["history"]:
        history: hist.History | None = None
        for point in points:
            history, _ = hist.insert(history, point)
            owner = point[1]
            if owner is not None:
                keys = claimed.setdefault(owner, [])
                if key not in keys:
                    keys.append(key)
        assert history is not None
        graph._history[key] = history
    for customer, keys in claimed.items():
        graph._claimed[customer] = keys[0] if len(keys) == 1 else tuple(keys)
    partition = graph._partition
    for merge_id, a, b, reason, at, seq, active in state["merges"]:
        merge = Merge(merge_id, a, b, reason, at, seq)
        if active:
            partition.union(merge)
        else:
            merge.active = False
            partition.merges[merge_id] = merge
    graph._guards.frozen.update(state["frozen"])
    for key, times in state["moves"]:
        graph._guards._moves[key] = SortedList(times)
    return int(state["seq"])
