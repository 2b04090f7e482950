"""The two indicator engines give exactly the same answers.

``engine="python"`` (a dict of dicts) and ``engine="polars"`` (an
``Indicators`` mapping built on columns) must agree value for value, type for
type and text for text (``Decimal("10.50")`` is not ``Decimal("10.5")`` here)
on any graph: links that change hands, late-arriving change points, merges
and splits, anonymous profiles, amounts of every exponent, ties on ``at``
across time zones, window edges.  Hypothesis generates the graphs; the other
tests pin the fallback rules, the ``Indicators`` mapping, and stored graphs.

The disagreements this file found are kept at the end as regression tests,
each the smallest reproduction.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from identity_graph import (
    Event,
    IdentityGraph,
    InvalidEvent,
    Limits,
    Link,
    LinkType,
    UnknownCustomer,
    kpis,
)
from identity_graph.kpis import WINDOWS, compute_empty, write_csv
from identity_graph.purchases import ticket_value

polars_engine = pytest.importorskip("identity_graph.kpis.columnar")

AS_OF = datetime(2024, 12, 31, 15, 30, tzinfo=UTC)
START = AS_OF - timedelta(days=500)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)


def _zones(*names: str) -> list[tzinfo]:
    """The named zones the time zone database has (none without it)."""
    found: list[tzinfo] = []
    for name in names:
        with contextlib.suppress(ZoneInfoNotFoundError):
            found.append(ZoneInfo(name))
    return found


#: Fixed offsets, and zones with daylight saving time (two times of one such
#: zone compare by wall clock in Python, not as instants).
DST_ZONES = _zones("Europe/Helsinki", "America/New_York")
ZONES = (
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    *DST_ZONES,
)
CUSTOMERS = ("c1", "c2", "c3", "c4", "c5")
#: Links that customers claim, relink and unlink (two spellings of some, one identity).
CLAIMED = (
    Link("email", "ann@example.com"),
    Link("email", " Bob@Example.COM "),
    Link("email", "bob@example.com"),
    Link("loyalty_card", "7001 2345"),
    Link("loyalty_card", "7001-2345"),
    Link("loyalty_card", "8002 0001"),
    Link("crm_id", "CRM-1"),  # conflict policy "merge": linking it to another merges
)
#: Links nobody ever claims: their purchases form anonymous profiles.
ANONYMOUS = (Link("loyalty_card", "9999 0000"), Link("email", "walkin@example.com"))
LINKS = CLAIMED + ANONYMOUS

CONFIG: dict[str, Any] = {
    "link_types": {"crm_id": LinkType(conflict="merge")},
    "limits": Limits(max_moves=10_000),  # relink freely: the move guard is not tested here
}

Op: TypeAlias = tuple[Any, ...]
Result: TypeAlias = Mapping[Any, Mapping[str, Any]]


# ------------------------------------------------------------------ strategies


def edges(as_of: datetime) -> list[datetime]:
    """Instants on and around ``as_of`` and every window's start (``as_of - W
    days`` is out, ``as_of`` is in).  A start is taken both as W × 24 hours
    before the instant and as W wall-clock days in ``as_of``'s zone: the two
    differ across a change of daylight saving time."""
    starts = {
        start
        for days in WINDOWS
        for start in (as_of - days * DAY, as_of.astimezone(UTC) - days * DAY)
    }
    return [
        *(moment + shift for moment in (as_of, *starts) for shift in (-US, timedelta(0), US)),
        as_of + DAY,
        START,
        datetime(1901, 1, 1, tzinfo=UTC),  # before 1970: negative microseconds
    ]


def instants(as_of: datetime) -> st.SearchStrategy[datetime]:
    """Times of events and identity changes, dense around the edges."""
    shared = [as_of - 3 * DAY, as_of - 40 * DAY + DAY / 2, as_of - 200 * DAY]
    edge = st.sampled_from(edges(as_of))
    return st.one_of(
        edge,
        edge,
        # a few instants shared by many purchases: ties on the first and the latest ticket
        st.sampled_from(shared),
        st.just(shared[0]),
        # around the ends of daylight saving time (Helsinki's repeated hour is
        # 00:00-02:00 UTC on 2024-10-27; New York's 05:00-07:00 UTC on 2024-11-03)
        st.sampled_from(
            [datetime(2024, 10, 27, h, m, tzinfo=UTC) for h in (0, 1) for m in (15, 30)]
            + [datetime(2024, 11, 3, h, 30, tzinfo=UTC) for h in (5, 6)]
            + [datetime(2024, 3, 31, 1, 0, tzinfo=UTC)]
        ),
        # whole days before as_of: many purchases share an instant
        st.integers(-400, 2).map(lambda days: as_of + days * DAY),
        st.integers(-400 * 86_400, 2 * 86_400).map(lambda s: as_of + timedelta(seconds=s)),
    )


def times(as_of: datetime) -> st.SearchStrategy[datetime]:
    """An instant, written in one of the zones."""
    return st.tuples(instants(as_of), st.sampled_from(ZONES)).map(
        lambda tz: tz[0].astimezone(tz[1])
    )


#: The instants indicators are asked at, in several zones.
AS_OFS = [
    AS_OF,
    AS_OF.astimezone(ZONES[1]),
    AS_OF - 45 * DAY,
    AS_OF - 400 * DAY + US,
    AS_OF + 3650 * DAY,
    *(AS_OF.astimezone(zone) for zone in DST_ZONES),
    *(datetime(2024, 11, 10, 12, tzinfo=zone) for zone in DST_ZONES),
]


decimal_texts = (
    "10", "10.5", "10.50", "1E+2", "1E+1", "-3.25", "0", "-0", "-0.00", "0.00",
    "0.001", "5E-3", "0E+3", "123456.789", "999999.99", "-0.5", "0.000000000000000001",
)  # fmt: skip
money = st.one_of(
    st.sampled_from([Decimal(text) for text in decimal_texts]),
    st.integers(0, 8).flatmap(
        lambda places: st.decimals(
            min_value=-(10**6), max_value=10**6, places=places, allow_nan=False
        )
    ),
    st.integers(-1000, 1000),
    st.sampled_from(["7.25", " 12.10 ", "-4", "1e2", "0.0", "3"]),  # numeric text
    # floats are read through their shortest text ("0.30000000000000004")
    st.sampled_from([0.1, 2.5, -1.75, 0.1 + 0.2, 1e-7]),
)
quantities = st.one_of(st.integers(0, 5), st.sampled_from([Decimal("2"), Decimal("3.0"), "4", 2.0]))


def words(pool: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A name field: absent, one name (a number reads as its text), or a list
    (duplicates and Nones included)."""
    word = st.one_of(st.sampled_from(pool), st.just(5))
    return st.one_of(st.none(), word, st.lists(st.one_of(word, st.none()), max_size=3))


