"""A short tour of identity_graph, run by `make demo`.

The omnichannel story: a web registration, anonymous calls from a phone, a
loyalty card used in a store, a merge of two records of one person, a card
that changes hands, a late-arriving correction, and an exact split.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from identity_graph import Event, IdentityGraph, Link, Profile


def day(d: int, month: int = 1) -> datetime:
    return datetime(2024, month, d, 12, tzinfo=timezone.utc)


def show(title: str, profiles: list[Profile]) -> None:
    print(f"\n== {title}")
    for p in profiles:
        links = ", ".join(str(link) for link in p.links) or "-"
        names = " ".join(str(v) for v in p.attributes.values()) or "-"
        print(f"  profile {p.id!s:<12} customers={list(p.customer_ids)} {names}")
        print(f"  {'':12} links: {links}  merges: {list(p.merge_ids) or '-'}")


def main() -> None:
    g = IdentityGraph(default_region="FI")
    phone = Link("phone", "040 123 4567")
    card = Link("loyalty_card", "7001 2345")

    g.register("web-1", {"first_name": "Ann", "last_name": "Lee"}, at=day(1))
    g.link("web-1", Link("email", "Ann.Lee@Example.com"), at=day(1))
    print("calls from", g.normalize(phone), "before anyone claims it resolve to:", g.resolve(phone))

    g.record(Event("call", at=day(2), links=[phone], id="call-1"))
    print("the anonymous call belongs to:", [e.id for e in g.events(phone)], "of", g.resolve(phone))

    g.register("pos-7", {"city": "Turku"}, at=day(3))
    g.link("pos-7", card, at=day(3))
    g.link("web-1", phone, at=day(10))
    print("after web-1 saves the phone, a call on day 5 belongs to:", g.resolve(phone, at=day(5)))
    print("web-1's events now:", [e.id for e in g.events("web-1")])
    for n, (when, amount) in enumerate(
        [(day(4), "19.90"), (day(10, 2), "49.00"), (day(25, 2), "12.50")]
    ):
        g.record(
            Event(
                "purchase",
                at=when,
                links=[card],
                id=f"T-{n + 1}",
                data={
                    "amount": Decimal(amount),
                    "store": "S01",
                    "items": [{"sku": f"SKU-{n}", "brand": "Acme", "quantity": 1}],
                },
            )
        )

    merge_id = g.merge("web-1", "pos-7", reason="same person (clerk checked id)", at=day(12))
    show("after the merge", list(g.profiles()))
    print("\nwhy is the card in Ann's profile?")
    for step in g.explain(card, Link("email", "ann.lee@example.com")):
        print(f"  {step.source!s} ~ {step.target!s}: {step.kind}, journal entry {step.entry.seq}")

    g.relink(card, to="pos-9", at=day(1, month=3))
    g.relink(card, to="pos-9", at=day(20, month=2))  # the sale happened earlier: a late fact
    print("\ncard history:", [(t.date().isoformat(), owner) for t, owner in g.history(card)])
    print("a purchase with the card on Feb 10 belongs to:", g.resolve(card, at=day(10, month=2)))
    print("a purchase with the card on Feb 25 belongs to:", g.resolve(card, at=day(25, month=2)))

    print(
        "\npurchases by profile:",
        {p.id: [e.id for e in g.events(p.id, types=["purchase"])] for p in g.profiles()},
    )
    as_of = day(31, month=3)
    print(f"\nindicators at {as_of.date()}:")
    print(f"  {'profile':<8} {'purchases':>9} {'value':>8} {'last':>10}  RFM  segment")
    for profile_id, row in sorted(g.kpis(as_of).items(), key=lambda item: str(item[0])):
        last = row["Last_Purchase_Date"]
        print(
            f"  {profile_id!s:<8} {row['Total_Purchases']:>9} {row['Total_Value']!s:>8} "
            f"{last.date().isoformat() if last else '-':>10}  {row['Total_RFM'] or '-':>3}  "
            f"{row['RFM_Segment'] or '-'}"
        )

    g.split(merge_id)
    show("after splitting the merge again", list(g.profiles()))
    print(
        "each part gets back exactly its own events:",
        {p.id: [e.id for e in g.events(p.id)] for p in g.profiles()},
    )

    print("\nchange feed:")
    for change in g.changes():
        before, after = [str(p) for p in change.before], [str(p) for p in change.after]
        about = f"  ({change.link})" if change.link else ""
        print(f"  #{change.seq:<2} {change.kind:<12} {before} -> {after}{about}")

    replayed = IdentityGraph.from_journal(g.journal(), default_region="FI")
    print("\nreplaying the journal gives an equal graph:", replayed == g)


if __name__ == "__main__":
    main()
