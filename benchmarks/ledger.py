"""Ledger benchmark: event ingest and profile queries, in memory.

Workload (one seed):

- 100k identities: 50k customers each with a loyalty card, and 50k cards that
  nobody has claimed yet (anonymous link profiles);
- ``record_many`` of M events (default 1M): half anchored on a customer id,
  half on a card, at random times over a year, each with an amount and one
  item — built before the clock starts, and once more timed *with* building
  the ``Event`` objects, as an importer would;
- a profile with 1,000 events spread over 10 anchors (2 customers merged, each
  owning cards that changed hands), queried with ``events()`` — whole, with
  a one-month window, and with a type filter — timed per call.

Time with ``time.perf_counter``; memory as peak RSS above the RSS before the
ingest (``ru_maxrss`` after resetting the kernel's peak counter where Linux
allows it).  Targets from the issue are printed, never asserted: ingest
>= 200k events/s in memory; a 1k-event profile query <= 1 ms.

Run: ``python benchmarks/ledger.py [--events 1000000] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from identity_graph import Event, IdentityGraph, Limits, Link
from memory import PeakMeter

SEED = 20240601
T0 = datetime(2024, 1, 1, tzinfo=UTC)
IDENTITIES = 100_000
TARGET_INGEST = 200_000  # events/s
TARGET_QUERY_MS = 1.0


def build_graph() -> IdentityGraph:
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**9))
    for i in range(IDENTITIES // 2):
        g.link(f"c{i}", Link("loyalty_card", f"CARD{i:08d}"), at=T0)
    return g


def event_specs(m: int) -> list[tuple[int, datetime, str]]:
    rng = random.Random(SEED)
    minutes = 365 * 24 * 60
    return [
        (rng.randrange(IDENTITIES), T0 + timedelta(minutes=rng.randrange(minutes)), f"E{j}")
        for j in range(m)
    ]


def make_events(specs: list[tuple[int, datetime, str]]) -> list[Event]:
    events = []
    for k, at, event_id in specs:
        data = {
            "amount": Decimal("19.90"),
            "items": [{"sku": f"S{k % 97}", "quantity": 1, "unit_price": Decimal("19.90")}],
        }
        if k % 2 == 0:
            event = Event("purchase", at=at, customer_id=f"c{k // 2}", data=data, id=event_id)
        else:
            card = Link("loyalty_card", f"CARD{k // 2 + IDENTITIES // 2:08d}")
            event = Event("purchase", at=at, links=(card,), data=data, id=event_id)
        events.append(event)
    return events


def ingest(m: int) -> None:
    specs = event_specs(m)
    g = build_graph()
    events = make_events(specs)
    meter = PeakMeter()
    start = time.perf_counter()
    recorded, unchanged = g.record_many(events)
    seconds = time.perf_counter() - start
    peak = meter.delta() / 2**20
    assert recorded == m and unchanged == 0, (recorded, unchanged)
    rate = m / seconds
    print(
        f"record_many of {m:,} prebuilt events: {seconds:.2f} s, {rate:,.0f} events/s, "
        f"peak +{peak:,.0f} MiB ({peak * 2**20 / m:,.0f} B/event)  "
        f"target >= {TARGET_INGEST:,}/s: {'met' if rate >= TARGET_INGEST else 'NOT met'}"
    )
    start = time.perf_counter()
    again = g.record_many(events)
    seconds = time.perf_counter() - start
    print(
        f"record_many of the same {m:,} again (all unchanged {again}): {m / seconds:,.0f} events/s"
    )
    del g, events
    gc.collect()
    g = build_graph()
    start = time.perf_counter()
    g.record_many(make_events(specs))
    seconds = time.perf_counter() - start
    print(f"building the Event objects and record_many: {m / seconds:,.0f} events/s")


def profile_graph() -> IdentityGraph:
    """A graph with a profile of 2 customers and 8 cards, 4 of which changed
    hands (the query reads only the spans in which the profile owned them),
    1,000 events of the profile and 20,000 of others on the same cards."""
    g = build_graph()
    rng = random.Random(SEED + 1)
    g.register("p1", at=T0)
    g.register("p2", at=T0)
    cards = [Link("loyalty_card", f"PCARD{i}") for i in range(8)]
    for i, card in enumerate(cards):
        g.link("p1" if i % 2 else "p2", card, at=T0)
        if i < 4:
            g.relink(card, to=f"c{i}", at=T0 + timedelta(days=200))
    g.merge("p1", "p2", reason="bench", at=T0)
    anchors: list[tuple[str | None, Link | None]] = [("p1", None), ("p2", None)]
    anchors += [(None, card) for card in cards]
    events = []
    for j in range(1000):
        customer, card = anchors[j % len(anchors)]
        at = T0 + timedelta(minutes=rng.randrange(180 * 24 * 60))  # before any card moved
        kind = "purchase" if j % 3 else "visit"
        links = () if card is None else (card,)
        events.append(Event(kind, at=at, customer_id=customer, links=links, id=f"P{j}"))
    # Noise on the same cards after they moved, and on other customers.
    for j in range(20_000):
        card = cards[j % 4]
        at = T0 + timedelta(days=201, minutes=rng.randrange(100 * 24 * 60))
        events.append(Event("purchase", at=at, links=(card,), id=f"N{j}"))
    g.record_many(events)
    return g


def profile_query(repeats: int) -> None:
    g = profile_graph()
    found = g.events("p1")
    assert len(found) == 1000, len(found)
    month = (T0 + timedelta(days=30), T0 + timedelta(days=60))
    for label, call in (
        ("events(profile) whole", lambda: g.events("p1")),
        ("events(profile, 30-day window)", lambda: g.events("p1", *month)),
        ("events(profile, types=['visit'])", lambda: g.events("p1", types=["visit"])),
    ):
        best = min(_timed(call) for _ in range(repeats))
        verdict = "met" if best * 1000 <= TARGET_QUERY_MS else "NOT met"
        print(
            f"{label:36s} {len(call()):5d} events  {best * 1000:.3f} ms  "
            f"target <= {TARGET_QUERY_MS} ms: {verdict}"
        )


def _timed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k events")
    parser.add_argument("--repeats", type=int, default=50)
    options = parser.parse_args()
    m = 100_000 if options.quick else options.events
    print(f"Python {sys.version.split()[0]}; {IDENTITIES:,} identities; seed {SEED}")
    ingest(m)
    profile_query(options.repeats)


if __name__ == "__main__":
    main()