items = st.fixed_dictionaries(
    {},
    optional={
        "sku": st.sampled_from(["SKU-1", "SKU-2", "SKU-3", "=SUM(A1)"]),
        "brand": st.one_of(st.sampled_from(["Acme", "Globex", "", "Hooli"]), st.just(7)),
        "category": st.sampled_from(["food", "toys", "tools"]),
        "seller": words(("anna", "bert")),
        "quantity": quantities,
        "unit_price": money,
    },
)
purchase_data = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.none(), money),
        "items": st.lists(items, max_size=3),
        "store": st.one_of(st.sampled_from(["S01", "S02", "WEB", "", "-S"]), st.just(3)),
        "seller": words(("anna", "carl")),
        "payment_methods": words(("card", "cash", "gift")),
        "shipping_methods": words(("post", "pickup")),
        "promo_codes": st.one_of(st.sampled_from(["XMAS", "VIP10", "", 0]), words(("XMAS",))),
        "channel": st.sampled_from(["web", "store"]),
    },
)


@st.composite
def events(draw: st.DrawFn, as_of: datetime) -> Op:
    """A purchase (now and then a visit) anchored on a customer, links, or both."""
    kind = draw(st.sampled_from(["purchase"] * 6 + ["visit", " purchase "]))
    who = draw(st.sampled_from(["customer", "links", "links", "both"]))
    customer = draw(st.sampled_from(CUSTOMERS)) if who != "links" else None
    links: tuple[Link, ...] = ()
    if who != "customer":
        links = tuple(draw(st.lists(st.sampled_from(LINKS), min_size=1, max_size=2)))
    return ("event", kind, draw(times(as_of)), customer, links, draw(purchase_data))


@st.composite
def scripts(draw: st.DrawFn, as_of: datetime = AS_OF) -> list[Op]:
    """Registrations, then identity operations and events in any order, with
    event ids drawn so that their order is not the order they are recorded in;
    times cluster around ``as_of``'s window edges."""
    when = times(as_of)
    script: list[Op] = [
        ("register", customer, START - DAY * draw(st.integers(0, 3)))
        for customer in draw(st.permutations(CUSTOMERS))[: draw(st.integers(2, 5))]
    ]
    registered = [op[1] for op in script]
    customer = st.sampled_from(registered)
    # "c9" is registered by the first link that names it (later in journal order)
    claimer = st.sampled_from([*registered, "c9"])
    claimed = st.sampled_from(CLAIMED)
    identity = st.one_of(
        st.tuples(st.just("link"), claimer, claimed, when),
        st.tuples(st.just("relink"), claimer, claimed, when),
        st.tuples(st.just("unlink"), claimed, when),
        st.tuples(st.just("merge"), customer, customer, when),
        st.tuples(st.just("split"), st.integers(0, 5), when),
        st.tuples(st.just("detach"), customer, when),
    )
    changes = draw(st.lists(identity, max_size=12))
    body = changes + draw(st.lists(events(as_of), min_size=6, max_size=30))
    body = [body[i] for i in draw(st.permutations(range(len(body))))]
    ids = iter(draw(st.permutations(range(len(body)))))
    for op in body:
        if op[0] == "event":
            if op[3] is not None and op[3] not in registered:
                op = (*op[:3], registered[0], *op[4:])
            event_id = None if draw(st.integers(0, 9)) == 0 else f"T-{next(ids):03d}"
            op = (*op, event_id)
        script.append(op)
    return script


