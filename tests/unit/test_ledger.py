"""The event ledger: events, anchors, refusals, idempotency, windows and
attribution at query time through links, merges and splits."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from identity_graph import (
    DuplicateEvent,
    Event,
    IdentityGraph,
    InvalidEvent,
    Limits,
    Link,
    LinkType,
    ReadOnlyGraph,
    UnknownCustomer,
)

UTC = timezone.utc
HELSINKI_WINTER = timezone(timedelta(hours=2))


def t(day: int, hour: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


EMAIL = Link("email", "Ann@Example.com")
EMAIL_N = Link("email", "ann@example.com")
PHONE = Link("phone", "+358 40 123 4567")
PHONE_N = Link("phone", "+358401234567")
CARD = Link("loyalty_card", "7001 2345")
CARD_N = Link("loyalty_card", "70012345")
CRM = Link("crm_id", "CRM-1")
WEB = Link("web_id", "w-1")
ZZ = Link("zz_id", "z-1")


def ids(events: Iterable[Event]) -> list[str | None]:
    return [event.id for event in events]


def checked(g: IdentityGraph) -> None:
    """The ledger's and the graph's own invariants."""
    g._ledger.check()
    g._check()


def purchase(event_id: str, at: datetime, **identity: object) -> Event:
    return Event("purchase", at=at, id=event_id, data={"amount": 10}, **identity)  # type: ignore[arg-type]


# --- Event construction --------------------------------------------------------------


def test_event_data_is_a_deep_copy() -> None:
    data = {"items": [{"sku": "A-1", "qty": 1}], "store": "S1", "extra": {"tags": ["x"]}}
    event = Event("purchase", at=t(1), customer_id="c1", data=data)
    data["items"][0]["qty"] = 99  # type: ignore[index]
    data["items"].append({"sku": "B-2"})  # type: ignore[attr-defined]
    data["extra"]["tags"].append("y")  # type: ignore[index]
    data["store"] = "S2"
    data["new"] = 1  # type: ignore[assignment]
    assert dict(event.data["items"][0]) == {"sku": "A-1", "qty": 1}
    assert len(event.data["items"]) == 1
    assert event.data["extra"]["tags"] == ("x",)
    assert event.data["store"] == "S1"
    assert "new" not in event.data
    assert set(event.data) == {"items", "store", "extra"}


def test_event_data_is_read_only_and_lists_become_tuples() -> None:
    event = Event(
        "purchase", at=t(1), customer_id="c1", data={"items": [{"sku": "A", "qty": [1, 2]}]}
    )
    assert isinstance(event.data["items"], tuple)
    assert isinstance(event.data["items"][0]["qty"], tuple)
    with pytest.raises(TypeError):
        event.data["store"] = "S1"  # type: ignore[index]
    with pytest.raises(TypeError):
        del event.data["items"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        event.data["items"][0]["sku"] = "B"
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]


def test_recorded_event_data_is_read_only_too() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    data = {"items": [{"sku": "A"}]}
    g.record(Event("purchase", at=t(2), customer_id="c1", data=data, id="T-1"))
    data["items"].append({"sku": "B"})
    (stored,) = g.events("c1")
    assert len(stored.data["items"]) == 1
    with pytest.raises(TypeError):
        stored.data["items"] = ()  # type: ignore[index]
    checked(g)


def test_event_data_supported_types() -> None:
    data = {
        "s": "x",
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "amount": Decimal("12.30"),
        "day": date(2024, 1, 1),
        "when": t(1, 12),
        "nested": {"list": [1, [2, {"deep": "y"}]], "tuple": (3, 4)},
    }
    event = Event("purchase", at=t(1), customer_id="c1", data=data)
    assert event.data["amount"] == Decimal("12.30")
    assert event.data["nested"]["list"] == (1, (2, {"deep": "y"}))
    assert event.data["nested"]["tuple"] == (3, 4)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"items": [{"x": {1, 2}}]}, "data.items[0].x"),
        ({"blob": b"bytes"}, "data.blob"),
        ({"store": {"obj": object()}}, "data.store.obj"),
        ({"items": [1, 2, frozenset()]}, "data.items[2]"),
    ],
)
def test_unsupported_data_type_names_the_path(data: dict[str, object], path: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event("purchase", at=t(1), customer_id="c1", data=data)
    assert path in str(info.value)


def test_data_key_must_be_a_string_and_data_a_mapping() -> None:
    with pytest.raises(InvalidEvent):
        Event("purchase", at=t(1), customer_id="c1", data={"items": [{1: "a"}]})
    with pytest.raises(InvalidEvent):
        Event("purchase", at=t(1), customer_id="c1", data=[("a", 1)])  # type: ignore[arg-type]


def test_links_as_a_single_link_or_a_list() -> None:
    assert Event("call", at=t(1), links=PHONE).links == (PHONE,)
    assert Event("call", at=t(1), links=[PHONE, EMAIL]).links == (PHONE, EMAIL)
    assert Event("call", at=t(1), links=(link for link in [CARD])).links == (CARD,)
    assert Event("call", at=t(1), customer_id="c1").links == ()
    with pytest.raises(InvalidEvent):
        Event("call", at=t(1), links="email:ann@example.com")  # type: ignore[arg-type]


# --- anchors -------------------------------------------------------------------------


def _owners(g: IdentityGraph, pairs: dict[str, Link], at: datetime) -> None:
    for customer, link in pairs.items():
        g.link(customer, link, at=at)


def test_customer_id_anchors_before_any_link() -> None:
    g = IdentityGraph()
    _owners(g, {"c_card": CARD}, t(1))
    g.register("c2", at=t(1))
    g.record(purchase("P-1", t(2), customer_id="c2", links=[CARD]))
    assert ids(g.events("c2")) == ["P-1"]
    assert ids(g.events("c_card")) == []
    checked(g)


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ([EMAIL, PHONE], "c_email"),
        ([PHONE, CARD, EMAIL], "c_card"),
        ([PHONE, EMAIL], "c_email"),
        ([CRM, PHONE], "c_phone"),
        ([ZZ, WEB, CRM], "c_crm"),
        ([WEB, ZZ], "c_web"),
        ([ZZ, EMAIL], "c_email"),
    ],
)
def test_default_anchor_priority(links: list[Link], expected: str) -> None:
    g = IdentityGraph()
    owners = {
        "c_card": CARD,
        "c_email": EMAIL,
        "c_phone": PHONE,
        "c_crm": CRM,
        "c_web": WEB,
        "c_zz": ZZ,
    }
    _owners(g, owners, t(1))
    g.record(purchase("P-1", t(2), links=links))
    for customer in owners:
        assert ids(g.events(customer)) == (["P-1"] if customer == expected else []), customer
    checked(g)


@pytest.mark.parametrize(
    ("link_types", "links", "expected"),
    [
        ({"phone": LinkType(priority=-1)}, [CARD, EMAIL, PHONE], "c_phone"),
        ({"crm_id": LinkType(priority=-5)}, [CARD, CRM], "c_crm"),
        ({"loyalty_card": LinkType(priority=9)}, [CARD, EMAIL], "c_email"),
        ({"zz_id": LinkType(priority=-1), "web_id": LinkType(priority=-2)}, [ZZ, WEB], "c_web"),
    ],
)
def test_anchor_priority_is_configurable(
    link_types: dict[str, LinkType], links: list[Link], expected: str
) -> None:
    g = IdentityGraph(link_types=link_types)
    owners = {
        "c_card": CARD,
        "c_email": EMAIL,
        "c_phone": PHONE,
        "c_crm": CRM,
        "c_web": WEB,
        "c_zz": ZZ,
    }
    _owners(g, owners, t(1))
    g.record(purchase("P-1", t(2), links=links))
    for customer in owners:
        assert ids(g.events(customer)) == (["P-1"] if customer == expected else []), customer
    checked(g)


def test_card_and_email_event_goes_to_the_card_owner_at_that_time() -> None:
    g = IdentityGraph()
    g.link("c_email", EMAIL, at=t(1))
    g.link("c1", CARD, at=t(1))
    g.relink(CARD, to="c2", at=t(10))
    g.record(purchase("before", t(5), links=[EMAIL, CARD]))
    g.record(purchase("after", t(15), links=[EMAIL, CARD]))
    g.record(purchase("email-only", t(15), links=[EMAIL]))
    assert ids(g.events("c1")) == ["before"]
    assert ids(g.events("c2")) == ["after"]
    assert ids(g.events("c_email")) == ["email-only"]
    checked(g)


def test_unclaimed_high_priority_link_still_anchors() -> None:
    # The anchor is the highest-priority link whoever owns it: a card nobody
    # claimed keeps the event on the card's anonymous profile, not the email's owner.
    g = IdentityGraph()
    g.link("c_email", EMAIL, at=t(1))
    g.record(purchase("P-1", t(5), links=[EMAIL, CARD]))
    assert ids(g.events("c_email")) == []
    assert ids(g.events(CARD)) == ["P-1"]
    g.link("c1", CARD, at=t(20))  # the next claimant absorbs it
    assert ids(g.events("c1")) == ["P-1"]
    checked(g)


# --- refusals ------------------------------------------------------------------------


def test_invalid_and_blocked_links_are_dropped_and_logged() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    bad_email = Link("email", "not-an-email")
    blocked_phone = Link("phone", "null")
    assert g.record(purchase("P-1", t(2), links=[bad_email, blocked_phone, CARD])) is True
    (stored,) = g.events("c1")
    assert stored.links == (CARD_N,)
    refusals = g.refusals()
    assert [r.op for r in refusals] == ["record", "record"]
    assert [r.error for r in refusals] == ["InvalidLink", "BlockedLink"]
    assert "not-an-email" in refusals[0].reason
    assert "null" in refusals[1].reason
    checked(g)


def test_event_left_without_identity_is_invalid_and_logged() -> None:
    g = IdentityGraph()
    with pytest.raises(InvalidEvent):
        g.record(purchase("P-1", t(2), links=[Link("email", "nope"), Link("phone", "unknown")]))
    errors = [r.error for r in g.refusals()]
    assert errors == ["InvalidLink", "BlockedLink", "InvalidEvent"]
    assert all(r.op == "record" for r in g.refusals())
    assert len(g._ledger) == 0
    with pytest.raises(InvalidEvent):
        g.record(purchase("P-2", t(2)))
    assert [r.error for r in g.refusals()][-1] == "InvalidEvent"
    assert len(g._ledger) == 0
    checked(g)


def test_invalid_customer_id_is_invalid_event() -> None:
    g = IdentityGraph()
    with pytest.raises(InvalidEvent):
        g.record(purchase("P-1", t(2), customer_id="   "))
    assert len(g._ledger) == 0


def test_unknown_customer_is_refused() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    journal = list(g.journal())
    with pytest.raises(UnknownCustomer):
        g.record(purchase("P-1", t(2), customer_id="c9"))
    assert g.customers() == ["c1"]
    assert list(g.journal()) == journal
    assert len(g._ledger) == 0
    assert [(r.op, r.error) for r in g.refusals()] == [("record", "UnknownCustomer")]
    with pytest.raises(UnknownCustomer):
        g.events("c9")
    checked(g)


def test_register_unknown_registers_the_customer() -> None:
    g = IdentityGraph(register_unknown=True)
    assert g.record(purchase("P-1", t(2), customer_id="c9")) is True
    assert g.customers() == ["c9"]
    entries = list(g.journal())
    assert [(e.op, e.args["customer_id"]) for e in entries] == [("register", "c9")]
    assert ids(g.events("c9")) == ["P-1"]
    # A second event of the same customer registers nothing more.
    assert g.record(purchase("P-2", t(3), customer_id=" c9 ")) is True
    assert len(list(g.journal())) == 1
    assert ids(g.events("c9")) == ["P-1", "P-2"]
    assert g.refusals() == []
    checked(g)


def test_naive_times_are_refused() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    with pytest.raises(ValueError):
        g.record(purchase("P-1", datetime(2024, 1, 2), customer_id="c1"))
    assert len(g._ledger) == 0
    g.record(purchase("P-2", t(2), customer_id="c1"))
    with pytest.raises(ValueError):
        g.events("c1", start=datetime(2024, 1, 1))
    with pytest.raises(ValueError):
        g.events("c1", end=datetime(2024, 1, 3))
    with pytest.raises(ValueError):
        g.as_of(1).events("c1", start=datetime(2024, 1, 1))
    checked(g)


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset (POSIX)")
def test_content_hash_does_not_depend_on_the_local_time_zone() -> None:
    # Aware datetimes inside data hash by their instant, whatever the machine's
    # TZ setting; naive ones are refused (test_naive_datetime_in_data_refused).
    old = os.environ.get("TZ")
    hashes = []
    try:
        for zone in ("UTC", "Europe/Helsinki"):
            os.environ["TZ"] = zone
            time.tzset()
            when = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
            event = Event("visit", at=t(1), customer_id="c1", data={"when": when})
            hashes.append(event.content_id())
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert hashes[0] == hashes[1]


def test_naive_datetime_in_data_refused() -> None:
    with pytest.raises(InvalidEvent, match=r"data\.items\[0\]\.when is a naive datetime"):
        Event("visit", at=t(1), customer_id="c1", data={"items": [{"when": datetime(2024, 1, 1)}]})


def test_links_must_be_link_objects() -> None:
    with pytest.raises(InvalidEvent, match=r"event link 'email' is not a Link"):
        Event("visit", at=t(1), links=["email"])  # type: ignore[list-item]


def test_events_at_reaches_an_anonymous_span_of_a_link_owned_now() -> None:
    # Two unlinks in a row leave an anonymous span with no next claimant; its
    # events belong to the link's anonymous profile, reachable by
    # resolving the link at that time.
    g = IdentityGraph()
    link = Link("email", "x@example.com")
    g.link("c1", link, at=t(1))
    g.unlink(link, at=t(5))
    g.unlink(link, at=t(3))
    g.link("c2", link, at=t(7))
    g.record(Event("visit", at=t(4), links=link, id="E4"))
    assert [e.id for e in g.events(link)] == []  # through the current owner, c2
    assert [e.id for e in g.events(link, at=t(4))] == ["E4"]
    assert g.resolve(link, at=t(4)) == g.normalize(link)
    checked(g)


# --- idempotency ---------------------------------------------------------------------


def test_same_id_same_content_changes_nothing() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    assert g.record(purchase("T-1", t(2), links=[CARD])) is True
    before = (g.events("c1"), list(g.journal()), g.refusals(), len(g._ledger))
    # The same content written differently: raw link value, another time zone.
    again = purchase("T-1", t(2).astimezone(HELSINKI_WINTER), links=[CARD_N])
    assert g.record(again) is False
    assert g.record(purchase("T-1", t(2), links=[CARD])) is False
    assert (g.events("c1"), list(g.journal()), g.refusals(), len(g._ledger)) == before
    checked(g)


def test_same_id_other_content_is_duplicate_event() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    g.record(purchase("T-1", t(2), customer_id="c1"))
    other = Event("purchase", at=t(2), customer_id="c1", data={"amount": 11}, id="T-1")
    with pytest.raises(DuplicateEvent):
        g.record(other)
    with pytest.raises(ValueError):  # DuplicateEvent is a ValueError
        g.record(Event("refund", at=t(2), customer_id="c1", data={"amount": 10}, id="T-1"))
    (stored,) = g.events("c1")
    assert stored.data["amount"] == 10 and stored.type == "purchase"
    assert len(g._ledger) == 1
    assert [r.error for r in g.refusals()] == ["DuplicateEvent", "DuplicateEvent"]
    checked(g)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("1", 1),
        (True, 1),
        (1, 1.0),
        (Decimal("10.0"), Decimal("10.00")),
    ],
)
def test_same_id_content_identity_agrees_with_the_content_hash(
    first: object, second: object
) -> None:
    # Two contents the ledger itself tells apart (different hash ids when
    # recorded without an id) are "different content" under one id too.
    def make(value: object, event_id: str | None) -> Event:
        return Event("purchase", at=t(2), customer_id="c1", data={"v": value}, id=event_id)

    g = IdentityGraph()
    g.register("c1", at=t(1))
    assert g.record(make(first, None)) is True
    assert g.record(make(second, None)) is True  # a different event: another hash
    assert g.record(make(first, "T-1")) is True
    with pytest.raises(DuplicateEvent):
        g.record(make(second, "T-1"))
    stored = next(e for e in g.events("c1") if e.id == "T-1")
    assert type(stored.data["v"]) is type(first) and str(stored.data["v"]) == str(first)


def test_event_without_id_gets_a_stable_content_hash() -> None:
    def make(at: datetime, data: dict[str, object]) -> Event:
        return Event("visit", at=at, links=[PHONE, EMAIL], data=data)

    g1, g2 = IdentityGraph(), IdentityGraph()
    assert g1.record(make(t(2, 10), {"store": "S1", "channel": "pos"})) is True
    (stored,) = g1.events(EMAIL)
    assert stored.id is not None and stored.id.startswith("h-")
    # Same content: dict keys in another order, the instant in another zone,
    # the links in another order and written raw or normalised.
    same = Event(
        "visit",
        at=t(2, 10).astimezone(HELSINKI_WINTER),
        links=[EMAIL_N, PHONE_N],
        data={"channel": "pos", "store": "S1"},
    )
    assert g1.record(same) is False
    assert len(g1._ledger) == 1
    # Another graph, another run: the same id.
    assert g2.record(same) is True
    assert ids(g2.events(EMAIL)) == [stored.id]
    checked(g1)
    checked(g2)


def test_content_hash_differs_when_any_field_differs() -> None:
    g = IdentityGraph()
    for customer in ("c1", "c2"):
        g.register(customer, at=t(1))
    base: dict[str, object] = {
        "type": "purchase",
        "at": t(2),
        "customer_id": "c1",
        "links": [CARD],
        "data": {"amount": Decimal("10.00"), "items": [{"sku": "A"}]},
    }
    variants = [
        {},
        {"type": "refund"},
        {"at": t(2) + timedelta(microseconds=1)},
        {"customer_id": "c2"},
        {"links": [CARD, EMAIL]},
        {"links": [EMAIL]},
        {"links": []},
        {"data": {"amount": Decimal("10.01"), "items": [{"sku": "A"}]}},
        {"data": {"amount": Decimal("10.00"), "items": [{"sku": "B"}]}},
        {"data": {"amount": Decimal("10.00"), "items": [{"sku": "A"}], "x": None}},
        {"data": {"amount": "10.00", "items": [{"sku": "A"}]}},
        {"data": {}},
    ]
    for change in variants:
        fields = {**base, **change}
        kind = fields.pop("type")
        assert g.record(Event(kind, **fields)) is True, change  # type: ignore[arg-type]
    assert len(g._ledger) == len(variants)
    all_ids = ids(g.events("c1")) + ids(g.events("c2"))
    assert len(set(all_ids)) == len(variants)
    assert all(i is not None and i.startswith("h-") for i in all_ids)
    checked(g)


def test_record_many_counts_skips_refusals_and_goes_on() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    g.record(purchase("OLD", t(1), customer_id="c1"))
    batch = [
        purchase("A", t(2), customer_id="c1"),
        purchase("OLD", t(1), customer_id="c1"),  # unchanged
        purchase("NO-ID", t(3)),  # no identity
        purchase("UNKNOWN", t(3), customer_id="c9"),  # unknown customer
        purchase("NAIVE", datetime(2024, 1, 3), customer_id="c1"),  # naive time
        Event("purchase", at=t(1), customer_id="c1", data={"amount": 1}, id="OLD"),  # duplicate
        Event("visit", at=t(4), customer_id="c1"),  # hashed id
        Event("visit", at=t(4), customer_id="c1"),  # the same again: unchanged
        purchase("B", t(5), links=[Link("email", "x"), Link("email", "null")]),  # nothing left
        purchase("C", t(6), customer_id="c1"),
    ]
    assert g.record_many(batch) == (3, 2)
    assert len(g._ledger) == 4
    events = g.events("c1")
    assert ids(events) == ["OLD", "A", events[2].id, "C"]
    assert events[2].type == "visit" and events[2].id.startswith("h-")  # type: ignore[union-attr]
    refusals = g.refusals()
    assert all(r.op == "record" for r in refusals)
    assert [r.error for r in refusals] == [
        "InvalidEvent",
        "UnknownCustomer",
        "InvalidTime",
        "DuplicateEvent",
        "InvalidLink",
        "BlockedLink",
        "InvalidEvent",
    ]
    assert g.customers() == ["c1"]
    checked(g)


def test_record_many_with_register_unknown() -> None:
    g = IdentityGraph(register_unknown=True)
    assert g.record_many([purchase("A", t(2), customer_id="c9")] * 2) == (1, 1)
    assert [e.op for e in g.journal()] == ["register"]
    assert ids(g.events("c9")) == ["A"]


# --- ordering and windows ------------------------------------------------------------


def test_events_ordered_by_time_then_id() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    g.record(purchase("b", t(3), customer_id="c1"))
    g.record(purchase("z", t(2), customer_id="c1"))
    g.record(purchase("a", t(3).astimezone(HELSINKI_WINTER), customer_id="c1"))
    g.record(purchase("c", t(3), customer_id="c1"))
    g.record(purchase("y", t(1), customer_id="c1"))
    assert ids(g.events("c1")) == ["y", "z", "a", "b", "c"]


def test_half_open_window_and_types() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    g.record(purchase("p1", t(1), customer_id="c1"))
    g.record(Event("call", at=t(2), links=CARD, id="k2"))
    g.record(purchase("p3", t(3), links=CARD))
    g.record(Event("visit", at=t(4), customer_id="c1", id="v4"))
    g.record(purchase("p5", t(5), customer_id="c1"))
    assert ids(g.events("c1", start=t(2), end=t(4))) == ["k2", "p3"]
    assert ids(g.events("c1", start=t(2), end=t(4, 1))) == ["k2", "p3", "v4"]
    assert ids(g.events("c1", start=t(2, 1), end=t(4))) == ["p3"]
    assert ids(g.events("c1", start=t(4))) == ["v4", "p5"]
    assert ids(g.events("c1", end=t(3))) == ["p1", "k2"]
    assert ids(g.events("c1", start=t(3), end=t(3))) == []
    assert ids(g.events("c1", start=t(5), end=t(1))) == []
    # A window written in another time zone means the same instants.
    assert ids(g.events("c1", start=t(2).astimezone(HELSINKI_WINTER), end=t(4))) == ["k2", "p3"]
    assert ids(g.events("c1", types="purchase")) == ["p1", "p3", "p5"]
    assert ids(g.events("c1", types=["call", "visit"])) == ["k2", "v4"]
    assert ids(g.events("c1", types={"call"})) == ["k2"]
    assert ids(g.events("c1", types=[])) == []
    assert ids(g.events("c1", types="nothing")) == []
    assert ids(g.events("c1", start=t(2), end=t(5), types="purchase")) == ["p3"]
    checked(g)


def test_window_cuts_across_ownership_spans() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    g.relink(CARD, to="c2", at=t(5))
    for day in range(1, 10):
        g.record(purchase(f"p{day}", t(day), links=CARD))
    assert ids(g.events("c1", start=t(3), end=t(8))) == ["p3", "p4"]
    assert ids(g.events("c2", start=t(3), end=t(8))) == ["p5", "p6", "p7"]
    assert ids(g.events("c2", start=t(5), end=t(6))) == ["p5"]
    assert ids(g.events("c1", start=t(5))) == []
    checked(g)


# --- attribution at query time -------------------------------------------------------


def test_anonymous_link_events_join_the_next_claimant() -> None:
    g = IdentityGraph()
    g.register("c1", at=t(1))
    g.record(Event("call", at=t(2), links=PHONE, id="call-1"))
    g.record(Event("call", at=t(3), links=PHONE_N, id="call-2"))
    assert g.resolve(PHONE) == PHONE_N
    assert ids(g.events(PHONE)) == ["call-1", "call-2"]
    assert ids(g.events("c1")) == []
    g.link("c1", PHONE, at=t(10))
    g.record(Event("call", at=t(11), links=PHONE, id="call-3"))
    assert ids(g.events("c1")) == ["call-1", "call-2", "call-3"]
    assert g.events(PHONE) == g.events("c1")
    checked(g)


def test_relink_moves_later_events_only() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    for day in (2, 4, 6, 8):
        g.record(purchase(f"p{day}", t(day), links=CARD))
    g.relink(CARD, to="c2", at=t(6))
    assert ids(g.events("c1")) == ["p2", "p4"]
    assert ids(g.events("c2")) == ["p6", "p8"]
    assert ids(g.events(CARD)) == ["p6", "p8"]
    checked(g)


def test_late_arriving_change_point_moves_exactly_the_affected_span() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    g.relink(CARD, to="c2", at=t(10))
    for day in (2, 4, 6, 8, 10, 12):
        g.record(purchase(f"p{day:02}", t(day), links=CARD))
    assert ids(g.events("c1")) == ["p02", "p04", "p06", "p08"]
    assert ids(g.events("c2")) == ["p10", "p12"]
    # Late news: c3 held the card from the 5th until c2 got it on the 10th.
    g.relink(CARD, to="c3", at=t(5))
    assert ids(g.events("c1")) == ["p02", "p04"]
    assert ids(g.events("c3")) == ["p06", "p08"]
    assert ids(g.events("c2")) == ["p10", "p12"]
    # Another correction: c2 actually got it on the 7th (before c3's span ended).
    g.relink(CARD, to="c2", at=t(7))
    assert ids(g.events("c3")) == ["p06"]
    assert ids(g.events("c2")) == ["p08", "p10", "p12"]
    # Same instant again: the later-recorded point replaces the earlier.
    g.relink(CARD, to="c1", at=t(7))
    assert ids(g.events("c1")) == ["p02", "p04", "p08"]
    assert ids(g.events("c2")) == ["p10", "p12"]
    checked(g)


def test_unlink_sends_later_events_to_the_anonymous_profile() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=t(1))
    for day in (2, 4, 6, 8):
        g.record(purchase(f"p{day}", t(day), links=CARD))
    g.unlink(CARD, at=t(4))
    assert g.resolve(CARD) == CARD_N
    assert ids(g.events("c1")) == ["p2"]
    assert ids(g.events(CARD)) == ["p4", "p6", "p8"]
    # Someone claims it later: the anonymous span goes to that claimant.
    g.link("c2", CARD, at=t(7))
    assert ids(g.events("c2")) == ["p4", "p6", "p8"]
    assert ids(g.events("c1")) == ["p2"]
    assert ids(g.events(CARD)) == ["p4", "p6", "p8"]
    checked(g)


def test_unlink_then_claim_leaves_events_after_the_claim_with_the_claimant() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=t(1))
    g.unlink(EMAIL, at=t(3))
    g.link("c2", EMAIL, at=t(5))
    g.unlink(EMAIL, at=t(7))
    for day in range(1, 10):
        g.record(Event("visit", at=t(day), links=EMAIL, id=f"v{day}"))
    assert ids(g.events("c1")) == ["v1", "v2"]
    assert ids(g.events("c2")) == ["v3", "v4", "v5", "v6"]
    assert ids(g.events(EMAIL)) == ["v7", "v8", "v9"]
    checked(g)


def test_merge_unions_and_split_restores_exactly() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=t(1))
    g.link("c2", CARD, at=t(1))
    g.link("c3", PHONE, at=t(1))
    g.record(purchase("e1", t(2), links=EMAIL))
    g.record(purchase("k1", t(3), links=CARD))
    g.record(purchase("c2-own", t(4), customer_id="c2"))
    g.record(Event("call", at=t(5), links=PHONE, id="ph1"))
    g.record(purchase("c1-own", t(6), customer_id="c1"))
    before = {c: g.events(c) for c in ("c1", "c2", "c3")}
    m1 = g.merge("c1", "c2", reason="same person", at=t(7))
    m2 = g.merge("c2", "c3", reason="same person", at=t(7))
    assert m1 is not None and m2 is not None
    union = ["e1", "k1", "c2-own", "ph1", "c1-own"]
    for ref in ("c1", "c2", "c3", EMAIL, CARD, PHONE):
        assert ids(g.events(ref)) == union
    g.split(m1)
    assert g.events("c1") == before["c1"]
    assert ids(g.events("c2")) == ["k1", "c2-own", "ph1"]
    assert ids(g.events("c3")) == ["k1", "c2-own", "ph1"]
    g.split(m2)
    assert {c: g.events(c) for c in ("c1", "c2", "c3")} == before
    checked(g)


def test_detach_restores_the_detached_customer() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=t(1))
    g.link("c2", CARD, at=t(1))
    g.link("c3", PHONE, at=t(1))
    g.record(purchase("e1", t(2), links=EMAIL))
    g.record(purchase("k1", t(3), links=CARD))
    g.record(Event("call", at=t(5), links=PHONE, id="ph1"))
    before = {c: g.events(c) for c in ("c1", "c2", "c3")}
    g.merge("c1", "c2", at=t(6))
    g.merge("c2", "c3", at=t(6))
    assert ids(g.events("c3")) == ["e1", "k1", "ph1"]
    g.detach("c2")
    assert {c: g.events(c) for c in ("c1", "c2", "c3")} == before
    checked(g)


def test_events_of_a_link_resolve_through_its_current_owner() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=t(1))
    g.link("c1", CARD, at=t(1))
    g.record(purchase("k1", t(2), links=CARD))
    g.record(purchase("own", t(3), customer_id="c1"))
    assert ids(g.events(Link("email", " ANN@example.COM "))) == ["k1", "own"]
    assert g.events(Link("loyalty_card", "7001-2345")) == g.events("c1")
    g.relink(CARD, to="c2", at=t(10))
    # Now the card's profile is c2's, who has no events yet.
    assert ids(g.events(CARD)) == []
    assert ids(g.events(EMAIL)) == ["k1", "own"]
    # A link never seen is its own (empty) anonymous profile.
    assert g.events(Link("phone", "+358 40 765 4321")) == []
    checked(g)


def test_as_of_view_attributes_through_the_graph_as_it_stood() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=t(1))
    g.link("c2", CARD, at=t(1))
    g.record(purchase("e1", t(2), links=EMAIL))
    g.record(purchase("k1", t(3), links=CARD))
    seq_before_merge = len(list(g.journal()))
    g.merge("c1", "c2", at=t(4))
    g.relink(CARD, to="c3", at=t(2, 12))
    g.record(purchase("e2", t(5), links=EMAIL))  # recorded after the view's seq
    view = g.as_of(seq_before_merge)
    # The ledger is shared; attribution follows the view's graph.
    assert ids(view.events("c1")) == ["e1", "e2"]
    assert ids(view.events("c2")) == ["k1"]
    assert ids(view.events(CARD)) == ["k1"]
    with pytest.raises(UnknownCustomer):
        view.events("c3")
    assert ids(g.events("c1")) == ["e1", "e2"]
    assert ids(g.events("c3")) == ["k1"]
    with pytest.raises(ReadOnlyGraph):
        view.record(purchase("x", t(6), customer_id="c1"))
    with pytest.raises(ReadOnlyGraph):
        view.record_many([purchase("y", t(6), customer_id="c1")])
    assert len(g._ledger) == 3
    # Unowned in the view: the card's anonymous profile.
    empty = g.as_of(0)
    assert ids(empty.events(CARD)) == ["k1"]
    assert ids(empty.events(EMAIL)) == ["e1", "e2"]
    checked(g)


# --- randomized cross-check against a naive attribution -----------------------------

CUSTOMERS = [f"c{i}" for i in range(8)]
LINKS = [
    Link("email", "a@x.com"),
    Link("email", "b@x.com"),
    Link("phone", "+358 40 111 2233"),
    Link("phone", "+358 40 444 5566"),
    Link("loyalty_card", "1000-0001"),
    Link("loyalty_card", "1000-0002"),
    Link("crm_id", "K-1"),
    Link("web_id", "W-1"),
]
DEFAULT_ORDER = {"loyalty_card": 0, "email": 1, "phone": 2}


def _random_time(rng: random.Random) -> datetime:
    # A coarse grid, so that change points and events often share an instant.
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=12 * rng.randrange(60))


def _anchor(g: IdentityGraph, links: list[Link]) -> Link:
    normal = sorted({g.normalize(link) for link in links})
    return min(normal, key=lambda link: (DEFAULT_ORDER.get(link.name, 99), link.name, link.value))


def _naive(g: IdentityGraph, recorded: dict[str, Event]) -> tuple[dict[object, list[str]], int]:
    """Scan every event; attribute it with owner()/resolve() at its own time."""
    by_profile: dict[object, list[tuple[datetime, str]]] = {}
    for event_id, event in recorded.items():
        if event.customer_id is not None:
            profile: object = g.resolve(event.customer_id)
        else:
            anchor = _anchor(g, list(event.links))
            owner = g.owner(anchor, at=event.at)
            profile = g.resolve(anchor, at=event.at)
            assert profile == (anchor if owner is None else g.resolve(owner))
        by_profile.setdefault(profile, []).append((event.at, event_id))
    lists = {p: [i for _at, i in sorted(keys)] for p, keys in by_profile.items()}
    return lists, sum(len(v) for v in lists.values())


def _cross_check(g: IdentityGraph, recorded: dict[str, Event], rng: random.Random) -> None:
    expected, total = _naive(g, recorded)
    assert total == len(recorded) == len(g._ledger)
    seen: list[str | None] = []
    for profile in g.profiles():
        got = ids(g.events(profile.id))
        assert got == expected.get(profile.id, []), profile.id
        seen += got
        for customer in profile.customer_ids:
            assert ids(g.events(customer)) == got
        # A random window and type filter agrees with filtering the naive list.
        start, end = sorted([_random_time(rng), _random_time(rng)])
        kinds = rng.choice([None, "purchase", ["call", "visit"]])
        allowed = {"purchase", "call", "visit"} if kinds is None else set(kinds)
        if kinds == "purchase":
            allowed = {"purchase"}
        want = [
            i
            for i in expected.get(profile.id, [])
            if start <= recorded[i].at < end and recorded[i].type in allowed
        ]
        assert ids(g.events(profile.id, start=start, end=end, types=kinds)) == want
    for link in LINKS:
        current = g.resolve(link)
        if isinstance(current, Link):  # unowned now: its anonymous profile
            got = ids(g.events(link))
            assert got == expected.get(current, []), link
            seen += got
        else:
            assert g.events(link) == g.events(current)
    # Nothing is counted twice; what no query shows is only the anonymous
    # activity of links that are owned again now (see the report / spec gap).
    assert len(seen) == len(set(seen))
    hidden = {
        i
        for p, evs in expected.items()
        if isinstance(p, Link) and not isinstance(g.resolve(p), Link)
        for i in evs
    }
    assert set(seen) | hidden == set(recorded)
    assert not set(seen) & hidden
    checked(g)


@pytest.mark.parametrize("seed", [1, 7, 42, 2024])
def test_random_operations_match_naive_attribution(seed: int) -> None:
    rng = random.Random(seed)
    g = IdentityGraph(limits=Limits(max_moves=10_000, max_customers_per_profile=1000))
    for customer in CUSTOMERS[:4]:
        g.register(customer, at=datetime(2023, 12, 1, tzinfo=UTC))
    recorded: dict[str, Event] = {}
    merges: list[str] = []
    serial = 0

    def record_some(count: int) -> None:
        nonlocal serial
        for _ in range(count):
            serial += 1
            kind = rng.choice(["purchase", "call", "visit"])
            at = _random_time(rng)
            if rng.random() < 0.3:
                at = at.astimezone(HELSINKI_WINTER)
            known = g.customers()
            identity: dict[str, object] = {}
            roll = rng.random()
            if roll < 0.25 and known:
                identity["customer_id"] = rng.choice(known)
                if rng.random() < 0.3:
                    identity["links"] = rng.sample(LINKS, 1)
            else:
                identity["links"] = rng.sample(LINKS, rng.choice([1, 1, 2, 3]))
            event_id = f"E{serial:04}" if rng.random() < 0.5 else None
            event = Event(kind, at=at, data={"n": serial}, id=event_id, **identity)  # type: ignore[arg-type]
            assert g.record(event) is True
            # Find the stored copy (and the id it got, when hashed) by its serial.
            (stored,) = [e for e in g._ledger._events.values() if e.data["n"] == serial]
            assert stored.id == event_id or (event_id is None and stored.id.startswith("h-"))
            # The naive attribution works from the event as it was submitted.
            recorded[stored.id] = event
            if rng.random() < 0.05:  # a resend changes nothing
                assert g.record(event) is False

    for step in range(200):
        op = rng.choice(
            ["link", "link", "relink", "unlink", "merge", "merge", "split", "detach", "rec"]
        )
        at = _random_time(rng)
        link = rng.choice(LINKS)
        customer = rng.choice(CUSTOMERS)
        if op == "link":
            g.link(customer, link, at=at)
        elif op == "relink":
            g.relink(link, to=customer, at=at)
        elif op == "unlink":
            g.unlink(link, at=at)
        elif op == "merge":
            known = g.customers()
            a, b = rng.choice(known), rng.choice(known)
            merge_id = g.merge(a, b, reason="random", at=at)
            if merge_id is not None:
                merges.append(merge_id)
        elif op == "split" and merges:
            g.split(rng.choice(merges), at=at)
        elif op == "detach":
            g.detach(rng.choice(g.customers()), at=at)
        record_some(1 if op != "rec" else 5)
        if step % 50 == 49:
            _cross_check(g, recorded, rng)
    record_some(300 - len(recorded) if len(recorded) < 300 else 0)
    _cross_check(g, recorded, rng)
