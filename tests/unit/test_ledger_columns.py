"""The ledger's compact keeping: per-anchor time columns sorted lazily,
``add_many``, events kept as stored text until first read, and the
purchase columns read from the events on first access.  Every way of
filing the same events must answer the same."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph import DuplicateEvent, Event, IdentityGraph, Link, codec
from identity_graph.ledger import Ledger, micros

UTC = timezone.utc
T0 = datetime(2024, 3, 31, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
CUSTOMERS = ["c1", "c2", "c3"]
CARDS = [Link("loyalty_card", f"K{i}") for i in range(3)]


def fresh() -> Ledger:
    return Ledger(IdentityGraph()._ownership)


@st.composite
def filed(draw: st.DrawFn) -> list[tuple[Event, Any]]:
    """Events with distinct ids, few distinct times (ties), on a few
    anchors, some naming a second identity, half of them purchases."""
    count = draw(st.integers(0, 40))
    ids = draw(st.lists(st.text("abAB,\"\\é", min_size=1, max_size=4), min_size=count,
                        max_size=count, unique=True))  # fmt: skip
    items = []
    for event_id in ids:
        minute = draw(st.integers(0, 6))
        at = (T0 + timedelta(minutes=minute)).astimezone(draw(st.sampled_from(ZONES)))
        customer = draw(st.sampled_from([None, *CUSTOMERS]))
        links = tuple(draw(st.lists(st.sampled_from(CARDS), max_size=2, unique=True)))
        if customer is None and not links:
            customer = CUSTOMERS[0]
        kind = draw(st.sampled_from(["purchase", "visit"]))
        data: dict[str, Any] = {}
        if kind == "purchase":
            data = {"amount": Decimal(draw(st.integers(0, 999))) / 100, "store": "S1"}
        event = Event(kind, at=at, customer_id=customer, links=links, data=data, id=event_id)
        items.append((event, customer if customer is not None else links[0].key))
    return items


def naive(items: list[tuple[Event, Any]], anchor: Any, start: datetime | None,
          end: datetime | None) -> list[str]:  # fmt: skip
    found = [
        (micros(event.at), event.id)
        for event, its in items
        if its == anchor
        and (start is None or event.at >= start)
        and (end is None or event.at < end)
    ]
    return [event_id for _at, event_id in sorted(found)]  # type: ignore[misc]


def by_add(items: list[tuple[Event, Any]]) -> Ledger:
    ledger = fresh()
    for event, anchor in items:
        ledger.add(event, anchor)
    return ledger


def by_add_many(items: list[tuple[Event, Any]], cut: int) -> Ledger:
    ledger = fresh()
    ledger.add_many(items[:cut])
    ledger.between(CUSTOMERS[0])  # a read between two bulk filings sorts once
    ledger.add_many(items[cut:])
    return ledger


def by_text(items: list[tuple[Event, Any]]) -> Ledger:
    ledger = fresh()
    for event, anchor in items:
        ledger.load_text(codec.dumps_event(event), anchor)
    return ledger


BOUNDS = st.sampled_from([None, *(T0 + timedelta(minutes=m) for m in range(8))])


@settings(max_examples=150)
@given(filed(), st.integers(0, 40), BOUNDS, BOUNDS, st.data())
def test_every_way_of_filing_answers_as_a_sorted_scan(
    items: list[tuple[Event, Any]], cut: int, start: Any, end: Any, data: st.DataObject
) -> None:
    ledgers = [by_add(items), by_add_many(items, cut), by_text(items)]
    anchors = [*CUSTOMERS, *(card.key for card in CARDS)]
    for ledger in ledgers:
        ledger.check()
        for anchor in anchors:
            assert ledger.between(anchor, start, end) == naive(items, anchor, start, end)
        expected = naive(items, "c1", start, end)
        assert [e.id for e in ledger.events("c1", ["c1"], start, end)] == expected
        anonymous = [e.id for e in ledger.events(CARDS[1], [], start, end, ["visit"])]
        visits = {e.id for e, _ in items if e.type == "visit"}
        assert anonymous == [i for i in naive(items, CARDS[1].key, start, end) if i in visits]
        assert sorted(ledger.naming([CARDS[1].key])) == sorted(
            e.id  # type: ignore[misc]
            for e, anchor in items
            if CARDS[1] in e.links and anchor != CARDS[1].key
        )
    # The purchase columns, read from Events or from texts, hold the same rows.
    columns = [ledger.purchases for ledger in ledgers]
    for other in columns[1:]:
        assert sorted(other.ids) == sorted(columns[0].ids)
    first, texts = columns[0], columns[2]
    assert first.ids == texts.ids
    assert (first.at, first.unscaled, first.anchor) == (texts.at, texts.unscaled, texts.anchor)
    # Erasing some, with purchases not yet in the columns, leaves every way equal.
    gone = data.draw(st.sets(st.sampled_from([e.id for e, _ in items] or ["none"])))
    fresh_ledgers = [by_add(items), by_add_many(items, cut), by_text(items)]
    for ledger in fresh_ledgers:
        assert ledger.erase(gone) == len(gone & {e.id for e, _ in items})
        ledger.check()
        kept = [(e, a) for e, a in items if e.id not in gone]
        for anchor in anchors:
            assert ledger.between(anchor, start, end) == naive(kept, anchor, start, end)
        assert sorted(ledger.purchases.ids) == sorted(
            e.id  # type: ignore[misc]
            for e, _ in kept
            if e.type == "purchase"
        )


def test_stored_texts_are_decoded_only_when_read_and_then_kept() -> None:
    items = [
        (Event("visit", at=T0 + timedelta(hours=i), customer_id="c1", id=f"E{i}"), "c1")
        for i in range(5)
    ]
    ledger = by_text(items)
    assert all(type(value) is str for value in ledger.ids().values())
    window = ledger.events("c1", ["c1"], T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert [e.id for e in window] == ["E1", "E2"]
    kinds = {event_id: type(value) for event_id, value in ledger.ids().items()}
    assert kinds == {"E0": str, "E1": Event, "E2": Event, "E3": str, "E4": str}
    assert ledger.type_of("E3") == "visit" and type(ledger.ids()["E3"]) is str
    assert ledger.by_id()["E4"] == items[4][0]
    assert type(ledger.ids()["E4"]) is Event
    assert ledger.events("c1", ["c1"])[1] is window[0]  # kept, not decoded again


def test_a_stored_text_is_a_duplicate_check_like_an_event() -> None:
    event = Event("purchase", at=T0, customer_id="c1", data={"amount": Decimal("1.50")}, id="E")
    ledger = by_text([(event, "c1")])
    assert not ledger.is_new(event)
    # The same instant written in another zone: the texts differ, the content not.
    elsewhere = Event(
        "purchase", at=T0.astimezone(ZONES[1]), customer_id="c1", data=event.data, id="E"
    )
    assert not ledger.is_new(elsewhere)
    assert type(ledger.ids()["E"]) is str  # compared, not kept
    other = Event("purchase", at=T0, customer_id="c1", data={"amount": Decimal("1.5")}, id="E")
    with pytest.raises(DuplicateEvent):
        ledger.is_new(other)


def test_a_store_opens_without_decoding_its_events() -> None:
    g = IdentityGraph.open("memory:")
    g.register("c1", at=T0)
    g.record_many(
        Event("visit", at=T0 + timedelta(minutes=i), customer_id="c1", id=f"E{i}") for i in range(3)
    )
    card = Link("loyalty_card", "70012345")
    g.record(Event("visit", at=T0, links=(card,), id="K"))
    again = IdentityGraph.open(g.store)
    assert [e.id for e in again.events(card)] == ["K"]
    assert {k: type(v) for k, v in again._ledger.ids().items()} == {
        "E0": str, "E1": str, "E2": str, "K": Event,
    }  # fmt: skip
    assert again.events("c1") == g.events("c1")
    again._check()


@given(filed())
def test_event_head_reads_what_dumps_event_wrote(items: list[tuple[Event, Any]]) -> None:
    for event, _anchor in items:
        head = codec.event_head(codec.dumps_event(event))
        links = [[link.name, link.value] for link in event.links]
        assert head == (event.type, event.at.isoformat(), event.customer_id, links, event.id)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '["visit","2024-01-01T00:00:00+00:00",null,[],{},"E"',
        '["visit","2024-01-01T00:00:00+00:00",null,[],{}]',
        '["visit","2024-01-01T00:00:00+00:00",null,[],{},7]',
        '["visit","2024-01-01T00:00:00+00:00",null,[["email"]],{},"E"]',
        '["visit",3,null,[],{},"E"]',
        '["visit" "2024-01-01T00:00:00+00:00",null,[],{},"E"]',
        '["visit","2024-01-01T00:00:00+00:00",null,[],{}"E"]',
    ],
)
def test_event_head_refuses_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):
        codec.event_head(text)