def play(g: IdentityGraph, script: list[Op]) -> None:
    """Apply a script to a graph (in memory or stored), or a part of a script:
    a split picks among every merge the journal holds (``merge``, or ``link``
    of a crm_id owned by another customer)."""
    for op in script:
        match op:
            case ("register", customer, at):
                g.register(customer, at=at)
            case ("link", customer, link, at):
                g.link(customer, link, at=at)
            case ("relink", customer, link, at):
                g.relink(link, to=customer, at=at)
            case ("unlink", link, at):
                g.unlink(link, at=at)
            case ("merge", a, b, at):
                g.merge(a, b, reason="same person", at=at)
            case ("split", index, at):
                merges = [e.args.get("merge_id") for e in g.journal() if e.op != "split"]
                merges = [merge_id for merge_id in merges if merge_id is not None]
                if merges:
                    g.split(merges[index % len(merges)], at=at)
            case ("detach", customer, at):
                g.detach(customer, at=at)
            case ("event", kind, at, customer, links, data, event_id):
                g.record(
                    Event(kind, at=at, customer_id=customer, links=links, data=data, id=event_id)
                )
            case _:
                raise AssertionError(op)


def build(script: list[Op]) -> IdentityGraph:
    g = IdentityGraph(**CONFIG)
    play(g, script)
    return g


# ------------------------------------------------------------------ comparing


def _same(a: Any, b: Any, stored: bool) -> bool:
    if type(a) is not type(b) or str(a) != str(b):
        return False
    if stored and isinstance(a, datetime):
        # A store keeps a time's UTC offset, not its ZoneInfo; and a time in the
        # hour repeated when DST ends never == one with another tzinfo (PEP 495).
        return bool(a.astimezone(UTC) == b.astimezone(UTC))
    if isinstance(a, tuple) and list(map(type, a)) != list(map(type, b)):
        return False
    return bool(a == b)


def differences(expected: Result, actual: Result, *, stored: bool = False) -> list[str]:
    """Every way ``actual`` differs from ``expected``: keys, values, types, texts
    (``stored``: a time read back from a store may carry a fixed offset)."""
    found: list[str] = []
    if len(expected) != len(actual):
        found.append(f"len {len(expected)} != {len(actual)}")
    if set(expected) != set(actual):
        found.append(f"profiles {set(expected) ^ set(actual)}")
    for profile, want in expected.items():
        if profile not in actual:
            continue
        got = actual[profile]
        if list(want) != list(got):
            found.append(f"{profile}: indicator names {list(want)} != {list(got)}")
        for name, a in want.items():
            b = got.get(name)
            if not _same(a, b, stored):
                found.append(f"{profile} {name}: {a!r} != {b!r}")
    return found


def assert_same(expected: Result, actual: Result, *, stored: bool = False) -> None:
    problems = differences(expected, actual, stored=stored)
    assert not problems, "\n".join(problems[:20])


def assert_mapping_agrees(python: Result, result: Result) -> None:
    """``result`` behaves as the python engine's dict: len, iter, in, [], items()."""
    assert len(result) == len(python) == len(list(result))
    assert set(result) == set(python)
    for profile in python:
        assert profile in result
    assert_same(python, result)
    assert_same(python, dict(result.items()))
    assert_same({k: result[k] for k in result}, dict(result.items()))
    assert_same(python, dict(zip(result.keys(), result.values(), strict=True)))


def csv_bytes(result: Result) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kpis.csv"
        write_csv(result, path)
        return path.read_bytes()


def fits_exact_range(g: IdentityGraph) -> bool:
    """Whether every purchase fits the columnar engine's documented range:
    amounts of at most 18 digits with exponents within ±18, and all amounts
    together below 10**27 units of the smallest decimal place present."""
    amounts: list[tuple[int, int]] = []
    for stored in g._ledger._events.values():
        if stored.type != "purchase":
            continue
        data = dict(stored.data)
        value = ticket_value(data, [dict(item) for item in data.get("items") or ()])
        _sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        unscaled = int("".join(map(str, digits)))
        if unscaled >= 10**18 or not -18 <= exponent <= 18:
            return False
        amounts.append((unscaled, exponent))
    scale = max([0, *(-exponent for _, exponent in amounts)])
    total: int = sum(unscaled * 10 ** (exponent + scale) for unscaled, exponent in amounts)
    return total < 10**27


def engines(exact: bool) -> tuple[str, str]:
    """The python engine and the one to compare it with."""
    return ("python", "polars") if exact else ("python", "auto")


# ------------------------------------------------------------------ generated graphs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=st.sampled_from(AS_OFS).flatmap(lambda as_of: st.tuples(st.just(as_of), scripts(as_of))),
    refs=st.lists(st.sampled_from([*CUSTOMERS, *LINKS]), max_size=2),
    # now and then one more purchase whose amount is beyond the exact range
    beyond=st.sampled_from([None] * 20 + [Decimal("1E+19"), Decimal("1E-22"), 10**19]),
)
def test_engines_agree_on_generated_graphs(
    world: tuple[datetime, list[Op]], refs: list[Any], beyond: object
) -> None:
    """Every profile, indicator, type and text is equal between the engines, the
    ``Indicators`` mapping behaves as the dict, one profile's ``kpis(ref=…)``
    agrees, and the CSV files are byte for byte equal.  Where a ticket is
    beyond the exact range, ``polars`` refuses and ``auto`` falls back."""
    as_of, script = world
    g = build(script)
    if beyond is not None:
        _buy(g, script[0][1], AS_OF - DAY, "T-beyond", amount=beyond)
    python = kpis.compute(g, as_of, "python")
    assert type(python) is dict
    exact = fits_exact_range(g)
    event("exact range" if exact else "beyond the exact range")
    if exact:
        polars = kpis.compute(g, as_of, "polars")
        assert isinstance(polars, polars_engine.Indicators)
        assert_mapping_agrees(python, polars)
    else:
        with pytest.raises(ValueError, match="cannot answer exactly"):
            kpis.compute(g, as_of, "polars")
    auto = g.kpis(as_of)
    assert isinstance(auto, polars_engine.Indicators) if exact else type(auto) is dict
    assert_same(python, auto)
    assert csv_bytes(python) == csv_bytes(auto)
    for ref in refs:
        if isinstance(ref, str) and ref not in g.customers():
            continue
        one = g.kpis(as_of, ref=ref, engine="python")
        assert_same({ref: one}, {ref: g.kpis(as_of, ref=ref, engine=engines(exact)[1])})
        assert_same({ref: one}, {ref: python.get(g.resolve(ref), compute_empty())})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts())
