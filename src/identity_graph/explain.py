"""Why two references share a profile, and the graph as ``networkx``.

Built on ``networkx``: a profile is turned into a small graph (customers and
the links they own now as nodes; ownerships and active merges as edges) and
``networkx.shortest_path`` finds the shortest chain between the two
references.  Only the one profile is built, so ``explain`` costs
O(size of the profile), not O(size of the graph).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal

import attrs

from . import history as hist
from .errors import NotConnected
from .ids import CustomerId, Link
from .journal import Entry

if TYPE_CHECKING:
    from .graph import IdentityGraph, Ref

__all__ = ["Step", "explain", "to_networkx"]

Node = "CustomerId | Link"


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


def _node(graph: IdentityGraph, ref: Ref) -> CustomerId | Link:
    if isinstance(ref, Link):
        return graph.normalize(ref)
    return graph._customer(ref)


def _owner_edges(graph: IdentityGraph, customer: CustomerId) -> list[tuple[Link, int, Any]]:
    edges = []
    for key in graph._links_of(customer):
        at, _owner, seq = hist.last_point(graph._history[key])
        edges.append((Link(key[0], key[1]), seq, at))
    return edges


def _add_profile(nx_graph: Any, graph: IdentityGraph, customers: list[CustomerId]) -> None:
    partition = graph._partition
    for customer in customers:
        nx_graph.add_node(customer, kind="customer", order=graph._order[customer])
        for link, seq, at in _owner_edges(graph, customer):
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


def explain(graph: IdentityGraph, ref_a: Ref, ref_b: Ref) -> list[Step]:
    """The shortest chain of ownerships and merges between two references.

    Raises ``NotConnected`` when they are in different profiles.  An empty
    list means the two references are the same node.  O(size of the profile).
    """
    profile_a, profile_b = graph.resolve(ref_a), graph.resolve(ref_b)
    source, target = _node(graph, ref_a), _node(graph, ref_b)
    if profile_a != profile_b:
        raise NotConnected(
            f"{source!s} (profile {profile_a!s}) and {target!s} (profile {profile_b!s}) "
            "are not in one profile"
        )
    if source == target:
        return []
    import networkx as nx  # imported on use: it is a third of the package's import time

    nx_graph = nx.Graph()
    if isinstance(profile_a, Link):
        return []
    _add_profile(nx_graph, graph, graph._partition.members(profile_a))
    path = nx.shortest_path(nx_graph, source, target)
    steps = []
    for u, v in itertools.pairwise(path):
        data = nx_graph.edges[u, v]
        steps.append(
            Step(
                kind=data["kind"],
                source=u,
                target=v,
                entry=graph._journal.entry(data["seq"]),
                merge_id=data.get("merge_id"),
            )
        )
    return steps


def to_networkx(graph: IdentityGraph) -> Any:
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
    _add_profile(nx_graph, graph, list(graph._order))
    for customer in graph._order:
        values = {name: rec[0] for name, rec in graph._attributes.get(customer, {}).items()}
        nx_graph.nodes[customer]["attributes"] = values
    for key in graph._history:
        link = Link(key[0], key[1])
        if link not in nx_graph:
            nx_graph.add_node(link, kind="link")
    return nx_graph
