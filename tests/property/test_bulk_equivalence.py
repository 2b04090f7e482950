"""``record_table`` against ``record_many``: the same rows on two graphs that
went through the same random set-up must leave equal ledgers, journals,
refusal logs, counts and refused rows.

The rows mix every case the per-event path handles: invalid types, naive
and out-of-range times, bad ids, duplicates (same id with the same or
other content), blocked and invalid link values, unknown customers (with
and without ``register_unknown``), values erased by ``forget``, events
before and after a link changed hands, valid and invalid purchases, and
rows that cannot be an ``Event`` at all.  Each table is recorded as a
mapping of Python lists and as a polars DataFrame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, Link, LinkType
from identity_graph.bulk import _frozen_struct
from identity_graph.errors import IdentityGraphError
from identity_graph.events import freeze_data

SECRET = b"bulk-equivalence-secret-0123456"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))
LINK_COLUMNS = ("email", "loyalty_card", "crm_id")

TYPES: list[object] = ["purchase", "visit", " purchase ", "call", "", "  ", "bad\x00", 5, None]
TIMES: list[object] = [
    T0,
    T0 + timedelta(days=1),
    (T0 + timedelta(days=40)).astimezone(PLUS2),  # after a link changed hands
    T0 + timedelta(days=40, hours=3),
    datetime(2024, 1, 2),  # naive
    datetime(1, 1, 1, tzinfo=UTC),  # outside the supported range
    "2024-01-01",  # not a datetime
    None,
]
IDS: list[object] = [None, None, "e1", "e2", "e3", "e9", "", " ", "erased:x", "x" * 300, "n\x00"]
CUSTOMERS: list[object] = [None, None, "c1", "c2", " c1 ", "c7", "gone", "", "erased:c", 7]
EMAILS: list[object] = [
    None,
    "",
    "ann@example.com",
    "Ann@Example.com",
    "bob@example.com",
    "null",  # blocked
    "not-an-email",  # invalid
    "gone@example.com",  # erased by forget
    5,  # not text: the row cannot be an Event
]
CARDS: list[object] = [None, "", "CARD-0001", "card 0002", "GONE9999", "x"]
CRM: list[object] = [None, "", "K1", " K1 ", "K2"]
DATA: list[object] = [
    None,
    {},
    {"amount": Decimal("19.90"), "items": [{"sku": "S1", "quantity": 2}]},
    {"amount": "12.5", "store": "S"},
    {  # every field the purchase check reads, each of a kind it passes
        "amount": 5,
        "items": [{"sku": "S", "quantity": 0, "unit_price": Decimal("1.5"), "seller": ["a"]}],
        "promo_codes": ["X", "Y"],
        "store": "S",
    },
    {"amount": "lots"},  # an invalid purchase
    {"items": [{"quantity": -1}]},  # an invalid purchase
    {"amount": 10**30},  # beyond any purchase
    {"note": "caf\u00e9"},  # not ASCII: walked again at the door
    {"note": "nul\x00"},  # breaks the text rule
    {"x": {1, 2}},  # a set: the row cannot be an Event
    "not a mapping",  # the row cannot be an Event
    {"items": [{"sku": ["x"]}]},  # a name given as a list: an invalid purchase
    {"amount": Decimal("Infinity")},  # an invalid purchase
    {"items": [{"quantity": True}]},  # an invalid purchase
    {"seller": [["nested"]]},  # an invalid purchase
]

#: How many values at the head of each list pass the column's own checks.
VALID = {
    "type": 4,
    "at": 4,
    "id": 6,
    "customer_id": 6,
    "data": 5,
    "email": 5,
    "loyalty_card": 4,
    "crm_id": 5,
}


def graph(register_unknown: bool) -> IdentityGraph:
    return IdentityGraph(
        secret=SECRET,
        register_unknown=register_unknown,
        link_types={"crm_id": LinkType()},
        clock=clock,
    )


def clock() -> datetime:
    """A fixed now: refusals of rows without a valid time are logged at it."""
    return T0 + timedelta(days=100)


SETUP_STEPS: list[Callable[[IdentityGraph], object]] = [
    lambda g: g.register("c1", at=T0),
    lambda g: g.register("c2", at=T0),
    lambda g: g.link("c1", Link("email", "ann@example.com"), at=T0),
    lambda g: g.link("c2", Link("loyalty_card", "CARD0001"), at=T0),
    # A late fact: the card changed hands between the events' times.
    lambda g: g.relink(Link("loyalty_card", "CARD0001"), to="c1", at=T0 + timedelta(days=20)),
    lambda g: g.record(Event("visit", at=T0, customer_id="c1", id="e1")),
    lambda g: g.record(
        Event("purchase", at=T0, links=(Link("loyalty_card", "CARD0002"),), id="e2")
    ),
]


def forget_someone(g: IdentityGraph) -> None:
    """A person erased: their id, email, card and event id are suppressed."""
    g.link("gone", Link("email", "gone@example.com"), at=T0)
    g.link("gone", Link("loyalty_card", "GONE9999"), at=T0)
    g.record(Event("visit", at=T0, customer_id="gone", id="e9"))
    g.forget("gone", at=T0 + timedelta(days=1))


#: Values an event in checked form has (registered customers, links
#: normalised, ids given): what record_many files in batches.  Columns in
#: this order give sorted links (email < loyalty_card).
PLAIN: dict[str, list[object]] = {
    "type": ["purchase", "visit"],
    "at": [T0, T0 + timedelta(days=1), T0 + timedelta(days=40, hours=3)],
    "id": ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"],
    "customer_id": [None, "c1", "c2"],
    "data": DATA[:5],
    "email": [None, "ann@example.com", "bob@example.com"],
    "loyalty_card": [None, "CARD0001", "CARD0002"],
    "crm_id": [None],
}


@st.composite
def scenarios(
    draw: st.DrawFn, plain: bool = False
) -> tuple[bool, list[int], bool, dict[str, list[Any]]]:
    """A graph set-up and a table; with ``plain``, most rows are events in
    checked form (the batch path of record_many) among a few faults."""
    register_unknown = draw(st.booleans())
    steps = draw(st.lists(st.sampled_from(range(len(SETUP_STEPS))), max_size=8))
    erase = draw(st.booleans())
    if plain:
        steps = [0, 1, *steps]
        erase = draw(st.integers(0, 4)) == 0
    n = draw(st.integers(0, 14))
    columns: dict[str, list[Any]] = {"type": [], "at": []}
    optional = draw(st.sets(st.sampled_from(["id", "customer_id", "data", *LINK_COLUMNS])))
    if plain:
        optional |= {"id", "customer_id"}
    choices = {
        "type": TYPES,
        "at": TIMES,
        "id": IDS,
        "customer_id": CUSTOMERS,
        "data": DATA,
        "email": EMAILS,
        "loyalty_card": CARDS,
        "crm_id": CRM,
    }
    for name in sorted(optional, key=list(choices).index):
        columns[name] = []
    # Rows repeat earlier rows now and then: duplicates in one table.
    for _ in range(n):
        if columns["type"] and draw(st.integers(0, 4)) == 0:
            j = draw(st.integers(0, len(columns["type"]) - 1))
            row = {name: values[j] for name, values in columns.items()}
            if "data" in row and draw(st.booleans()):
                row["data"] = {"other": "content"}  # same id, other content
        else:
            # Mostly values that pass (the first few of each list), so that
            # most rows take the fast path and the faults stand out.
            row = {
                name: draw(
                    st.sampled_from(PLAIN[name] if plain else choices[name][: VALID[name]])
                    if draw(st.integers(0, 9)) < 8
                    else st.sampled_from(choices[name])
                )
                for name in columns
            }
        for name, values in columns.items():
            values.append(row[name])
    return register_unknown, steps, erase, columns


def set_up(register_unknown: bool, steps: list[int], erase: bool) -> IdentityGraph:
    return apply_steps(graph(register_unknown), steps, erase)


def apply_steps(g: IdentityGraph, steps: list[int], erase: bool) -> IdentityGraph:
    for step in steps:
        # A step refused in this order is refused on both graphs alike.
        with contextlib.suppress(Exception):
            SETUP_STEPS[step](g)
    if erase:
        forget_someone(g)
    return g


def row_event(columns: dict[str, list[Any]], i: int) -> Event:
    """Row ``i`` as the Event it stands for (what the caller of record_many builds)."""
    links = tuple(
        Link(name, columns[name][i])
        for name in columns
        if name in LINK_COLUMNS and columns[name][i] is not None and columns[name][i] != ""
    )
    data = columns.get("data", [None] * (i + 1))[i]
    return Event(
        columns["type"][i],
        at=columns["at"][i],
        customer_id=columns.get("customer_id", [None] * (i + 1))[i],
        links=links,
        data={} if data is None else data,
        id=columns.get("id", [None] * (i + 1))[i],
    )


def as_polars(columns: dict[str, list[Any]]) -> Any:
    """The table as a polars DataFrame: a typed column where polars can hold
    the values exactly (text; aware times, converted to UTC), else a column
    of Python objects."""
    pl = pytest.importorskip("polars")
    series = []
    for name, values in columns.items():
        series.append(_series(name, values))
    return pl.DataFrame(series) if series else pl.DataFrame()


def _series(name: str, values: list[Any]) -> Any:
    import polars as pl

    if name != "data" and all(v is None or type(v) is str for v in values):
        return pl.Series(name, values, dtype=pl.String)
    if (
        name == "at"
        and values
        and all(type(v) is datetime and v.tzinfo is not None and 1 < v.year < 9999 for v in values)
    ):
        return pl.Series(name, [v.astimezone(UTC) for v in values], dtype=pl.Datetime("us", "UTC"))
    return pl.Series(name, values, dtype=pl.Object)


def outcome(g: IdentityGraph) -> dict[str, Any]:
    """Everything the two paths must agree on (the ledger by id, with anchors)."""
    ledger = g._ledger
    anchors = {event_id: anchor for anchor, _times, ids in ledger.anchored() for event_id in ids}
    g._check()
    return {
        "events": {
            event_id: (event, event.content(), anchors[event_id])
            for event_id, event in ledger.by_id().items()
        },
        "journal": list(g.journal()),
        "state": g._state(),
        "kpis": g.kpis(T0 + timedelta(days=400)),
    }


def compare(
    register_unknown: bool,
    steps: list[int],
    erase: bool,
    columns: dict[str, list[Any]],
    table: Any,
) -> None:
    bulk, reference = (set_up(register_unknown, steps, erase) for _ in range(2))
    log_start = len(bulk.refusals())
    assert log_start == len(reference.refusals())
    events: list[Event] = []
    row_of: dict[int, int] = {}
    broken: dict[int, Exception] = {}
    for i in range(len(columns["type"])):
        try:
            event = row_event(columns, i)
        except Exception as error:  # the caller of record_many could not build it
            broken[i] = error
            continue
        row_of[id(event)] = len(events)
        events.append(event)
    rows = [i for i in range(len(columns["type"])) if i not in broken]

    refused: list[tuple[int, Exception]] = []
    answer = bulk.record_table(table, refused=refused)
    expected_refused: list[tuple[Event, Exception]] = []
    expected = reference.record_many(events, refused=expected_refused)

    assert answer == expected
    got = [(i, type(e), str(e)) for i, e in refused]
    want = sorted(
        [(rows[row_of[id(event)]], type(e), str(e)) for event, e in expected_refused]
        + [(i, type(e), str(e)) for i, e in broken.items()],
        key=lambda item: item[0],
    )
    assert got == want
    # The refusal log: the same entries in the same order, and one entry
    # per row that could not be an Event, with its row index.
    log = bulk.refusals()[log_start:]
    assert [r for r in log if "row" not in r.args] == reference.refusals()[log_start:]
    assert [(r.args["row"], r.error, r.reason) for r in log if "row" in r.args] == [
        (i, type(e).__name__, str(e)) for i, e in sorted(broken.items())
    ]
    assert outcome(bulk) == outcome(reference)


@settings(max_examples=250)
@given(scenarios())
def test_record_table_of_a_mapping_equals_record_many(
    scenario: tuple[bool, list[int], bool, dict[str, list[Any]]],
) -> None:
    register_unknown, steps, erase, columns = scenario
    compare(register_unknown, steps, erase, columns, columns)


@settings(max_examples=150)
@given(scenarios())
def test_record_table_of_a_polars_frame_equals_record_many(
    scenario: tuple[bool, list[int], bool, dict[str, list[Any]]],
) -> None:
    register_unknown, steps, erase, columns = scenario
    compare(register_unknown, steps, erase, columns, as_polars(columns))


@settings(max_examples=40)
@given(scenarios(), st.integers(1, 4))
def test_a_stored_graph_in_batches_equals_record_many(
    tmp_path_factory: pytest.TempPathFactory,
    scenario: tuple[bool, list[int], bool, dict[str, list[Any]]],
    batch_size: int,
) -> None:
    """Into SQLite, one transaction per ``batch_size`` rows: the stores then
    hold the same rows (read back by opening them again)."""
    register_unknown, steps, erase, columns = scenario
    folder: Path = tmp_path_factory.mktemp("bulk")
    graphs = []
    for name in ("bulk.db", "reference.db"):
        g = IdentityGraph.open(
            str(folder / name),
            secret=SECRET,
            register_unknown=register_unknown,
            link_types={"crm_id": LinkType()},
            batch_size=batch_size,
            clock=clock,
        )
        graphs.append(apply_steps(g, steps, erase))
    bulk, reference = graphs
    refused: list[tuple[int, Exception]] = []
    events, rows = [], []
    for i in range(len(columns["type"])):
        try:
            events.append(row_event(columns, i))
            rows.append(i)
        except Exception:
            continue
    expected_refused: list[tuple[Event, Exception]] = []
    assert bulk.record_table(columns, refused=refused) == reference.record_many(
        events, refused=expected_refused
    )
    assert [str(e) for i, e in refused if i in rows] == [str(e) for _, e in expected_refused]
    for g in graphs:
        g.close()
    again = [
        IdentityGraph.open(str(folder / name), secret=SECRET, link_types={"crm_id": LinkType()})
        for name in ("bulk.db", "reference.db")
    ]
    try:
        a, b = again
        assert list(a.journal()) == list(b.journal())
        a._check()  # (loads the events)
        b._check()
        assert a._ledger.by_id() == b._ledger.by_id()
        assert [r for r in a.refusals() if "row" not in r.args] == b.refusals()
    finally:
        for g in again:
            g.close()


def record_one_by_one(
    g: IdentityGraph, events: list[Event]
) -> tuple[tuple[int, int], list[tuple[Event, Exception]]]:
    """What ``record_many`` must do, one ``record`` call per event (the
    per-event path, which takes no bulk shortcut)."""
    recorded = unchanged = 0
    refused: list[tuple[Event, Exception]] = []
    for event in events:
        try:
            if g.record(event):
                recorded += 1
            else:
                unchanged += 1
        except (IdentityGraphError, ValueError) as error:
            refused.append((event, error))
    return (recorded, unchanged), refused


@settings(max_examples=200)
@given(st.booleans().flatmap(lambda plain: scenarios(plain)))
def test_record_many_equals_one_record_per_event(
    scenario: tuple[bool, list[int], bool, dict[str, list[Any]]],
) -> None:
    """``record_many`` files the events already in checked form in batches;
    it must leave what one ``record`` call per event leaves."""
    register_unknown, steps, erase, columns = scenario
    bulk, reference = (set_up(register_unknown, steps, erase) for _ in range(2))
    log_start = len(bulk.refusals())
    events = []
    for i in range(len(columns["type"])):
        with contextlib.suppress(Exception):
            events.append(row_event(columns, i))
    refused: list[tuple[Event, Exception]] = []
    answer = bulk.record_many(events, refused=refused)
    expected, expected_refused = record_one_by_one(reference, events)
    assert answer == expected
    assert [(id(e), type(x), str(x)) for e, x in refused] == [
        (id(e), type(x), str(x)) for e, x in expected_refused
    ]
    assert bulk.refusals()[log_start:] == reference.refusals()[log_start:]
    assert outcome(bulk) == outcome(reference)


#: Data as a polars Struct column holds: a purchase's fields, each of one
#: type per column (amount as Decimal, float, int or text; items as a list
#: of structs), and a free note (non-ASCII and NUL included).
_TEXT = st.text(alphabet=st.sampled_from("aZ09 -\u00e9\x00\u4e2d"), max_size=4)
_ITEM = st.fixed_dictionaries(
    {
        "sku": st.none() | _TEXT,
        "quantity": st.none() | st.integers(-2, 3),
        "unit_price": st.none() | st.decimals("-5", "5", places=2, allow_nan=False),
    }
)
_AMOUNTS = {
    "decimal": st.decimals("-1000", "1000", places=2, allow_nan=False),
    "float": st.floats(allow_nan=False, allow_infinity=True, width=64),  # (NaN != NaN)
    "int": st.integers(-(10**18), 10**18),
    "text": _TEXT | st.sampled_from(["12.5", "1e30", "x"]),
}


@st.composite
def struct_data(draw: st.DrawFn) -> list[Any]:
    """The rows of a data column of one schema: each a mapping or None."""
    amount = _AMOUNTS[draw(st.sampled_from(sorted(_AMOUNTS)))]
    fields = draw(st.sets(st.sampled_from(["amount", "items", "note", "store"]), min_size=1))
    row = st.fixed_dictionaries(
        {
            name: {
                "amount": st.none() | amount,
                "items": st.none() | st.lists(st.none() | _ITEM, max_size=3),
                "note": st.none() | _TEXT,
                "store": st.none() | st.sampled_from(["S1", "S2"]),
            }[name]
            for name in sorted(fields)
        }
    )
    return draw(st.lists(st.none() | row, min_size=1, max_size=12))


def _struct_series(rows: list[Any]) -> Any:
    pl = pytest.importorskip("polars")
    series = pl.Series("data", rows, strict=False)
    assume(isinstance(series.dtype, pl.Struct))  # (every row None: no schema to read)
    return series


@settings(max_examples=200)
def nulls_absent(value: Any) -> Any:
    """A row polars gives back, with the keys it filled with null left out
    (a struct has every field in every row; null reads as absent)."""
    if isinstance(value, dict):
        return {k: nulls_absent(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [nulls_absent(v) for v in value]
    return value


@given(struct_data())
def test_a_struct_data_column_freezes_as_its_rows_do(rows: list[Any]) -> None:
    """Field by field, a Struct column gives each row the frozen data that
    ``freeze_data`` makes of the row polars gives back, of the same types
    (``repr`` tells ``Decimal('1.0')`` from ``Decimal('1.00')``, 1 from
    1.0); clean (no walk at the door) only when every row of the column
    is."""
    series = _struct_series(rows)
    got = _frozen_struct(series)
    assert got is not None
    want = [None if row is None else freeze_data(nulls_absent(row)) for row in series.to_list()]
    assert repr(got) == repr(want)
    # Clean (trusted unwalked at the door) only where freeze_data says so,
    # and everywhere when it does for every row.
    cleans = [(g._clean, w._clean) for g, w in zip(got, want, strict=True) if w is not None]
    assert all(w for g, w in cleans if g)
    assert all(g for g, _ in cleans) == all(w for _, w in cleans)


@settings(max_examples=100)
@given(struct_data(), st.lists(st.sampled_from(["purchase", "visit"]), min_size=12, max_size=12))
def test_record_table_with_struct_data_equals_one_record_per_event(
    rows: list[Any], kinds: list[str]
) -> None:
    """A polars frame whose ``data`` is a Struct column (valid and invalid
    purchases, non-ASCII and NUL text) records what one ``record`` per
    event of its rows records, with the same refusals."""
    pl = pytest.importorskip("polars")
    series = _struct_series(rows)
    n = len(series)
    frame = pl.DataFrame(
        {
            "type": kinds[:n],
            "at": pl.Series(
                [T0 + timedelta(hours=i) for i in range(n)], dtype=pl.Datetime("us", "UTC")
            ),
            "customer_id": ["c1"] * n,
            "data": series,
        }
    )
    bulk, reference = graph(False), graph(False)
    for g in (bulk, reference):
        g.register("c1", at=T0)
    events = [
        Event(kinds[i], at=T0 + timedelta(hours=i), customer_id="c1", data=nulls_absent(row) or {})
        for i, row in enumerate(series.to_list())
    ]
    refused: list[tuple[int, Exception]] = []
    answer = bulk.record_table(frame, refused=refused)
    expected, expected_refused = record_one_by_one(reference, events)
    assert answer == expected
    assert [str(x) for _, x in refused] == [str(x) for _, x in expected_refused]
    assert bulk.refusals() == reference.refusals()
    assert outcome(bulk) == outcome(reference)