def test_stored_graph_agrees_with_memory(script: list[Op]) -> None:
    """A SQLite graph fed the same calls gives, with both engines, what the
    in-memory graph gives: before closing (events loaded lazily, then caught
    up while recording) and after reopening (purchase columns rebuilt).  The
    engines agree exactly; with memory, times agree as instants and texts."""
    memory = build(script)
    expected = kpis.compute(memory, AS_OF, "python")
    both = engines(fits_exact_range(memory))
    half = len(script) // 2
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "g.db")
        with IdentityGraph.open(path, **CONFIG) as g:
            play(g, script[:half])
            g.kpis(AS_OF)  # loads the events recorded so far
            play(g, script[half:])
            found = [g.kpis(AS_OF, engine=engine) for engine in both]
            assert_same(found[0], found[1])
            assert_same(expected, found[1], stored=True)
        with IdentityGraph.open(path, **CONFIG) as g:
            found = [g.kpis(AS_OF, engine=engine) for engine in reversed(both)]
            assert_same(found[1], found[0])
            assert_same(expected, found[0], stored=True)


def test_two_connections_and_checkpoints(tmp_path: Path) -> None:
    """Two connections to one SQLite file, checkpoints every two entries: each
    catches up on the other's purchases and relinks, and both engines agree
    with an in-memory graph fed the same calls, also after reopening."""
    path = str(tmp_path / "g.db")
    card = Link("loyalty_card", "7001 2345")
    memory = IdentityGraph()
    first = IdentityGraph.open(path, checkpoint_every=2)
    second = IdentityGraph.open(path, checkpoint_every=2)
    try:
        for writer in (memory, first):
            writer.register("a", at=START)
            writer.register("b", at=START)
            writer.link("a", card, at=START)
            _buy(writer, card, AS_OF - 5 * DAY, "T-1", amount=Decimal("1.50"), store="S1")
        second.kpis(AS_OF, engine="polars")  # second loads its events now
        for writer in (memory, first):
            _buy(writer, "b", AS_OF - 5 * DAY, "T-2", amount=Decimal("2.5"), promo_codes="X")
            writer.relink(card, to="b", at=AS_OF - 6 * DAY)
            writer.merge("a", "b", at=AS_OF)
        for writer in (memory, second):
            _buy(writer, card, AS_OF - 4 * DAY, "T-3", amount=3, store="S2")
        expected = kpis.compute(memory, AS_OF, "python")
        for g in (first, second):
            assert_same(expected, g.kpis(AS_OF, engine="python"))
            assert_same(expected, g.kpis(AS_OF, engine="polars"))
    finally:
        first.close()
        second.close()
    with IdentityGraph.open(path) as g:
        assert_same(expected, g.kpis(AS_OF, engine="polars"))
        assert_same(expected, g.kpis(AS_OF, engine="python"))
        assert len(g._ledger.purchases) == 3


# ------------------------------------------------------------------ fixed graphs


def _buy(g: IdentityGraph, who: str | Link, at: datetime, event_id: str, **data: Any) -> None:
    data.setdefault("amount", Decimal("10.00"))
    if isinstance(who, Link):
        event = Event("purchase", at=at, links=(who,), id=event_id, data=data)
    else:
        event = Event("purchase", at=at, customer_id=who, id=event_id, data=data)
    assert g.record(event)


def small_graph() -> IdentityGraph:
    """Three customers (b merged into a), a card that moves from a to c, an
    anonymous card, and purchases on each."""
    g = IdentityGraph()
    for customer in ("a", "b", "c"):
        g.register(customer, at=START)
    g.merge("a", "b", reason="same person", at=START)
    card = Link("loyalty_card", "7001 2345")
    g.link("a", card, at=START)
    g.relink(card, to="c", at=AS_OF - 10 * DAY)
    _buy(g, "b", AS_OF - 100 * DAY, "T-1", amount=Decimal("10.50"), store="S01")
    _buy(g, card, AS_OF - 20 * DAY, "T-2", amount=Decimal("1E+2"), promo_codes=["XMAS"])
    _buy(g, card, AS_OF - 5 * DAY, "T-3", amount=7)
    _buy(g, Link("email", "walkin@example.com"), AS_OF - DAY, "T-4", amount="3.5")
    return g


