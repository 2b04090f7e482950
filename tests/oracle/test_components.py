"""Oracle: profiles are the connected components of the active merges.

Random graphs of a few thousand customers are built with ``merge``, ``split``
and ``detach``; the test tracks by itself which merges are still active and
asks ``networkx`` for the connected components.  The graph's profiles (customers
grouped by ``resolve``) must be exactly those components, and each profile id
must be the component's earliest-registered customer.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from identity_graph import IdentityGraph, Limits, Link

T0 = datetime(2024, 1, 1, tzinfo=UTC)
N_CUSTOMERS = 3000


def _profiles(g: IdentityGraph, customers: list[str]) -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for customer in customers:
        groups[g.resolve(customer)].add(customer)
    return {pid: frozenset(members) for pid, members in groups.items()}


def _build(seed: int) -> tuple[IdentityGraph, list[str], dict[str, tuple[str, str]]]:
    """A random graph; returns it, the customers in registration order, and the
    active merges as tracked by this test (merge id -> (a, b))."""
    rng = random.Random(seed)
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**6))
    # Ids whose sort order has nothing to do with registration order.
    customers = [f"cust-{i:05d}" for i in rng.sample(range(10**5), N_CUSTOMERS)]
    for i, customer in enumerate(customers):
        g.register(customer, at=T0 + timedelta(seconds=i))
    # A few links, so that to_networkx also has link nodes and ownership edges.
    for i in range(300):
        g.link(rng.choice(customers), Link("crm_id", f"crm-{i}"), at=T0)
    active: dict[str, tuple[str, str]] = {}
    issued: list[str] = []
    for _round in range(4):
        for _ in range(N_CUSTOMERS // 3):
            a, b = rng.choice(customers), rng.choice(customers)
            merge_id = g.merge(a, b, reason="random", at=T0)
            if merge_id is not None:
                assert merge_id not in active and merge_id not in issued
                active[merge_id] = (a, b)
                issued.append(merge_id)
        for merge_id in rng.sample(issued, len(issued) // 5):
            entry = g.split(merge_id)
            assert (entry is None) == (merge_id not in active)
            active.pop(merge_id, None)
        for customer in rng.sample(customers, 40):
            touching = [m for m, ends in active.items() if customer in ends]
            entry = g.detach(customer)
            assert (entry is None) == (not touching)
            for merge_id in touching:
                del active[merge_id]
    return g, customers, active


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_profiles_are_connected_components_of_active_merges(seed: int) -> None:
    g, customers, active = _build(seed)
    order = {customer: i for i, customer in enumerate(customers)}

    oracle = nx.Graph()
    oracle.add_nodes_from(customers)
    oracle.add_edges_from(active.values())
    components = [frozenset(c) for c in nx.connected_components(oracle)]
    assert 1 < len(components) < N_CUSTOMERS  # a non-trivial mix of profiles

    profiles = _profiles(g, customers)
    assert set(profiles.values()) == set(components)
    for profile_id, members in profiles.items():
        assert profile_id == min(members, key=order.__getitem__)
        profile = g.profile(profile_id)
        assert set(profile.customer_ids) == members
        assert set(profile.merge_ids) == {m for m, (a, _b) in active.items() if a in members}
    g._check()


@pytest.mark.parametrize("seed", [4, 5])
def test_to_networkx_merge_edges_give_the_profiles(seed: int) -> None:
    g, customers, active = _build(seed)
    exported = g.to_networkx()

    customer_nodes = [n for n, data in exported.nodes(data=True) if data["kind"] == "customer"]
    assert sorted(customer_nodes) == sorted(customers)
    merge_edges = [
        (u, v, data) for u, v, data in exported.edges(data=True) if data["kind"] == "merge"
    ]
    assert {data["merge_id"] for _u, _v, data in merge_edges} == set(active)
    for u, v, data in merge_edges:
        assert {u, v} == set(active[data["merge_id"]])

    under_merges = nx.Graph()
    under_merges.add_nodes_from(customer_nodes)
    under_merges.add_edges_from((u, v) for u, v, _data in merge_edges)
    components = {frozenset(c) for c in nx.connected_components(under_merges)}
    assert components == set(_profiles(g, customers).values())

    # Ownership edges join each link to its current owner.
    owns = [(u, v) for u, v, data in exported.edges(data=True) if data["kind"] == "owns"]
    assert len(owns) == 300  # each crm_id link was linked once
    for u, v in owns:
        link, customer = (u, v) if isinstance(u, Link) else (v, u)
        assert g.owner(link) == customer
