"""``forget`` at the graph level: nothing of the person stays reachable,
the rest of the graph is exactly what it would be without them, the journal
still replays, and the suppression list refuses what was erased.

The random graphs give each customer values nobody else has (``qx`` tokens,
which no hex digest can contain), so that "none of the person's values" is
a plain text search; which values ``forget`` must erase is worked out here
from the journal and the histories, not asked of the erasure module.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph import (
    Event,
    IdentityGraph,
    InvalidLink,
    Link,
    LinkConflict,
    LinkType,
    ReadOnlyGraph,
    UnknownCustomer,
)
from identity_graph import checkpoint as checkpoints
from identity_graph.errors import DuplicateEvent, InvalidCustomerId, InvalidEvent, SuppressedLink
from identity_graph.io import import_customers, import_offline_data, import_offline_events
from identity_graph.suppression import pseudonym
from identity_graph.testing import reachable_strings

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(days=d) for d in (0, 1, 2, 4, 7)]
EVENT_TIMES = sorted({*TIMES, *(t + timedelta(hours=12) for t in TIMES), T0 - timedelta(days=3)})
SECRET = b"erasure-tests-secret-0123456789ab"
N = 5
CUSTOMERS = [f"cuQX{i}" for i in range(N)]
# Each customer's own values; crm ids anyone may take (shared links).
OWN_LINKS = [Link("email", f"mailqx{i}@example.org") for i in range(N)]
OWN_PHONES = [Link("phone", f"+35840111000{i}") for i in range(N)]
SHARED = [Link("crm_id", "crmqx-shared-a"), Link("crm_id", "crmqx-shared-b")]
POOL = [*OWN_LINKS, *OWN_PHONES, *SHARED]
HAS_POLARS = importlib.util.find_spec("polars") is not None
ENGINES = ["python", "polars"] if HAS_POLARS else ["python"]


def new_graph(**config: Any) -> IdentityGraph:
    return IdentityGraph(secret=SECRET, **config)


# ---------------------------------------------------------------- building


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("register"),
            st.integers(0, N - 1),
            st.sampled_from(["city", "tier"]),
            st.sampled_from(TIMES),
        ),
        st.tuples(
            st.just("link"),
            st.integers(0, N - 1),
            st.integers(0, len(POOL) - 1),
            st.sampled_from(TIMES),
        ),
        st.tuples(
            st.just("relink"),
            st.integers(0, N - 1),
            st.integers(0, len(POOL) - 1),
            st.sampled_from(TIMES),
        ),
        st.tuples(st.just("unlink"), st.integers(0, len(POOL) - 1), st.sampled_from(TIMES)),
        st.tuples(st.just("merge"), st.integers(0, N - 1), st.integers(0, N - 1)),
        st.tuples(st.just("split"), st.integers(0, 20)),
        st.tuples(
            st.just("event"),
            st.sampled_from(["customer", "link", "both"]),
            st.integers(0, N - 1),
            st.integers(0, len(POOL) - 1),
            st.sampled_from(EVENT_TIMES),
            st.booleans(),  # a purchase
        ),
        st.tuples(st.just("duplicate"), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=30,
)


def build(steps: Iterable[tuple[Any, ...]]) -> IdentityGraph:
    """A graph from drawn steps; every value belongs to one customer."""
    g = new_graph()
    merges: list[str] = []
    events: list[Event] = []
    counter = itertools.count()
    for step in steps:
        n = next(counter)
        kind = step[0]
        if kind == "register":
            _, i, name, t = step
            g.register(CUSTOMERS[i], {name: f"{name}QX{i}-{n}"}, at=t)
        elif kind == "link":
            _, i, k, t = step
            g.link(CUSTOMERS[i], POOL[k], at=t)
        elif kind == "relink":
            _, i, k, t = step
            g.relink(POOL[k], CUSTOMERS[i], at=t)
        elif kind == "unlink":
            _, k, t = step
            g.unlink(POOL[k], at=t)
        elif kind == "merge":
            _, i, j = step
            if CUSTOMERS[i] in g.customers() and CUSTOMERS[j] in g.customers():
                merge_id = g.merge(CUSTOMERS[i], CUSTOMERS[j], reason=f"whyQX{i}-{j}-{n}")
                if merge_id is not None:
                    merges.append(merge_id)
        elif kind == "split":
            if merges:
                g.split(merges[step[1] % len(merges)])
        elif kind == "event":
            _, anchor, i, k, t, purchase = step
            customer = CUSTOMERS[i] if anchor != "link" else None
            if customer is not None and customer not in g.customers():
                continue
            links = [POOL[k]] if anchor != "customer" else []
            data: dict[str, Any] = {"note": f"noteqx-{n}"}
            if purchase:
                data["amount"] = Decimal(f"{100 + n}.{n % 100:02d}")
            event = Event(
                "purchase" if purchase else "visit",
                at=t,
                customer_id=customer,
                links=links,
                data=data,
                id=f"EVQX-{n}",
            )
            g.record(event)
            events.append(event)
        elif kind == "duplicate" and events:
            known = events[step[1] % len(events)]
            other = Event(
                known.type,
                at=known.at,
                customer_id=known.customer_id,
                links=known.links,
                data={**known.data, "note": f"noteqx-dup-{n}"},
                id=known.id,
            )
            with pytest.raises(DuplicateEvent):
                g.record(other)
    g._check()
    return g


# ---------------------------------------------------------------- independent reckoning


def claimants(g: IdentityGraph) -> dict[tuple[str, str], set[str]]:
    """Every link -> every customer a link/relink entry ever named as its owner."""
    found: dict[tuple[str, str], set[str]] = {}
    for entry in g.journal():
        if entry.op in ("link", "relink") and "merge_id" not in entry.args:
            link = entry.args["link"]
            found.setdefault(link.key, set()).add(entry.args["customer_id"])
    return found


def erased_links(g: IdentityGraph, customer: str) -> set[tuple[str, str]]:
    """The links only ``customer`` ever held: nobody else ever claimed them."""
    return {key for key, who in claimants(g).items() if who == {customer}}


def anchor_of(g: IdentityGraph, event: Event) -> str | Link:
    if event.customer_id is not None:
        return event.customer_id
    return min(event.links, key=lambda link: (g.link_types.priority_key(link.name), link.value))


def attribution(g: IdentityGraph, event: Event) -> str | Link | None:
    """The customer an event belongs to (None: an anonymous link's)."""
    anchor = anchor_of(g, event)
    if isinstance(anchor, str):
        return anchor
    return g.owner(anchor, at=event.at)


def all_events(g: IdentityGraph) -> dict[str, Event]:
    found: dict[str, Event] = {}
    for profile in g.profiles():
        found.update((e.id, e) for e in g.events(profile.id) if e.id is not None)
    for link in POOL:
        found.update((e.id, e) for e in g.events(link) if e.id is not None)
    for event in g._ledger.by_id().values():
        assert event.id is not None
        found.setdefault(event.id, event)
    return found


def expected_erased_events(g: IdentityGraph, customer: str) -> set[str]:
    """Ids of the events ``forget(customer)`` must take: on the customer, on a
    link only it held, or anchored on a link while it owned it."""
    only = erased_links(g, customer)
    gone = set()
    for event_id, event in all_events(g).items():
        if (
            event.customer_id == customer
            or any(link.key in only for link in event.links)
            or (event.customer_id is None and attribution(g, event) == customer)
        ):
            gone.add(event_id)
    return gone


def person_values(g: IdentityGraph, customer: str) -> set[str]:
    """Every text of ``customer``'s that forget must erase, lower-cased."""
    values = {customer}
    values.update(str(v) for v in g.attributes(customer).values())
    for entry in g.journal():
        if entry.op == "register" and entry.args["customer_id"] == customer:
            values.update(str(v) for v in entry.args.get("attributes", {}).values())
        if entry.op == "merge" and customer in (entry.args["a"], entry.args["b"]):
            values.add(entry.args["reason"])
    for key in erased_links(g, customer):
        values.add(key[1])
    events = all_events(g)
    for event_id in expected_erased_events(g, customer):
        values.add(event_id)
        values.add(events[event_id].data["note"])
    return {value.lower() for value in values}


def visible_text(g: IdentityGraph) -> str:
    """What a reader of the graph can see, as one lower-cased text."""
    parts = [repr(list(g.journal())), repr(g.refusals()), repr(g._state()), repr(g.changes())]
    parts.append(repr(sorted(all_events(g).items())))
    parts.append(repr(list(g.profiles())))
    parts.append(repr(sorted(g.to_networkx().edges(data=True), key=repr)))
    return "\n".join(parts).lower()


def assert_none_of(values: Iterable[str], text: str, where: str) -> None:
    leaked = sorted(value for value in values if value in text)
    assert not leaked, f"{where} still shows {leaked}"


# ---------------------------------------------------------------- the property tests

RANDOM = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RANDOM
@given(steps=ops, pick=st.integers(0, N - 1))
def test_forget_leaves_no_value_and_the_rest_exact(steps: list[Any], pick: int) -> None:
    g = build(steps)
    if not g.customers():
        return
    customer = g.customers()[pick % len(g.customers())]
    values = person_values(g, customer)
    others = {c: person_values(g, c) - values for c in g.customers() if c != customer}
    gone = expected_erased_events(g, customer)
    before_events = all_events(g)
    before_attribution = {i: attribution(g, e) for i, e in before_events.items()}
    active = [
        (m.a, m.b)
        for m in g.state.partition.merges.values()
        if m.active and customer not in (m.a, m.b)
    ]
    order = [c for c in g.customers() if c != customer]
    seq = len(list(g.journal()))

    entry = g.forget(customer, at=T0 + timedelta(days=30), reason="request 7")
    assert entry is not None and entry.op == "forget"
    g._check()

    # Nothing of the person is reachable from the graph's objects (before
    # the queries below hand erased values to the graph again), or visible.
    assert_none_of(values, "\n".join(reachable_strings(g)).lower(), "the graph's objects")
    text = visible_text(g)
    assert_none_of(values, text, "the graph")
    for c, theirs in others.items():  # and the others' values are all still there
        assert sorted(value for value in theirs if value not in text) == [], c
    # as_of views of every earlier seq show a pseudonym, not the person.
    for k in range(seq + 1):
        view = g.as_of(k)
        assert_none_of(values, visible_text(view), f"as_of({k})")
    # The journal replays to the graph.
    assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g

    # Profiles: the components of the active merges that do not touch the person.
    assert g.customers() == order
    graph = nx.Graph()
    graph.add_nodes_from(order)
    graph.add_edges_from(active)
    for part in nx.connected_components(graph):
        oldest = min(part, key=order.index)
        profile = g.profile(oldest)
        assert profile.id == oldest
        assert set(profile.customer_ids) == part
    # Events: exactly the ones before minus the erased, attributed as before.
    after = all_events(g)
    assert set(after) == set(before_events) - gone
    for event_id, event in after.items():
        assert event == before_events[event_id]
        assert attribution(g, event) == before_attribution[event_id]
    for profile in g.profiles():
        members = set(profile.customer_ids)
        expected = {i for i in after if before_attribution[i] in members}
        assert {e.id for e in g.events(profile.id)} == expected
    # Purchases and indicators: those of a graph that never had the erased events.
    fresh = IdentityGraph.from_journal(g.journal(), secret=SECRET)
    fresh.record_many(sorted(after.values(), key=lambda e: (e.at, e.id or "")))
    as_of = T0 + timedelta(days=40)
    for engine in ENGINES:
        assert g.kpis(as_of, engine=engine) == fresh.kpis(as_of, engine=engine), engine


@RANDOM
@given(steps=ops, picks=st.lists(st.integers(0, N - 1), min_size=1, max_size=3))
def test_replay_after_several_forgets_and_releases(steps: list[Any], picks: list[int]) -> None:
    g = build(steps)
    for pick in picks:
        if not g.customers():
            break
        customer = g.customers()[pick % len(g.customers())]
        own = sorted(erased_links(g, customer))
        g.forget(customer, at=T0 + timedelta(days=30))
        assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g
        if own:
            assert g.release_suppression(Link(*own[0])) is not None
            assert not g.suppressed(Link(*own[0]))
        assert g.release_suppression(customer) is not None
        assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g
        g._check()


# ---------------------------------------------------------------- a worked story


def story() -> IdentityGraph:
    """a - c - b held together by c's merges; c shares a crm id with a."""
    g = new_graph()
    g.register("anna-1", {"name": "Anna Alpha"}, at=TIMES[0])
    g.register("zed-9", {"name": "Zelda Zqx", "city": "Qxville"}, at=TIMES[0])
    g.register("bert-2", {"name": "Bert Beta"}, at=TIMES[0])
    g.link("zed-9", Link("email", "Zelda.Qx@Example.org"), at=TIMES[0])
    g.link("zed-9", Link("phone", "+358 40 999 8877"), at=TIMES[0])
    g.link("anna-1", Link("crm_id", "crm-shared"), at=TIMES[0])
    g.relink(Link("crm_id", "crm-shared"), "zed-9", at=TIMES[2])
    g.link("anna-1", Link("email", "anna@example.org"), at=TIMES[0])
    g.link("bert-2", Link("email", "bert@example.org"), at=TIMES[0])
    g.merge("anna-1", "zed-9", reason="zelda told us", at=TIMES[1])
    g.merge("zed-9", "bert-2", reason="zelda again", at=TIMES[1])
    g.record(
        Event("purchase", at=TIMES[1], customer_id="zed-9", data={"amount": "77.31"}, id="EV-Z1")
    )
    g.record(Event("visit", at=TIMES[3], links=[Link("crm_id", "crm-shared")], id="EV-Z2"))
    g.record(Event("visit", at=TIMES[1], links=[Link("crm_id", "crm-shared")], id="EV-A1"))
    g.record(
        Event(
            "purchase",
            at=TIMES[1],
            customer_id="anna-1",
            data={"amount": "12.50"},
            id="EV-A2",
        )
    )
    g.record(
        Event(
            "visit",
            at=TIMES[1],
            links=[Link("crm_id", "crm-shared"), Link("email", "zelda.qx@example.org")],
            id="EV-Z3",
        )
    )
    with pytest.raises(UnknownCustomer):
        g.record(Event("visit", at=TIMES[1], customer_id="walk-in", id="EV-R"))
    with pytest.raises(DuplicateEvent):
        g.record(Event("visit", at=TIMES[1], customer_id="zed-9", id="EV-Z1"))
    return g


ZED_VALUES = [
    "zed-9",
    "Zelda Zqx",
    "Qxville",
    "zelda.qx@example.org",
    "Zelda.Qx@Example.org",
    "+358409998877",
    "EV-Z1",
    "EV-Z2",
    "EV-Z3",
    "77.31",
    "zelda told us",
    "zelda again",
]


def test_the_story_forgets_zed_and_splits_the_bridge_as_detach_would() -> None:
    g = story()
    detached = IdentityGraph.from_journal(g.journal(), secret=SECRET)
    detached.detach("zed-9", at=TIMES[4])
    entry = g.forget("zed-9", at=TIMES[4], reason="ticket 42")
    assert entry is not None
    hashed = pseudonym(SECRET, "customer", "zed-9")
    assert entry.args["customer_id"] == hashed
    assert entry.args["reason"] == "ticket 42"
    # a and b fall apart exactly as detach leaves them.
    for customer in ("anna-1", "bert-2"):
        assert g.profile(customer).customer_ids == detached.profile(customer).customer_ids
        assert g.resolve(customer) == customer
    # The changes name the person by its hash and no value.
    kinds = [change.kind for change in entry.changes]
    assert kinds == ["split", "link_moved", "erased"]
    split = entry.changes[0]
    assert split.before == ("anna-1",) and set(split.after) == {"anna-1", hashed, "bert-2"}
    moved = entry.changes[1]
    assert moved.before == (hashed,) and moved.link == Link("crm_id", "crm-shared")
    assert entry.changes[2].before == (hashed,)
    # The shared crm id keeps its value and anna's span; zed's span is nobody's.
    assert g.history(Link("crm_id", "crm-shared")) == [(TIMES[0], "anna-1"), (TIMES[2], None)]
    assert [e.id for e in g.events("anna-1")] == ["EV-A1", "EV-A2"]
    assert g.events(Link("crm_id", "crm-shared")) == []
    # Nothing shows zed anywhere.
    assert_none_of(
        [v.lower() for v in ZED_VALUES], "\n".join(reachable_strings(g)).lower(), "objects"
    )
    text = visible_text(g)
    assert_none_of([v.lower() for v in ZED_VALUES], text, "the graph")
    assert g.history(Link("email", "zelda.qx@example.org")) == []  # its links are gone
    for kept in ("anna alpha", "bert beta", "anna@example.org", "ev-a1", "12.50", "walk-in"):
        assert kept in text, kept
    # The refusal naming zed went; the one naming an unknown walk-in stays.
    assert [r.error for r in g.refusals()] == ["UnknownCustomer"]
    for k in range(len(list(g.journal())) + 1):
        assert_none_of([v.lower() for v in ZED_VALUES], visible_text(g.as_of(k)), f"as_of({k})")
    assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g


def test_changes_of_a_link_history_change_name_no_value() -> None:
    """A shared link the person held only in the past: the change is a
    ``link_history`` of its current owner's profile."""
    g = new_graph()
    g.link("qx-old", Link("crm_id", "k-1"), at=TIMES[0])
    g.relink(Link("crm_id", "k-1"), "now-1", at=TIMES[2])
    entry = g.forget("qx-old", at=TIMES[4])
    assert entry is not None
    history = [c for c in entry.changes if c.kind == "link_history"]
    assert [(c.after, c.link) for c in history] == [(("now-1",), Link("crm_id", "k-1"))]
    assert "qx-old" not in repr(g.changes())
    assert g.history(Link("crm_id", "k-1")) == [(TIMES[0], None), (TIMES[2], "now-1")]


def test_an_event_naming_an_erased_link_goes_wherever_it_is_anchored() -> None:
    g = new_graph()
    g.link("qx-1", Link("email", "gone@example.org"), at=TIMES[0])
    g.register("keep-1", at=TIMES[0])
    g.record(
        Event("visit", at=TIMES[1], customer_id="keep-1", links=[Link("email", "gone@example.org")])
    )
    g.record(Event("visit", at=TIMES[1], customer_id="keep-1", id="stays"))
    g.forget("qx-1", at=TIMES[4])
    assert [e.id for e in g.events("keep-1")] == ["stays"]


# ---------------------------------------------------------------- suppression


def forgotten() -> IdentityGraph:
    g = story()
    g.forget("zed-9", at=TIMES[4])
    return g


def assert_refusal_shows_only_hashes(g: IdentityGraph, *values: str) -> None:
    refusal = g.refusals()[-1]
    assert refusal.error == "SuppressedLink"
    text = repr(refusal).lower()
    assert "erased:" in text
    assert_none_of([v.lower() for v in values], text, "the refusal")


def test_register_of_the_erased_id_is_refused_until_released() -> None:
    g = forgotten()
    seq = len(list(g.journal()))
    with pytest.raises(SuppressedLink) as caught:
        g.register(" zed-9 ", {"name": "Zelda"}, at=TIMES[4])
    assert isinstance(caught.value, InvalidLink)
    assert "zed-9" not in str(caught.value)
    assert_refusal_shows_only_hashes(g, "zed-9", "Zelda")
    assert len(list(g.journal())) == seq
    assert g.suppressed("zed-9")
    assert g.release_suppression("zed-9", at=TIMES[4]) is not None
    assert not g.suppressed("zed-9")
    assert g.release_suppression("zed-9") is None
    assert g.register("zed-9", at=TIMES[4]) is not None
    assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g


@pytest.mark.parametrize("spelling", ["zelda.qx@example.org", "  ZELDA.QX@EXAMPLE.ORG "])
def test_link_and_relink_of_an_erased_value_are_refused(spelling: str) -> None:
    g = forgotten()
    link = Link("email", spelling)
    for call in (
        lambda: g.link("anna-1", link, at=TIMES[4]),
        lambda: g.link("new-1", link, at=TIMES[4]),
        lambda: g.relink(link, "bert-2", at=TIMES[4]),
    ):
        with pytest.raises(SuppressedLink):
            call()
        assert_refusal_shows_only_hashes(g, "zelda.qx@example.org", spelling.strip())
    assert "new-1" not in g.customers()
    assert g.suppressed(link)
    # Nothing of the refused value stays reachable either.
    assert_none_of(["zelda.qx"], "\n".join(reachable_strings(g)).lower(), "objects")
    assert g.release_suppression(link, at=TIMES[4]) is not None
    assert g.link("new-1", link, at=TIMES[4]) is not None
    assert g.owner(link) == "new-1"
    assert IdentityGraph.from_journal(g.journal(), secret=SECRET) == g


def test_record_of_erased_values_is_refused_with_hashes_only() -> None:
    g = forgotten()
    # By the erased customer id.
    with pytest.raises(SuppressedLink):
        g.record(Event("visit", at=TIMES[4], customer_id="zed-9", id="new-a"))
    assert_refusal_shows_only_hashes(g, "zed-9")
    # By an erased link, the only identity left.
    with pytest.raises(SuppressedLink):
        g.record(Event("visit", at=TIMES[4], links=[Link("phone", "+358409998877")], id="new-b"))
    assert_refusal_shows_only_hashes(g, "+358409998877")
    # By an erased event re-sent.
    with pytest.raises(SuppressedLink):
        g.record(Event("purchase", at=TIMES[1], customer_id="anna-1", id="EV-Z1"))
    assert_refusal_shows_only_hashes(g, "EV-Z1")
    # An erased link beside another identity is dropped (logged by its hash).
    assert g.record(
        Event(
            "visit",
            at=TIMES[4],
            customer_id="anna-1",
            links=[Link("email", "Zelda.Qx@example.org")],
            id="new-c",
        )
    )
    assert_refusal_shows_only_hashes(g, "zelda.qx@example.org")
    assert g.events("anna-1")[-1].links == ()
    # Refused for another reason, the event is logged without the erased value.
    with pytest.raises(UnknownCustomer):
        g.record(
            Event(
                "visit",
                at=TIMES[4],
                customer_id="nobody-1",
                links=[Link("email", "zelda.qx@example.org")],
            )
        )
    assert g.refusals()[-1].error == "UnknownCustomer"
    assert_none_of(["zelda.qx"], repr(g.refusals()).lower(), "the refusals")
    assert_none_of(["zelda.qx", "zed-9", "ev-z1"], "\n".join(reachable_strings(g)).lower(), "g")
    # record_many: counted as refused, logged by hash.
    refused: list[tuple[Event, Exception]] = []
    again = Event("visit", at=TIMES[4], customer_id="zed-9", id="new-d")
    assert g.record_many([again], refused=refused) == (0, 0)
    assert refused == [(again, refused[0][1])] and isinstance(refused[0][1], SuppressedLink)


def test_refusals_of_the_person_leave_the_log_and_others_stay() -> None:
    g = new_graph(link_types={"crm_id": LinkType(conflict="reject")})
    g.link("qx-a", Link("crm_id", "k-9"), at=TIMES[0])
    g.link("qx-b", Link("crm_id", "k-8"), at=TIMES[0])
    with pytest.raises(LinkConflict):
        g.link("other", Link("crm_id", "k-9"), at=TIMES[1])
    with pytest.raises(LinkConflict):
        g.link("other", Link("crm_id", "k-8"), at=TIMES[1])
    assert len(g.refusals()) == 2
    g.forget("qx-a", at=TIMES[4])
    (left,) = g.refusals()
    assert "k-8" in repr(left) and "k-9" not in repr(g.refusals())


def test_a_refusal_about_a_longer_id_is_not_the_persons() -> None:
    """Regression: a refusal about customer ``zed-99`` was taken for one
    naming ``zed-9``, whose id it contains."""
    g = story()
    with pytest.raises(UnknownCustomer):
        g.record(Event("visit", at=TIMES[1], customer_id="zed-99", id="EV-R2"))
    g.forget("zed-9", at=TIMES[4])
    assert [r.error for r in g.refusals()] == ["UnknownCustomer", "UnknownCustomer"]
    assert "'zed-99'" in g.refusals()[-1].reason


def test_forget_unknown_erased_invalid_and_read_only() -> None:
    g = forgotten()
    with pytest.raises(UnknownCustomer):
        g.forget("never-was")
    assert g.forget("zed-9") is None
    assert g.forget(" zed-9 ") is None
    for bad in ("bad\x00reason", "lone \ud800"):
        with pytest.raises(ValueError, match="forget reason"):
            g.forget("anna-1", reason=bad)
    with pytest.raises(TypeError, match="forget reason"):
        g.forget("anna-1", reason=7)  # type: ignore[arg-type]
    assert "anna-1" in g.customers()
    with pytest.raises(ReadOnlyGraph):
        g.as_of(3).forget("anna-1")
    with pytest.raises(ReadOnlyGraph):
        g.as_of(3).release_suppression("zed-9")
    with pytest.raises(TypeError):
        g.suppressed(7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        g.release_suppression(7)  # type: ignore[arg-type]


def test_a_graph_without_the_secret_still_replays_but_does_not_recognise() -> None:
    g = forgotten()
    other = IdentityGraph.from_journal(g.journal())  # a fresh random secret
    assert other == g
    assert not other.suppressed("zed-9")
    assert IdentityGraph.from_journal(g.journal(), secret=SECRET).suppressed("zed-9")


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trips_the_suppression_list() -> None:
    g = forgotten()
    g.release_suppression(Link("phone", "+358409998877"))
    saved = checkpoints.dumps(g.state)
    text = repr(checkpoints.loads(saved)).lower()
    assert "erased:" in text and "zed-9" not in text and "zelda" not in text
    restored = new_graph()
    checkpoints.restore(restored.state, checkpoints.loads(saved))
    assert restored.state.suppression.state() == g.state.suppression.state()
    assert restored.suppressed("zed-9") and restored.suppressed(
        Link("email", "zelda.qx@example.org")
    )
    assert not restored.suppressed(Link("phone", "+358409998877"))


# ---------------------------------------------------------------- importers


def rejects_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_customers_import_rejects_erased_values_naming_the_hash(tmp_path: Path) -> None:
    g = forgotten()
    path = tmp_path / "customers.csv"
    path.write_text(
        "Customer ID,Email\nzed-9,fresh@example.org\nnew-7,ZELDA.QX@example.org\n"
        "anna-1,anna@example.org\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_customers(g, path, links={"Email": "email"}, rejects=rejects, at=TIMES[4])
    assert summary.rejected == 2
    rows = rejects_of(rejects)
    assert [row["row"] for row in rows] == ["2", "3"]
    for row in rows:
        assert "SuppressedLink" in row["reason"] and "erased:" in row["reason"]
        assert "zed-9" not in row["reason"] and "zelda" not in row["reason"].lower()
    assert "zed-9" not in g.customers() and "new-7" not in g.customers()


def test_offline_data_import_rejects_erased_customers_naming_the_hash(tmp_path: Path) -> None:
    g = forgotten()
    path = tmp_path / "data.csv"
    path.write_text(
        "Time Stamp,Customer ID,Event Type,Category,Event Name,Num1,Num2,Var1,"
        "EventName Attr1,EventTransaction Attr1,EventTransaction Attr2\n"
        "2024-03-01 10:15:00,zed-9,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-1,card\n"
        "2024-03-01 10:15:00,anna-1,7,Coffee,SKU-1,2,7.80,HEL-01,Paulig,T-2,card\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_offline_data(g, path, tz="UTC", rejects=rejects)
    assert (summary.imported, summary.rejected) == (1, 1)
    (row,) = rejects_of(rejects)
    assert row["row"] == "2"
    assert "SuppressedLink" in row["reason"] and "erased:" in row["reason"]
    assert "zed-9" not in repr(row)


def test_offline_events_import_rejects_erased_links_naming_the_hash(tmp_path: Path) -> None:
    g = forgotten()
    path = tmp_path / "events.csv"
    path.write_text(
        "Type,Event Name,Member Email Address,Mailing,Time Stamp,Interest Stage,"
        "Interest Points,Quantity,Coupon\n"
        "plain,Store visit,zelda.qx@example.org,Spring,2024-03-01 10:00:00,,,,\n"
        "plain,Store visit,anna@example.org,Spring,2024-03-01 10:00:00,,,,\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_offline_events(g, path, tz="UTC", rejects=rejects)
    assert (summary.imported, summary.rejected) == (1, 1)
    (row,) = rejects_of(rejects)
    assert row["row"] == "2"
    assert "erased:" in row["reason"] and "zelda" not in repr(row).lower()


def test_an_erased_id_is_refused_before_any_check_that_would_log_it() -> None:
    """Regression: an event re-sending an erased event id or customer id with
    a blocked link or a bad purchase was logged with that value (the
    blocked link's refusal named the event id; the purchase's error named
    the event and kept it whole)."""
    g = forgotten()
    blocked = Link("email", "test@test.com")
    for event in (
        Event("visit", at=TIMES[4], customer_id="anna-1", links=[blocked], id="EV-Z1"),
        Event("purchase", at=TIMES[4], customer_id="zed-9", data={"amount": "x"}, id="ok-1"),
        Event("purchase", at=TIMES[4], customer_id="anna-1", data={"amount": "x"}, id="EV-Z2"),
    ):
        before = len(g.refusals())
        with pytest.raises(SuppressedLink):
            g.record(event)
        assert [r.error for r in g.refusals()[before:]] == ["SuppressedLink"]
    assert_none_of(["ev-z1", "ev-z2", "zed-9"], repr(g.refusals()).lower(), "the refusals")


def test_queries_about_an_erased_value_leave_nothing_reachable() -> None:
    """A query that names an erased link (its owner, its history, its
    profile, its normalised form) put the value back into the graph's cache
    of recently normalised links, reachable until the next forget."""
    g = forgotten()
    for spelling in ("ZELDA.QX@example.org", " zelda.qx@Example.org"):
        link = Link("email", spelling)
        assert g.owner(link) is None and g.history(link) == []
        assert g.resolve(link) == g.normalize(link)
        assert g.suppressed(link)
        assert g.events(link) == []
    leaked = [text for text in reachable_strings(g) if "zelda.qx" in text.lower()]
    assert leaked == []


# ---------------------------------------------------------------- the review's findings


def _person() -> IdentityGraph:
    g = new_graph()
    g.register("annxy", {"city": "Oulu"}, at=TIMES[0])
    g.link("annxy", Link("email", "secret.ann@example.com"), at=TIMES[0])
    g.link("bob", Link("email", "bob@example.com"), at=TIMES[0])
    g.link("cat", Link("email", "cat@example.com"), at=TIMES[0])
    return g


def test_others_free_text_naming_the_person_becomes_a_hash() -> None:
    """Another customer's attribute holding the person's email (or quoting
    their id), and a merge reason between two others quoting the email,
    stayed in clear in the journal and the state."""
    g = _person()
    g.register(
        "bob",
        {"spouse": "secret.ann@example.com", "ref": "annxy", "note": "friend of 'annxy'"},
        at=TIMES[1],
    )
    g.register("bob", {"city": "annxy street", "hobby": "chess"}, at=TIMES[1])  # not the person
    g.merge("bob", "cat", reason="cat said secret.ann@example.com is a friend", at=TIMES[1])
    g.forget("annxy", at=TIMES[2])
    assert_none_of(["secret.ann", "'annxy'"], visible_text(g), "the graph")
    kept = g.attributes("bob")
    assert kept["city"] == "annxy street" and kept["hobby"] == "chess"
    assert all(kept[name].startswith("erased:") for name in ("spouse", "ref", "note"))
    assert IdentityGraph.from_journal(g.journal(), secret=g.state.suppression.secret) == g
    g._check()


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.register("erased:0123456789abcdef0123456789abcdef"),
        lambda g: g.link("x", Link("crm_id", "erased:0123")),
        lambda g: g.record(Event("call", at=TIMES[0], customer_id="bob", id="erased:77")),
    ],
)
def test_values_that_look_like_a_keyed_hash_are_refused(call: Any) -> None:
    """An id equal to an erased person's (public) hash was accepted, and the
    journal then showed two people under one id."""
    g = _person()
    with pytest.raises(
        (InvalidCustomerId, InvalidLink, InvalidEvent), match="begins with 'erased:'"
    ):
        call(g)


def test_unlink_and_release_of_an_erased_value_leave_nothing_reachable() -> None:
    g = _person()
    g.forget("annxy", at=TIMES[2])
    assert g.unlink(Link("email", "Secret.Ann@example.com"), at=TIMES[3]) is None
    assert g.release(Link("email", "Secret.Ann@example.com"), at=TIMES[3]) is None
    leaked = [text for text in reachable_strings(g) if "secret.ann" in text.lower()]
    assert leaked == []


def test_the_columns_problem_text_forgets_the_erased_purchase() -> None:
    """The purchase that turned the columnar engine off was quoted (id and
    amount) in the columns' problem text after it was erased."""
    g = _person()
    huge = Decimal("1234567890123456789012.5")
    g.record(
        Event("purchase", at=TIMES[1], customer_id="annxy", id="T-ANN-HUGE", data={"amount": huge})
    )
    g.forget("annxy", at=TIMES[2])
    leaked = [text for text in reachable_strings(g) if "T-ANN-HUGE" in text or "1234567890" in text]
    assert leaked == []


def test_a_refusal_mentioning_the_id_inside_other_tokens_stays() -> None:
    """Forgetting "mary" deleted refusals about ``mary-1`` and ``noemail@mary.com``."""
    g = new_graph()
    g.register("mary", at=TIMES[0])
    g.register("bob", at=TIMES[0])
    with pytest.raises(InvalidEvent):
        g.record(
            Event("purchase", at=TIMES[1], customer_id="bob", id="mary-1", data={"amount": "x"})
        )
    with pytest.raises(InvalidLink):
        g.link("bob", Link("email", "noemail@mary.com"), at=TIMES[1])
    before = g.refusals()
    g.forget("mary", at=TIMES[2])
    assert g.refusals() == before


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Secret.Ann@Example.COM", True),  # another letter case
        ("mailto:secret.ann@example.com", True),
        ("spouse=secret.ann@example.com", True),
        ("bob,secret.ann@example.com;x", True),
        ('he is "annxy"', True),
        ("he is 'annxy'", True),
        ("write to secret.ann@example.com.", True),
        ("noemail@secret.ann@example.com.org", False),  # another address
        ("xsecret.ann@example.com", False),
        ("annxy2", False),  # another id
        ("annxy street", False),  # an unquoted short id is not the person
    ],
)
def test_free_text_naming_the_person_by_the_token_rule(text: str, named: bool) -> None:
    g = _person()
    g.register("bob", {"note": text}, at=TIMES[1])
    g.merge("bob", "cat", reason=text, at=TIMES[1])
    g.forget("annxy", at=TIMES[2])
    note = g.attributes("bob")["note"]
    reason = next(e.args["reason"] for e in g.journal() if e.op == "merge")
    assert (note.startswith("erased:"), reason.startswith("erased:")) == (named, named)
    assert IdentityGraph.from_journal(g.journal(), secret=g.state.suppression.secret) == g