def test_ties_across_time_zones_break_by_event_id() -> None:
    """Two purchases at one instant written in two zones: the first and the
    latest ticket are both chosen by event id, in both engines."""
    g = IdentityGraph()
    g.register("c1", at=START)
    at = AS_OF - 3 * DAY
    _buy(g, "c1", at.astimezone(ZONES[1]), "T-b", amount=Decimal("2.0"), store="S2")
    _buy(g, "c1", at.astimezone(ZONES[2]), "T-a", amount=Decimal("1.00"), store="S1")
    _buy(g, "c1", at.astimezone(ZONES[3]), "T-c", amount=Decimal("3"), store="S3")
    python = kpis.compute(g, AS_OF, "python")
    assert_same(python, kpis.compute(g, AS_OF, "polars"))
    row = python["c1"]
    assert str(row["First_Purchase_Date"]) == str(at.astimezone(ZONES[2]))
    assert str(row["Last_Purchase_Date"]) == str(at.astimezone(ZONES[3]))
    assert row["Last_Purchase_Stores"] == ("S3",)
    assert str(row["Total_Value"]) == "6.00"


def test_window_edges() -> None:
    """A purchase at exactly ``as_of - W days`` is out of the W window, one at
    ``as_of`` is in, one after ``as_of`` is ignored."""
    g = IdentityGraph()
    g.register("c1", at=START)
    for days in WINDOWS:
        _buy(g, "c1", AS_OF - days * DAY, f"T-{days}", amount=days)
    _buy(g, "c1", AS_OF, "T-now", amount=Decimal("0.5"))
    _buy(g, "c1", AS_OF + US, "T-later", amount=1000)
    python = kpis.compute(g, AS_OF, "python")
    assert_same(python, kpis.compute(g, AS_OF, "polars"))
    assert python["c1"]["Purchases_30_Days"] == 1
    assert python["c1"]["Purchases_60_Days"] == 2
    assert python["c1"]["Total_Purchases"] == 6
    assert str(python["c1"]["Total_Value"]) == "720.5"


def test_wide_sums_use_128_bit_integers() -> None:
    """Sums past 64 bits at the common scale, still within the exact range."""
    g = IdentityGraph()
    g.register("c1", at=START)
    g.register("c2", at=START)
    _buy(g, "c1", AS_OF - DAY, "T-1", amount=Decimal("1E+16"))
    _buy(g, "c1", AS_OF - DAY, "T-2", amount=Decimal("0.5"))
    _buy(g, "c2", AS_OF - DAY, "T-3", amount=Decimal("-9999999999999999"))
    _buy(g, "c2", AS_OF - 2 * DAY, "T-4", amount=Decimal("-0.000000001"))
    python = kpis.compute(g, AS_OF, "python")
    polars = kpis.compute(g, AS_OF, "polars")
    assert_same(python, polars)
    assert str(polars["c2"]["Total_Value"]) == "-9999999999999999.000000001"


def _edge_graph(case: str) -> IdentityGraph:
    g = IdentityGraph()
    if case == "empty":
        return g
    g.register("c1", at=START)
    g.register("c2", at=START)
    rich = {"store": "S1", "promo_codes": ["P"], "items": [{"brand": "B", "sku": "K"}]}
    if case == "visits only":
        g.record(Event("visit", at=AS_OF - DAY, customer_id="c1", id="V-1"))
    elif case == "purchases after as_of only":
        _buy(g, "c1", AS_OF + US, "T-1", **rich)
        _buy(g, Link("email", "x@example.com"), AS_OF + DAY, "T-2", **rich)
    elif case == "anonymous only":
        _buy(g, Link("email", "x@example.com"), AS_OF - DAY, "T-1", **rich)
    elif case == "outside every window":
        _buy(g, "c2", AS_OF - 360 * DAY, "T-1", **rich)
    elif case == "no strings":
        _buy(g, "c2", AS_OF - DAY, "T-1", amount=None)
        _buy(g, "c2", AS_OF - DAY, "T-0", amount=None, items=[{"quantity": 0}])
    return g


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "customers only",
        "visits only",
        "purchases after as_of only",
        "anonymous only",
        "outside every window",
        "no strings",
    ],
)
def test_edge_graphs(case: str) -> None:
    """Graphs with nothing (or nothing in range) to count agree too."""
    g = _edge_graph(case)
    python = kpis.compute(g, AS_OF, "python")
    polars = kpis.compute(g, AS_OF, "polars")
    assert_mapping_agrees(python, polars)
    assert csv_bytes(python) == csv_bytes(polars)


# ------------------------------------------------------------------ fallback


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("1E+20"),
        Decimal("0.0000000000000000000001"),
        Decimal("1000000000000000000"),  # 19 digits
        10**19,
        "1E+19",
    ],
)
def test_amounts_beyond_the_exact_range_fall_back(amount: object) -> None:
    """``auto`` answers with the python engine; ``polars`` refuses with ValueError."""
    g = small_graph()
    _buy(g, "c", AS_OF - DAY, "T-big", amount=amount)
    python = kpis.compute(g, AS_OF, "python")
    auto = g.kpis(AS_OF)
    assert type(auto) is dict
    assert_same(python, auto)
    assert_same({"c": python["c"]}, {"c": g.kpis(AS_OF, ref="c")})
    with pytest.raises(ValueError, match="cannot answer exactly"):
        g.kpis(AS_OF, engine="polars")


