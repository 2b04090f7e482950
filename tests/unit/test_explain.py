"""explain() and to_networkx()."""

from __future__ import annotations

from datetime import UTC, datetime

import networkx as nx
import pytest

from identity_graph import IdentityGraph, Link, NotConnected, Step


def d(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


EMAIL = Link("email", "Ann@Example.com")
EMAIL_N = Link("email", "ann@example.com")
PHONE = Link("phone", "+358 40 123 4567")
PHONE_N = Link("phone", "+358401234567")
CARD = Link("loyalty_card", "7001 2345")
CARD_N = Link("loyalty_card", "70012345")


def graph() -> IdentityGraph:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))  # 1 (+created)
    g.link("c2", PHONE, at=d(2))  # 2
    g.merge("c1", "c2", reason="same person", at=d(3))  # 3 -> m3
    g.link("c3", CARD, at=d(4))  # 4
    g.merge("c2", "c3", reason="card at till", at=d(5))  # 5 -> m5
    return g


def test_explain_link_to_link_through_merge() -> None:
    g = graph()
    steps = g.explain(EMAIL, PHONE)
    entries = {e.seq: e for e in g.journal()}
    assert steps == [
        Step("owns", EMAIL_N, "c1", entries[1]),
        Step("merge", "c1", "c2", entries[3], merge_id="m3"),
        Step("owns", "c2", PHONE_N, entries[2]),
    ]
    assert [s.entry.op for s in steps] == ["link", "merge", "link"]


def test_explain_customer_to_customer_two_merges() -> None:
    g = graph()
    steps = g.explain("c1", "c3")
    assert [(s.kind, s.source, s.target, s.merge_id) for s in steps] == [
        ("merge", "c1", "c2", "m3"),
        ("merge", "c2", "c3", "m5"),
    ]
    assert [s.entry.seq for s in steps] == [3, 5]
    assert steps[1].entry.args["reason"] == "card at till"


def test_explain_customer_to_own_link() -> None:
    g = graph()
    steps = g.explain("c3", Link("loyalty_card", "7001-2345"))
    assert len(steps) == 1
    step = steps[0]
    assert (step.kind, step.source, step.target, step.merge_id) == ("owns", "c3", CARD_N, None)
    assert step.entry.seq == 4
    assert step.entry.args["link"] == CARD_N


def test_explain_after_split() -> None:
    g = graph()
    assert g.merge("c1", "c3", reason="direct", at=d(6)) is None  # already one profile
    assert len(g.explain("c1", "c3")) == 2
    g.split("m3", at=d(7))  # c1 alone now
    with pytest.raises(NotConnected):
        g.explain("c1", "c3")


def test_explain_uses_current_owner_edge_entry() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    g.relink(CARD, to="c2", at=d(5))
    [step] = g.explain(CARD, "c2")
    assert step.entry.seq == 2
    assert step.entry.op == "relink"


def test_explain_same_node_is_empty() -> None:
    g = graph()
    assert g.explain("c1", "c1") == []
    assert g.explain(" c1 ", "c1") == []
    assert g.explain(EMAIL, Link("email", " ANN@example.com")) == []


def test_explain_same_anonymous_link_is_empty() -> None:
    g = IdentityGraph()
    assert g.explain(Link("crm_id", "x"), Link("crm_id", " x ")) == []


def test_explain_not_connected() -> None:
    g = graph()
    g.register("c9", at=d(9))
    with pytest.raises(NotConnected, match=r"c1 \(profile c1\) and c9 \(profile c9\).*not in one"):
        g.explain("c1", "c9")
    with pytest.raises(LookupError):
        g.explain(EMAIL, "c9")


def test_explain_anonymous_links_not_connected() -> None:
    g = IdentityGraph()
    with pytest.raises(NotConnected, match=r"crm_id:a .*crm_id:b"):
        g.explain(Link("crm_id", "a"), Link("crm_id", "b"))


def test_explain_unknown_customer() -> None:
    from identity_graph import UnknownCustomer

    with pytest.raises(UnknownCustomer, match="customer 'ghost'"):
        graph().explain("c1", "ghost")


def test_to_networkx_nodes() -> None:
    g = graph()
    g.register("c1", {"first_name": "Ann"}, at=d(6))
    g.link("c4", Link("crm_id", "gone"), at=d(6))
    g.unlink(Link("crm_id", "gone"), at=d(7))
    G = g.to_networkx()
    assert isinstance(G, nx.Graph)
    assert G.nodes["c1"] == {"kind": "customer", "order": 0, "attributes": {"first_name": "Ann"}}
    assert G.nodes["c3"] == {"kind": "customer", "order": 2, "attributes": {}}
    assert G.nodes[EMAIL_N] == {"kind": "link"}
    # a link no one owns now is still a node, without edges
    gone = Link("crm_id", "gone")
    assert G.nodes[gone] == {"kind": "link"}
    assert G.degree(gone) == 0
    customers = {n for n, k in G.nodes(data="kind") if k == "customer"}
    links = {n for n, k in G.nodes(data="kind") if k == "link"}
    assert customers == {"c1", "c2", "c3", "c4"}
    assert links == {EMAIL_N, PHONE_N, CARD_N, gone}


def test_to_networkx_edges() -> None:
    g = graph()
    G = g.to_networkx()
    assert G.edges["c1", EMAIL_N] == {"kind": "owns", "seq": 1, "since": d(1)}
    assert G.edges["c3", CARD_N] == {"kind": "owns", "seq": 4, "since": d(4)}
    assert G.edges["c1", "c2"] == {
        "kind": "merge",
        "merge_id": "m3",
        "reason": "same person",
        "seq": 3,
        "at": d(3),
    }
    assert G.number_of_edges() == 5


def test_to_networkx_components_are_profiles() -> None:
    g = graph()
    g.register("c9", at=d(9))
    g.split("m5", at=d(9))
    G = g.to_networkx()
    components = [
        sorted(n for n in comp if isinstance(n, str)) for comp in nx.connected_components(G)
    ]
    assert sorted(components) == [["c1", "c2"], ["c3"], ["c9"]]
    assert not G.has_edge("c2", "c3")
