"""One customer's omnichannel story, end to end.

Anna registers on the web shop with her e-mail, calls the call centre from a
phone nobody knows yet, and shops in a store with a loyalty card nobody has
claimed.  Later she saves her phone and card on her account, and everything
she did joins her profile.  Then she sells the card on to Bob, a late
correction moves the date it changed hands, a CRM record turns out to be her,
and that merge is undone again.  At every stage the exact events of every
profile are checked.
"""

from __future__ import annotations

from datetime import datetime, timezone

from identity_graph import Event, IdentityGraph, Link

UTC = timezone.utc


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def ids(events: list[Event]) -> list[str | None]:
    return [event.id for event in events]


EMAIL = Link("email", "Anna.Virtanen@Example.com")
PHONE = Link("phone", "+358 40 123 4567")
CARD = Link("loyalty_card", "7001-2345")
CRM = Link("crm_id", "CRM-77")


def test_omnichannel_story() -> None:
    g = IdentityGraph()

    # --- January: three channels, one person, but the graph knows only the web.
    # Anna registers on the web shop with her e-mail address.
    g.register("anna", attributes={"first_name": "Anna"}, at=at(1, 5, 10))
    g.link("anna", EMAIL, at=at(1, 5, 10))
    g.record(Event("visit", at=at(1, 5, 10), customer_id="anna", id="web-signup"))

    # She calls the call centre twice from her phone; nobody knows that number.
    g.record(Event("call", at=at(1, 8), links=PHONE, data={"topic": "delivery"}, id="call-1"))
    g.record(Event("call", at=at(1, 12), links=PHONE, data={"topic": "returns"}, id="call-2"))

    # The stores upload their offline purchases: her loyalty card is not linked yet.
    pos_upload = [
        Event("purchase", at=at(1, 10), links=CARD, data={"amount": 25}, id="pos-1"),
        Event("purchase", at=at(1, 15), links=CARD, data={"amount": 40}, id="pos-2"),
    ]
    assert g.record_many(pos_upload) == (2, 0)
    # The same file uploaded twice counts nothing twice.
    assert g.record_many(pos_upload) == (0, 2)

    # A web order, identified by the e-mail only.
    g.record(Event("purchase", at=at(1, 14), links=EMAIL, data={"amount": 60}, id="web-1"))

    # So far the calls and the store purchases sit on anonymous profiles.
    assert ids(g.events("anna")) == ["web-signup", "web-1"]
    assert g.resolve(PHONE) == Link("phone", "+358401234567")
    assert ids(g.events(PHONE)) == ["call-1", "call-2"]
    assert ids(g.events(CARD)) == ["pos-1", "pos-2"]

    # --- February 1st: Anna saves her phone and her card on her account.
    # The anonymous activity belongs to whoever claims the link next: her.
    g.link("anna", PHONE, at=at(2, 1))
    g.link("anna", CARD, at=at(2, 1))
    anna_all = ["web-signup", "call-1", "pos-1", "call-2", "web-1", "pos-2"]
    assert ids(g.events("anna")) == anna_all
    assert g.events(PHONE) == g.events(CARD) == g.events("anna")
    assert ids(g.events("anna", types="call")) == ["call-1", "call-2"]

    # She keeps shopping with the card.
    g.record(Event("purchase", at=at(2, 10), links=CARD, data={"amount": 15}, id="pos-3"))
    g.record(Event("purchase", at=at(2, 20), links=CARD, data={"amount": 35}, id="pos-4"))

    # --- March 1st: she sells the card on to Bob (a customer of the shop).
    g.register("bob", at=at(2, 25))
    g.relink(CARD, to="bob", at=at(3, 1))
    g.record(Event("purchase", at=at(3, 5), links=CARD, data={"amount": 70}, id="pos-5"))
    g.record(Event("purchase", at=at(3, 20), links=CARD, data={"amount": 10}, id="pos-6"))
    # Later purchases go to Bob; the earlier ones stay with Anna.
    anna_all += ["pos-3", "pos-4"]
    assert ids(g.events("anna")) == anna_all
    assert ids(g.events("bob")) == ["pos-5", "pos-6"]
    assert ids(g.events(CARD)) == ["pos-5", "pos-6"]
    # In a window: Anna's February.
    assert ids(g.events("anna", start=at(2, 1), end=at(3, 1))) == ["pos-3", "pos-4"]

    # --- A late correction: the card actually changed hands on February 15th.
    # Exactly the purchases in the corrected span (Feb 15 - Mar 1) move to Bob.
    g.relink(CARD, to="bob", at=at(2, 15))
    anna_all.remove("pos-4")
    assert ids(g.events("anna")) == anna_all
    assert ids(g.events("bob")) == ["pos-4", "pos-5", "pos-6"]

    # --- April: the CRM holds a record that turns out to be Anna.
    g.link("crm-77", CRM, at=at(4, 1))
    g.record(Event("interest", at=at(3, 10), customer_id="crm-77", id="crm-interest"))
    g.record(Event("offline", at=at(4, 2), links=CRM, data={"mailing": "spring"}, id="crm-mail"))
    anna_before = g.events("anna")
    crm_before = g.events("crm-77")
    bob_before = g.events("bob")
    assert ids(crm_before) == ["crm-interest", "crm-mail"]

    merge_id = g.merge("anna", "crm-77", reason="same person", at=at(4, 5))
    assert merge_id is not None
    # Anna registered first, so the merged profile keeps her id; it sees the union.
    assert g.resolve("crm-77") == "anna"
    assert ids(g.events("anna")) == [
        "web-signup",
        "call-1",
        "pos-1",
        "call-2",
        "web-1",
        "pos-2",
        "pos-3",
        "crm-interest",
        "crm-mail",
    ]
    assert g.events("crm-77") == g.events("anna") == g.events(CRM) == g.events(EMAIL)
    # The merge moves no event between Anna and Bob.
    assert g.events("bob") == bob_before

    # --- The merge was a mistake: split it. Each side gets back exactly its own.
    g.split(merge_id, at=at(4, 6))
    assert g.resolve("crm-77") == "crm-77"
    assert g.events("anna") == anna_before
    assert g.events("crm-77") == crm_before
    assert g.events("bob") == bob_before

    # Every event is in exactly one of the three profiles.
    everything = ids(g.events("anna")) + ids(g.events("crm-77")) + ids(g.events("bob"))
    assert sorted(everything) == sorted(g._ledger._events)
    g._ledger.check()
    g._check()
