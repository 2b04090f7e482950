"""Oracle: every indicator and RFM code, recomputed in plain Python.

Random graphs (several seeds) of a few hundred customers, loyalty cards that
change hands (link, relink, unlink, late-arriving change points), merges and
splits, and a few thousand purchase events — anchored on customers or on
cards, some on cards nobody ever owned (anonymous profiles).  The test
attributes every purchase through the public API (``g.resolve(customer)`` or
``g.resolve(card, at=event.at)``) and computes each indicator family by
itself, then compares ``g.kpis(as_of)`` with it for every profile and every
indicator name.  Nothing of ``identity_graph.kpis`` is used but ``INDICATORS``
(the names) and ``GROUPS`` (the documented grouping of segments).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from identity_graph import Event, IdentityGraph, Limits, Link
from identity_graph.kpis import GROUPS, INDICATORS

# Every test here runs once per indicator engine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("each_kpis_engine")

AS_OF = datetime(2024, 12, 31, 15, 30, tzinfo=UTC)
WINDOWS = (30, 60, 90, 180, 360)
PERIODS: tuple[int | None, ...] = (*WINDOWS, None)
START = AS_OF - timedelta(days=520)
HELSINKI = timezone(timedelta(hours=2))

N_CUSTOMERS = 300
N_CARDS = 120
N_ANONYMOUS_CARDS = 20
N_PURCHASES = 3000

STORES = ["S01", "S02", "S03", "S04", "WEB", "APP"]
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne"]
CATEGORIES = ["food", "toys", "tools", "books", "garden", "music"]
PAYMENTS = ["card", "cash", "gift_card", "invoice"]
SHIPPING = ["pickup", "post", "courier"]
PROMOS = ["XMAS24", "SPRING", "WELCOME", "VIP10", "BF24"]
SELLERS = ["anna", "bert", "carl", "dina"]

# The RFM segments' regex map, as the indicators document writes it.
SEGMENT_MAP = [
    ("[1-2][1-2]", "Hibernating"),
    ("[1-2][3-4]", "At Risk"),
    ("[1-2]5", "Can't Lose Them"),
    ("3[1-2]", "About To Sleep"),
    ("33", "Need Attention"),
    ("[3-4][4-5]", "Loyal Customers"),
    ("41", "Promising"),
    ("51", "New Customers"),
    ("[4-5][2-3]", "Potential Loyalists"),
    ("5[4-5]", "Champions"),
]


def segment_of(code: str | None) -> str | None:
    if code is None:
        return None
    found = [name for pattern, name in SEGMENT_MAP if re.fullmatch(pattern, code[:2])]
    assert len(found) == 1, (code, found)
    return found[0]


# ------------------------------------------------------------------ the world


@dataclass
class World:
    g: IdentityGraph
    customers: list[str]
    cards: list[Link]
    anonymous_cards: list[Link]
    events: list[Event]


def _card(rng: random.Random, number: int) -> Link:
    # Written with spaces and dashes; the graph normalises them away.
    digits = f"{7000_0000 + number:08d}"
    sep = rng.choice([" ", "-", ""])
    return Link("loyalty_card", f"{digits[:4]}{sep}{digits[4:]}")


def _when(rng: random.Random) -> datetime:
    span = (AS_OF - START).total_seconds()
    return START + timedelta(seconds=rng.uniform(0, span), microseconds=rng.randrange(10**6))


def _money(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(1, 50_000)).scaleb(-2)  # 0.01 … 500.00, two places


def _data(rng: random.Random) -> dict[str, Any]:
    items = []
    for _ in range(rng.randint(0, 4)):
        item: dict[str, Any] = {"sku": f"SKU-{rng.randint(1, 40):03d}"}
        if rng.random() < 0.9:
            item["brand"] = rng.choice(BRANDS)
        if rng.random() < 0.9:
            item["category"] = rng.choice(CATEGORIES)
        item["quantity"] = rng.randint(1, 5)
        item["unit_price"] = _money(rng)
        items.append(item)
    data: dict[str, Any] = {"items": items}
    if rng.random() < 0.9:
        data["amount"] = _money(rng)
    # else: the amount is the sum of quantity × unit_price (docs/indicators.md).
    if rng.random() < 0.85:
        data["store"] = rng.choice(STORES)
    if rng.random() < 0.7:
        data["seller"] = rng.choice(SELLERS)
    data["payment_methods"] = rng.sample(PAYMENTS, rng.randint(0, 2))
    if rng.random() < 0.6:
        data["shipping_methods"] = rng.sample(SHIPPING, rng.randint(1, 2))
    if rng.random() < 0.4:
        data["promo_codes"] = rng.sample(PROMOS, rng.randint(1, 2))
    return data


def build(seed: int) -> World:
    rng = random.Random(seed)
    g = IdentityGraph(limits=Limits(max_customers_per_profile=10**6, max_moves=10**6))
    customers = [f"cust-{i:05d}" for i in rng.sample(range(10**5), N_CUSTOMERS)]
    for i, customer in enumerate(customers):
        g.register(customer, at=START - timedelta(days=30) + timedelta(seconds=i))
    # Ten customers never buy (two of them merged): rows without purchases.
    quiet, buyers = customers[:10], customers[10:]
    g.merge(quiet[0], quiet[1], reason="test", at=AS_OF)

    # Cards that change hands.  Card purchases may come before the first owner
    # (anonymous span: they go to the next claimant) and after an unlink.
    cards = [_card(rng, n) for n in range(N_CARDS)]
    for card in cards:
        points = sorted(_when(rng) for _ in range(rng.randint(1, 4)))
        g.link(rng.choice(buyers), card, at=points[0])
        for at in points[1:]:
            if rng.random() < 0.2:
                g.unlink(card, at=at)
            else:
                g.relink(card, to=rng.choice(buyers), at=at)
        if rng.random() < 0.15:  # a late-arriving change point, inserted in order
            g.relink(card, to=rng.choice(buyers), at=points[0] + (points[-1] - points[0]) / 2)
    anonymous_cards = [_card(rng, 5000 + n) for n in range(N_ANONYMOUS_CARDS)]

    # Merges, some split again.
    merges = []
    for _ in range(N_CUSTOMERS // 4):
        merge_id = g.merge(rng.choice(buyers), rng.choice(buyers), reason="test", at=AS_OF)
        if merge_id is not None:
            merges.append(merge_id)
    for merge_id in rng.sample(merges, len(merges) // 4):
        g.split(merge_id, at=AS_OF)

    events: list[Event] = []
    ids = iter(rng.sample(range(10**6), N_PURCHASES + 500))
    times: list[datetime] = []

    def purchase(at: datetime, who: str | Link) -> None:
        event_id = f"T-{next(ids):06d}"  # random ids: their order is not time order
        if isinstance(who, Link):
            event = Event("purchase", at=at, links=(who,), id=event_id, data=_data(rng))
        else:
            event = Event("purchase", at=at, customer_id=who, id=event_id, data=_data(rng))
        events.append(event)
        times.append(at)

    def anyone() -> str | Link:
        roll = rng.random()
        if roll < 0.55:
            return rng.choice(buyers)
        if roll < 0.9:
            return rng.choice(cards)
        return rng.choice(anonymous_cards)

    for _ in range(N_PURCHASES):
        # Some ties on `at`, broken by event id.
        at = rng.choice(times) if times and rng.random() < 0.08 else _when(rng)
        if rng.random() < 0.1:
            at = at.astimezone(HELSINKI)  # aware, another offset: the same instant
        purchase(at, anyone())
    # Every window edge, for several profiles each.
    for days in WINDOWS:
        edge = AS_OF - timedelta(days=days)
        for _ in range(4):
            purchase(edge, anyone())  # out of the window
            purchase(edge + timedelta(microseconds=1), anyone())  # in
            purchase(edge - timedelta(microseconds=1), anyone())  # out
    for _ in range(6):
        purchase(AS_OF, anyone())  # in every window
        purchase(AS_OF + timedelta(microseconds=1), anyone())  # ignored
        purchase(AS_OF + timedelta(days=rng.randint(1, 40)), anyone())  # ignored
    # A card nobody ever owned, bought with only after as_of: no row.
    late_card = _card(rng, 9999)
    purchase(AS_OF + timedelta(hours=1), late_card)
    # Several tickets at one instant for one customer: the larger id is the latest.
    tied = rng.choice(buyers)
    for _ in range(3):
        purchase(AS_OF - timedelta(days=2), tied)

    rng.shuffle(events)  # recording order is irrelevant
    for event in events:
        assert g.record(event)
    return World(g, customers, cards, anonymous_cards, events)


# ------------------------------------------------------------------ the oracle


@dataclass
class Ticket:
    at: datetime
    id: str
    amount: Decimal
    items: int
    brands: set[str]
    categories: set[str]
    skus: set[str]
    promo_codes: set[str]
    store: str | None
    seller: str | None
    payment_methods: set[str]
    shipping_methods: set[str]


def ticket(event: Event) -> Ticket:
    data = event.data
    items = data.get("items", ())
    amount = data.get("amount")
    if amount is None:
        amount = sum((i["unit_price"] * i["quantity"] for i in items), Decimal(0))
    assert event.id is not None
    return Ticket(
        at=event.at,
        id=event.id,
        amount=amount,
        items=sum(i["quantity"] for i in items),
        brands={i["brand"] for i in items if "brand" in i},
        categories={i["category"] for i in items if "category" in i},
        skus={i["sku"] for i in items},
        promo_codes=set(data.get("promo_codes", ())),
        store=data.get("store"),
        seller=data.get("seller"),
        payment_methods=set(data.get("payment_methods", ())),
        shipping_methods=set(data.get("shipping_methods", ())),
    )


def attribute(world: World) -> dict[Any, list[Ticket]]:
    """Purchases at or before AS_OF by profile, through the public API only."""
    by_profile: dict[Any, list[Ticket]] = defaultdict(list)
    for event in world.events:
        if event.at > AS_OF:
            continue
        if event.customer_id is not None:
            profile = world.g.resolve(event.customer_id)
        else:
            profile = world.g.resolve(event.links[0], at=event.at)
        by_profile[profile].append(ticket(event))
    return by_profile


def whole_days(delta: timedelta) -> int:
    seconds = delta.days * 86_400 + delta.seconds
    return seconds // 86_400  # floor; microseconds never carry a whole day


def name(measure: str, days: int | None) -> str:
    return f"Total_{measure}" if days is None else f"{measure}_{days}_Days"


def oracle(world: World) -> dict[Any, dict[str, Any]]:
    purchases = attribute(world)
    profiles = {world.g.resolve(c) for c in world.customers} | set(purchases)
    rows: dict[Any, dict[str, Any]] = {}
    for profile in profiles:
        tickets = purchases.get(profile, [])
        row: dict[str, Any] = {}
        latest = max(tickets, key=lambda t: (t.at, t.id)) if tickets else None
        first = min(t.at for t in tickets) if tickets else None
        row["First_Purchase_Date"] = first
        row["Last_Purchase_Date"] = latest.at if latest else None
        row["Days_Since_First_Purchase"] = whole_days(AS_OF - first) if first else None
        row["Days_Since_Last_Purchase"] = whole_days(AS_OF - latest.at) if latest else None
        row["Last_Purchase_Amount"] = latest.amount if latest else None
        for days in PERIODS:
            if days is None:
                window = tickets
            else:
                window = [t for t in tickets if AS_OF - timedelta(days=days) < t.at <= AS_OF]
            value = sum((t.amount for t in window), Decimal(0))
            row[name("Items", days)] = sum(t.items for t in window)
            row[name("Brands", days)] = len(set().union(*(t.brands for t in window)))
            row[name("Categories", days)] = len(set().union(*(t.categories for t in window)))
            row[name("Purchases", days)] = len(window)
            row[name("Value", days)] = value
            row[name("Average_Value", days)] = value / len(window) if window else None
            row[name("Promo_Codes", days)] = tuple(
                sorted(set().union(*(t.promo_codes for t in window)))
            )
            row[name("Stores", days)] = tuple(sorted({t.store for t in window if t.store}))
        last: dict[str, set[str]] = defaultdict(set)
        if latest:
            last["Payment_Methods"] = latest.payment_methods
            last["Shipping_Methods"] = latest.shipping_methods
            last["Items"] = latest.skus
            last["Brands"] = latest.brands
            last["Categories"] = latest.categories
            last["Sellers"] = {latest.seller} if latest.seller else set()
            last["Stores"] = {latest.store} if latest.store else set()
            last["Promo_Codes"] = latest.promo_codes
        for field in (
            "Payment_Methods",
            "Shipping_Methods",
            "Items",
            "Brands",
            "Categories",
            "Sellers",
            "Stores",
            "Promo_Codes",
        ):
            row[f"Last_Purchase_{field}"] = tuple(sorted(last[field]))
        rows[profile] = row

    # RFM per window, over the profiles with a purchase in it.
    for days in PERIODS:
        active = [p for p, row in rows.items() if row[name("Purchases", days)] > 0]
        n = len(active)
        measures = {
            p: (
                rows[p]["Days_Since_Last_Purchase"],
                rows[p][name("Purchases", days)],
                rows[p][name("Value", days)],
            )
            for p in active
        }
        for p in rows:
            rows[p][name("RFM", days)] = None
        for p, (r, f, m) in measures.items():
            big_r = 1 + 5 * sum(1 for r2, _, _ in measures.values() if r2 > r) // n
            big_f = 1 + 5 * sum(1 for _, f2, _ in measures.values() if f2 < f) // n
            big_m = 1 + 5 * sum(1 for _, _, m2 in measures.values() if m2 < m) // n
            rows[p][name("RFM", days)] = f"{big_r}{big_f}{big_m}"
    for row in rows.values():
        row["RFM_Segment"] = segment_of(row["Total_RFM"])
        row["RFM_Group"] = None if row["RFM_Segment"] is None else GROUPS[row["RFM_Segment"]]
    return rows


# ------------------------------------------------------------------ the tests

MONEY = {"Last_Purchase_Amount"} | {name(m, d) for m in ("Value", "Average_Value") for d in PERIODS}


@pytest.fixture(scope="module", params=[1, 2, 3])
def world(request: pytest.FixtureRequest) -> World:
    return build(request.param)


@pytest.fixture(scope="module")
def actual(world: World) -> dict[Any, dict[str, Any]]:
    return world.g.kpis(AS_OF)


@pytest.fixture(scope="module")
def expected(world: World) -> dict[Any, dict[str, Any]]:
    return oracle(world)


def test_the_world_is_interesting(world: World, expected: dict[Any, dict[str, Any]]) -> None:
    anonymous = [p for p in expected if isinstance(p, Link)]
    merged = {world.g.resolve(c) for c in world.customers}
    assert len(merged) < len(world.customers) - 10  # merges happened
    assert len(anonymous) >= 5
    assert sum(1 for row in expected.values() if row["Total_Purchases"] == 0) >= 5
    for days in PERIODS:
        codes = {row[name("RFM", days)] for row in expected.values()} - {None}
        assert len(codes) >= 10
    segments = {row["RFM_Segment"] for row in expected.values()} - {None}
    assert len(segments) >= 8


def test_every_profile_and_only_those(
    world: World, actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]
) -> None:
    customer_profiles = {world.g.resolve(c) for c in world.customers}
    assert customer_profiles <= set(actual)
    assert set(actual) == set(expected)
    for profile in set(actual) - customer_profiles:
        assert isinstance(profile, Link)
        assert actual[profile]["Total_Purchases"] > 0
    # The card bought with only after as_of has no row.
    assert not any(isinstance(p, Link) and p.value == "70009999" for p in actual)


def test_every_indicator_of_every_profile(
    actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]
) -> None:
    names = [indicator.name for indicator in INDICATORS]
    assert len(names) == 69
    mismatches = []
    for profile, want in expected.items():
        got = actual[profile]
        assert list(got) == names
        for indicator in names:
            if got[indicator] != want[indicator]:
                mismatches.append((profile, indicator, got[indicator], want[indicator]))
    assert mismatches == []


def test_types_no_float_money_is_decimal(actual: dict[Any, dict[str, Any]]) -> None:
    for row in actual.values():
        for indicator, value in row.items():
            assert not isinstance(value, float), indicator
            if indicator in MONEY:
                assert value is None or type(value) is Decimal, (indicator, value)
            elif indicator.endswith("_Date"):
                assert value is None or (
                    isinstance(value, datetime) and value.utcoffset() is not None
                )
            elif isinstance(value, tuple):
                assert all(type(v) is str for v in value)
            else:
                assert value is None or type(value) in (int, str), (indicator, value)
        for days in PERIODS:
            assert type(row[name("Value", days)]) is Decimal


def test_window_edges(world: World, actual: dict[Any, dict[str, Any]]) -> None:
    """A purchase exactly W days before as_of is out of window W, one exactly at
    as_of is in every window, one after as_of is nowhere."""
    g = world.g

    def owner(event: Event) -> Any:
        if event.customer_id is not None:
            return g.resolve(event.customer_id)
        return g.resolve(event.links[0], at=event.at)

    times: dict[Any, list[datetime]] = defaultdict(list)
    for event in world.events:
        times[owner(event)].append(event.at)
    checked = 0
    for event in world.events:
        profile = owner(event)
        for days in WINDOWS:
            edge = AS_OF - timedelta(days=days)
            if event.at not in (edge, AS_OF):
                continue
            closed = sum(1 for t in times[profile] if edge <= t <= AS_OF)
            half_open = sum(1 for t in times[profile] if edge < t <= AS_OF)
            assert actual[profile][name("Purchases", days)] == half_open
            assert closed > half_open or event.at == AS_OF
            checked += 1
        if event.at > AS_OF and profile in actual:
            total = sum(1 for t in times[profile] if t <= AS_OF)
            assert actual[profile]["Total_Purchases"] == total
    assert checked == 4 * len(WINDOWS) + 6 * len(WINDOWS)


def test_one_profile_equals_its_row(world: World, actual: dict[Any, dict[str, Any]]) -> None:
    rng = random.Random(7)
    g = world.g
    refs: list[str | Link] = rng.sample(world.customers, 2) + rng.sample(world.cards, 1)
    refs += [a for a in world.anonymous_cards if g.resolve(a) in actual][:1]
    for ref in refs:
        assert g.kpis(AS_OF, ref=ref) == actual[g.resolve(ref)]
    # A customer absorbed into another's profile gets the profile's row.
    members = [c for c in world.customers if g.resolve(c) != c]
    assert members
    assert g.kpis(AS_OF, ref=members[0]) == actual[g.resolve(members[0])]
    # A card nobody has ever seen: an anonymous profile without purchases.
    empty = g.kpis(AS_OF, ref=Link("loyalty_card", "9999 0000"))
    assert empty["Total_Purchases"] == 0
    assert empty["Total_Value"] == Decimal(0)
    assert empty["Total_RFM"] is None and empty["Average_Value_30_Days"] is None
    assert empty["Last_Purchase_Stores"] == ()