def test_sum_beyond_the_exact_range_falls_back() -> None:
    """Amounts that fit one by one but whose sum at the common scale passes 10**27."""
    g = small_graph()
    _buy(g, "a", AS_OF - DAY, "T-big", amount=Decimal("999999999999999999"))
    _buy(g, "c", AS_OF - DAY, "T-tiny", amount=Decimal("0.000000001"))
    assert g._ledger.purchases.exact  # each amount fits; only the sum does not
    with pytest.raises(ValueError, match="cannot answer exactly"):
        g.kpis(AS_OF, engine="polars")
    # Code written against the engine's former module still catches its error.
    from identity_graph import kpis_polars

    with pytest.raises(kpis_polars.EngineUnavailable):
        kpis_polars.compute(g, AS_OF)
    assert_same(kpis.compute(g, AS_OF, "python"), g.kpis(AS_OF))


@pytest.mark.parametrize("engine", ["pandas", "", "Polars", "AUTO"])
def test_unknown_engine(engine: str) -> None:
    """An engine name not in ENGINES is a ValueError, with or without ``ref``."""
    g = small_graph()
    with pytest.raises(ValueError, match="engine"):
        g.kpis(AS_OF, engine=engine)
    with pytest.raises(ValueError, match="engine"):
        g.kpis(AS_OF, ref="a", engine=engine)
    # An unknown ref is named first, as before the engine ran.
    with pytest.raises(UnknownCustomer):
        g.kpis(AS_OF, ref="nobody", engine=engine)


@pytest.mark.parametrize("missing", kpis.COLUMNAR_PACKAGES)
def test_without_a_columnar_package(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    """With polars or numpy missing (a base install), ``polars`` names the
    missing package and the extra, and ``auto`` answers in Python."""
    g = small_graph()
    expected = kpis.compute(g, AS_OF, "python")
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, "identity_graph.kpis.columnar")
    monkeypatch.delattr(kpis, "columnar")
    with pytest.raises(ModuleNotFoundError, match=r"identity-graph\[polars\]") as caught:
        g.kpis(AS_OF, engine="polars")
    assert caught.value.name == missing
    assert f"needs {missing}" in str(caught.value)
    auto = g.kpis(AS_OF)
    assert type(auto) is dict
    assert_same(expected, auto)
    assert_same({"c": expected["c"]}, {"c": g.kpis(AS_OF, ref="c")})


# ------------------------------------------------------------------ the Indicators mapping


def test_indicators_mapping() -> None:
    """len/iter/in/[] agree with the dict; KeyError for an unknown customer, a
    customer merged into another profile and a link without purchases."""
    g = small_graph()
    python = kpis.compute(g, AS_OF, "python")
    result = kpis.compute(g, AS_OF, "polars")
    assert_mapping_agrees(python, result)
    anonymous = Link("email", "walkin@example.com")
    assert set(result) == {"a", "c", anonymous}
    assert anonymous in result
    absent: list[Any] = ["nobody", "b", Link("email", "never@example.com"), 42, None]
    for missing in absent:
        assert missing not in result
        with pytest.raises(KeyError):
            result[missing]
    card = Link("loyalty_card", "70012345")  # every purchase on it has an owner
    assert card not in result and card not in python
    assert result["a"] is not result["a"]  # a fresh dict on each read
    result["a"]["Total_Value"] = Decimal(0)
    assert result["a"]["Total_Value"] == python["a"]["Total_Value"]


def test_indicators_is_a_snapshot() -> None:
    """Purchases recorded, merges and splits made after computing leave an
    earlier result as it was."""
    g = small_graph()
    python = kpis.compute(g, AS_OF, "python")
    result = kpis.compute(g, AS_OF, "polars")
    merge_id = g.merge("a", "c", reason="later", at=AS_OF)
    assert merge_id is not None
    # On anchors that already have purchases (new anchors: the regression tests below).
    _buy(g, "b", AS_OF - DAY, "T-new", amount=Decimal("99.99"))
    _buy(g, Link("loyalty_card", "7001 2345"), AS_OF - DAY, "T-new2", amount=1)
    _buy(g, Link("email", "walkin@example.com"), AS_OF - DAY, "T-new3", amount=1)
    assert_mapping_agrees(python, result)
    g.split(merge_id)
    g.register("d", at=AS_OF)
    assert_mapping_agrees(python, result)
    assert_same(kpis.compute(g, AS_OF, "python"), kpis.compute(g, AS_OF, "polars"))


def test_snapshot_survives_an_out_of_range_purchase() -> None:
    """An amount beyond the exact range recorded after computing turns the
    ledger's columns off and frees them; the earlier result still answers."""
    g = small_graph()
    python = kpis.compute(g, AS_OF, "python")
    result = kpis.compute(g, AS_OF, "polars")
    _buy(g, "b", AS_OF - DAY, "T-big", amount=Decimal("1E+20"))
    assert not g._ledger.purchases.exact
    assert_mapping_agrees(python, result)


# ------------------------------------------------------------------ regressions
# Disagreements this file found; each test is the smallest reproduction.


def test_snapshot_survives_new_customer_anchors() -> None:
    """Profile ids that are no anchor of a purchase (here: card owners) get
    codes after the anchors; a later first purchase on such a customer took
    the next anchor code, and the earlier result read b's profile from a's row."""
    g = IdentityGraph()
    cards = [Link("loyalty_card", "7001 0001"), Link("loyalty_card", "7001 0002")]
    for n, card in enumerate(cards):
        g.link("ab"[n], card, at=START)
        _buy(g, card, AS_OF - n * DAY, f"T-{n}", amount=n + 1)
    python = kpis.compute(g, AS_OF, "python")
    result = kpis.compute(g, AS_OF, "polars")  # codes: cards 0 and 1, a 2, b 3
    _buy(g, "b", AS_OF - DAY, "T-new", amount=5)  # b becomes anchor code 2
    assert_mapping_agrees(python, result)


