"""Why two references share a profile, and the graph as ``networkx``.

Built on ``networkx``: a profile is turned into a small graph (customers and
the links they own now as nodes; ownerships and active merges as edges) and
``networkx.shortest_path`` finds the shortest chain between the two
references.  Only the one profile is built, so ``explain`` costs
O(size of the profile), not O(size of the graph).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal, Protocol

import attrs

from . import history as hist
from .ids import CustomerId, Link
from .journal import Entry
from .state import GraphState

__all__ = ["Step", "explain", "explain_path", "graph_of", "to_networkx"]


@attrs.frozen
class Step:
    """One link of an explanation: ``source`` and ``target`` are joined because
    a customer owns a link (``kind="owns"``) or two customers were merged
    (``kind="merge"``); ``entry`` is the journal entry that made it so."""

    kind: Literal["owns", "merge"]
    source: CustomerId | Link
    target: CustomerId | Link
    entry: Entry
    merge_id: str | None = None


def _owner_edges(state: GraphState, customer: CustomerId) -> list[tuple[Link, int, Any]]:
    edges = []
    ownership = state.ownership
    for key in ownership.links_of(customer):
        at, _owner, seq = hist.last_point(ownership.history(key))  # type: ignore[arg-type]
        edges.append((Link(key[0], key[1]), seq, at))
    return edges


def _add_profile(nx_graph: Any, state: GraphState, customers: list[CustomerId]) -> None:
    partition = state.partition
    order = state.order
    for customer in customers:
        nx_graph.add_node(customer, kind="customer", order=order[customer])
        for link, seq, at in _owner_edges(state, customer):
            nx_graph.add_node(link, kind="link")
            nx_graph.add_edge(customer, link, kind="owns", seq=seq, since=at)
        for merge_id in partition.active_merges(customer):
            merge = partition.merges[merge_id]
            nx_graph.add_edge(
                merge.a,
                merge.b,
                kind="merge",
                merge_id=merge.id,
                reason=merge.reason,
                seq=merge.seq,
                at=merge.at,
            )


def explain_path(
    state: GraphState, profile: CustomerId, source: CustomerId | Link, target: CustomerId | Link
) -> list[Step]:
    """The shortest chain of ownerships and merges between two nodes of one
    customer profile (the facade has resolved and checked them).  O(size of the profile)."""
    import networkx as nx  # imported on use: it is a third of the package's import time

    nx_graph = nx.Graph()
    _add_profile(nx_graph, state, state.partition.members(profile))
    path = nx.shortest_path(nx_graph, source, target)
    steps = []
    journal = state.journal
    for u, v in itertools.pairwise(path):
        data = nx_graph.edges[u, v]
        steps.append(
            Step(
                kind=data["kind"],
                source=u,
                target=v,
                entry=journal.entry(data["seq"]),
                merge_id=data.get("merge_id"),
            )
        )
    return steps


def graph_of(state: GraphState) -> Any:
    """The whole identity graph as an undirected ``networkx.Graph``.

    Nodes: every customer (``kind="customer"``, ``order`` = registration
    order, ``attributes``) and every link ever seen (``kind="link"``, a
    :class:`Link` with its normalised value).  Edges: each link to its current
    owner (``kind="owns"``, ``seq``, ``since``) and each active merge
    (``kind="merge"``, ``merge_id``, ``reason``, ``seq``, ``at``).  The
    connected components of the customers are exactly the profiles.
    O(customers + links + merges).
    """
    import networkx as nx  # imported on use: it is a third of the package's import time

    nx_graph = nx.Graph()
    _add_profile(nx_graph, state, list(state.order))
    for customer in state.order:
        values = {name: rec[0] for name, rec in state.attributes_of(customer).items()}
        nx_graph.nodes[customer]["attributes"] = values
    for key in state.ownership.links():
        link = Link(key[0], key[1])
        if link not in nx_graph:
            nx_graph.add_node(link, kind="link")
    return nx_graph


class Explainable(Protocol):
    """A graph, as :func:`explain` and :func:`to_networkx` need it."""

    def explain(self, ref_a: Any, ref_b: Any) -> list[Step]: ...

    def to_networkx(self) -> Any: ...


def explain(graph: Explainable, ref_a: Any, ref_b: Any) -> list[Step]:
    """``graph.explain(ref_a, ref_b)``: why two references share a profile."""
    return graph.explain(ref_a, ref_b)


def to_networkx(graph: Explainable) -> Any:
    """``graph.to_networkx()``: the identity graph as a ``networkx.Graph``."""
    return graph.to_networkx()