def test_snapshot_survives_a_new_link_anchor() -> None:
    """A link first seen after computing is not in the earlier result
    (``link in result`` used to index past the frame: IndexError)."""
    g = IdentityGraph()
    g.register("c1", at=START)
    result = kpis.compute(g, AS_OF, "polars")
    _buy(g, Link("email", "x@example.com"), AS_OF - DAY, "T-1", amount=1)
    assert Link("email", "x@example.com") not in result
    with pytest.raises(KeyError):
        result[Link("email", "x@example.com")]
    assert_mapping_agrees({"c1": compute_empty()}, result)


def test_empty_promo_code_string() -> None:
    """``promo_codes=""``: python used to skip it in the windows (a falsy
    value) while listing "" as the latest ticket's code; polars listed it in
    both.  The engines agree, and the latest ticket's list matches the total."""
    g = IdentityGraph()
    g.register("c1", at=START)
    _buy(g, "c1", AS_OF - DAY, "T-1", amount=1, promo_codes="")
    python = kpis.compute(g, AS_OF, "python")
    assert_same(python, kpis.compute(g, AS_OF, "polars"))
    row = python["c1"]
    assert row["Total_Promo_Codes"] == row["Last_Purchase_Promo_Codes"]


def test_item_counts_beyond_64_bits() -> None:
    """Each quantity is below 2**62 (the per-row check) but their sum is not:
    polars used to wrap it in Int64 (Total_Items -6446744073709551616).  Now
    polars refuses or agrees, and ``auto`` gives the exact count."""
    g = IdentityGraph()
    g.register("c1", at=START)
    for n in range(4):
        _buy(g, "c1", AS_OF - DAY, f"T-{n}", amount=1, items=[{"quantity": 3 * 10**18}])
    python = kpis.compute(g, AS_OF, "python")
    assert python["c1"]["Total_Items"] == 12 * 10**18
    assert_same(python, g.kpis(AS_OF))
    try:
        polars = kpis.compute(g, AS_OF, "polars")
    except ValueError:
        return
    assert_same(python, polars)


def test_as_of_view() -> None:
    """A read-only ``as_of()`` view from before c2 was registered: python used
    to list c2 (its purchases are in the shared ledger), polars did not."""
    g = IdentityGraph()
    g.register("c1", at=START)
    _buy(g, "c1", AS_OF - DAY, "T-1", amount=1)
    g.register("c2", at=START)
    _buy(g, "c2", AS_OF - DAY, "T-2", amount=2)
    view = g.as_of(1)
    python = kpis.compute(view, AS_OF, "python")
    assert set(python) == {"c1"}
    assert_mapping_agrees(python, kpis.compute(view, AS_OF, "polars"))


@pytest.mark.parametrize("field", ["promo_codes", "payment_methods", "shipping_methods", "seller"])
def test_number_in_a_string_field(field: str) -> None:
    """``promo_codes=0`` (any field read as "a string or a list") used to be
    recorded, turn the columns off, and then crash ``auto`` and ``python``
    with TypeError.  Now it is refused or read, the same way by both engines."""
    g = small_graph()
    event = Event("purchase", at=AS_OF - DAY, customer_id="c", id="T-bad", data={field: 0})
    try:
        g.record(event)
    except InvalidEvent:
        return
    python = kpis.compute(g, AS_OF, "python")
    assert_same(python, g.kpis(AS_OF))
    assert_same(python, kpis.compute(g, AS_OF, "polars"))


def test_padded_purchase_type_is_checked() -> None:
    """The ledger strips the type to "purchase" but used to check the data
    only when written exactly "purchase": malformed data reached the engines
    (python and auto raised AttributeError)."""
    g = IdentityGraph()
    g.register("c1", at=START)
    data = {"amount": 1, "items": "not a list"}
    with pytest.raises(InvalidEvent):
        g.record(Event(" purchase ", at=AS_OF - DAY, customer_id="c1", id="T-1", data=data))
    _buy(g, "c1", AS_OF - DAY, "T-2", amount=1)
    assert_same(kpis.compute(g, AS_OF, "python"), kpis.compute(g, AS_OF, "polars"))


def _helsinki() -> tzinfo:
    if not DST_ZONES:
        pytest.skip("no time zone database")
    return DST_ZONES[0]


def test_as_of_in_a_zone_with_daylight_saving() -> None:
    """``as_of - 30 days`` across a DST change used to be 30 wall-clock days
    in python (one ``ZoneInfo`` on both sides) but 30 × 24 hours in polars,
    so a purchase between the two starts was in python's 30-day window only.
    Windows are instants apart, whatever zone ``as_of`` is written in."""
    g = IdentityGraph()
    g.register("c1", at=START)
    _buy(g, "c1", datetime(2024, 10, 11, 9, 30, tzinfo=UTC), "T-1", amount=1)
    as_of = datetime(2024, 11, 10, 12, 0, tzinfo=_helsinki())  # 10:00 UTC, EET
    python = kpis.compute(g, as_of, "python")
    assert_same(python, kpis.compute(g, as_of, "polars"))
    assert_same(python, kpis.compute(g, as_of.astimezone(UTC), "python"))
    assert python["c1"]["Purchases_30_Days"] == 0  # 30 days + 30 minutes before as_of


def test_purchases_in_the_repeated_hour() -> None:
    """Two purchases in the hour repeated when DST ends, in one ``ZoneInfo``:
    03:30 (fold 0, 00:30 UTC) is before 03:15 (fold 1, 01:15 UTC).  Python
    used to compare them by wall clock and take T-a as the latest."""
    g = IdentityGraph()
    g.register("c1", at=START)
    helsinki = _helsinki()
    _buy(g, "c1", datetime(2024, 10, 27, 3, 30, tzinfo=helsinki), "T-a", amount=1)
    _buy(g, "c1", datetime(2024, 10, 27, 3, 15, tzinfo=helsinki, fold=1), "T-b", amount=2)
    python = kpis.compute(g, AS_OF, "python")
    assert_same(python, kpis.compute(g, AS_OF, "polars"))
    assert python["c1"]["Last_Purchase_Amount"] == 2
    assert python["c1"]["Last_Purchase_Date"].fold == 1


def test_rerecording_a_purchase_in_the_repeated_hour(tmp_path: Path) -> None:
    """Found by the stored-graph test: a purchase at 03:15 Europe/Helsinki on
    the day DST ends (fold 0) is read back from SQLite with a fixed +03:00
    offset, which never ``==`` a ZoneInfo time in the repeated hour (PEP 495);
    recording the very same event again used to raise DuplicateEvent instead
    of returning False (identical content changes nothing)."""
    event = Event(
        "purchase",
        at=datetime(2024, 10, 27, 3, 15, tzinfo=_helsinki()),
        customer_id="c1",
        id="T-1",
        data={"amount": 1},
    )
    path = str(tmp_path / "g.db")
    with IdentityGraph.open(path) as g:
        g.register("c1", at=START)
        assert g.record(event)
    with IdentityGraph.open(path) as g:
        assert g.record(event) is False


# ------------------------------------------------------------------ from the review


def test_as_of_view_with_strings_after_a_later_customer() -> None:
    """In a view, purchases of a customer registered later are dropped; the
    string triples used to be read by position afterwards (OutOfBoundsError,
    or another row's stores through ``auto``)."""
    g = IdentityGraph()
    g.register("c1", at=START)
    g.register("c2", at=START)
    _buy(g, "c2", AS_OF - DAY, "T-c2", store="X")  # row 0: c2 is not in the view
    _buy(g, "c1", AS_OF - DAY, "T-c1", store="S1")
    _buy(g, "c1", AS_OF + DAY, "T-c1-later", store="S2")  # after as_of
    view = g.as_of(1)
    python = kpis.compute(view, AS_OF, "python")
    assert python["c1"]["Total_Stores"] == ("S1",)
    assert_same(python, kpis.compute(view, AS_OF, "polars"))
    assert_same(python, view.kpis(AS_OF))


def test_link_moves_in_the_repeated_hour() -> None:
    """Change points of a link in the hour repeated when DST ends are ordered
    by instant (the graph keeps every time in UTC), so both engines and
    ``events()`` give the 01:30 UTC purchase to x, who held the card then."""
    helsinki = _helsinki()
    g = IdentityGraph()
    for customer in "wxyz":
        g.register(customer, at=START)
    card = Link("loyalty_card", "7001 2345")
    g.link("w", card, at=datetime(2024, 10, 27, 2, 30, tzinfo=helsinki))  # 23:30 UTC
    g.relink(card, to="y", at=datetime(2024, 10, 27, 3, 30, tzinfo=helsinki))  # 00:30 UTC
    g.relink(card, to="x", at=datetime(2024, 10, 27, 3, 15, tzinfo=helsinki, fold=1))  # 01:15
    g.relink(card, to="z", at=datetime(2024, 10, 27, 4, 0, tzinfo=helsinki))  # 02:00 UTC
    _buy(g, card, datetime(2024, 10, 27, 1, 30, tzinfo=UTC), "T-1")
    python = kpis.compute(g, AS_OF, "python")
    assert python["x"]["Total_Purchases"] == 1
    assert [e.id for e in g.events("x")] == ["T-1"]
    assert_same(python, kpis.compute(g, AS_OF, "polars"))


def test_anonymous_profiles_come_in_link_key_order() -> None:
    """Both engines list customer profiles, then anonymous ones by link key."""
    g = IdentityGraph()
    g.register("c1", at=START)
    one, two = Link("email", "one@example.com"), Link("email", "two@example.com")
    g.record(Event("visit", at=AS_OF - 9 * DAY, links=(two,), id="V-1"))
    _buy(g, one, AS_OF - 5 * DAY, "T-1")
    _buy(g, two, AS_OF - 4 * DAY, "T-2")
    python = kpis.compute(g, AS_OF, "python")
    polars = kpis.compute(g, AS_OF, "polars")
    assert list(python) == list(polars) == ["c1", one, two]


def test_the_engines_former_module_name_still_imports() -> None:
    from identity_graph import kpis_polars

    assert kpis_polars.Indicators is polars_engine.Indicators
    g = small_graph()
    assert_same(kpis.compute(g, AS_OF, "python"), kpis_polars.compute(g, AS_OF))
