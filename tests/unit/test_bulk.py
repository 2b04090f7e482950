"""The table checks of ``record_table`` (``identity_graph.bulk``): errors in the
table itself name the column and the rule before anything is recorded; a row
that cannot be an event is refused naming its row; polars columns are read
as the per-event path would read their values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from identity_graph import DuplicateEvent, Event, IdentityGraph, Link, LinkType
from identity_graph.testing import reachable_strings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def graph(**config: Any) -> IdentityGraph:
    return IdentityGraph(register_unknown=True, **config)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"type": ["visit"], "at": [T0], "emial": ["a@b.co"]}, ["'emial'", "email", "phone"]),
        ({"type": ["visit"], "at": [T0], "crm_id": ["K1"]}, ["'crm_id'", "link_types"]),
        ({"at": [T0]}, ["no 'type' column", "type and a time"]),
        ({"type": ["visit"]}, ["no 'at' column"]),
        (
            {"type": ["visit", "visit"], "at": [T0], "customer_id": ["c1", "c2"]},
            ["column 'at' has 1 values", "'type' has 2", "one value per row"],
        ),
        ({"type": "visit", "at": [T0]}, ["column 'type' is a str", "one per row"]),
        ({"type": ["visit"], "at": [T0], 3: ["x"]}, ["column name 3"]),
    ],
)
def test_a_faulty_table_raises_naming_the_column_and_the_rule(
    table: dict[Any, Any], words: list[str]
) -> None:
    g = graph()
    with pytest.raises(ValueError) as raised:
        g.record_table(table)
    for word in words:
        assert word in str(raised.value)
    assert list(g.journal()) == [] and g.refusals() == []  # nothing was recorded


def test_something_that_is_not_a_table_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="list is not a table"):
        graph().record_table([["visit", T0]])


def test_configured_link_names_are_columns() -> None:
    g = graph(link_types={"crm_id": LinkType()})
    assert g.record_table({"type": ["visit"], "at": [T0], "crm_id": [" K1 "]}) == (1, 0)
    (event,) = g.events(Link("crm_id", "K1"))
    assert event.links == (Link("crm_id", "K1"),)


def test_a_row_that_cannot_be_an_event_is_refused_naming_its_row() -> None:
    g = graph()
    refused: list[tuple[int, Exception]] = []
    table = {
        "type": ["visit", "visit", "visit", "visit"],
        "at": [T0, T0, T0, datetime(2024, 1, 1)],
        "customer_id": ["c1", "c2", "c3", "c4"],
        "email": ["a@example.com", 5, None, None],
        "data": [None, {"x": {1}}, "text", None],
    }
    assert g.record_table(table, refused=refused) == (1, 0)
    # The link is built before the data is frozen, as Event(...) does.
    assert [(i, type(e).__name__) for i, e in refused] == [
        (1, "InvalidLink"),
        (2, "InvalidEvent"),
        (3, "InvalidTime"),
    ]
    assert "email value 5 is an int" in str(refused[0][1])
    assert "is not a mapping" in str(refused[1][1])
    assert "naive" in str(refused[2][1])
    rows = [r for r in g.refusals() if "row" in r.args]
    assert [(r.args, r.at) for r in rows] == [({"row": 1}, T0), ({"row": 2}, T0)]


def test_empty_link_cells_and_missing_data_mean_none() -> None:
    g = graph()
    table = {
        "type": ["visit"],
        "at": [T0],
        "customer_id": ["c1"],
        "email": [""],
        "phone": [None],
        "data": [None],
        "id": ["v1"],
    }
    assert g.record_table(table) == (1, 0)
    assert g.events("c1") == [Event("visit", at=T0, customer_id="c1", id="v1")]


def test_an_arrow_like_table_is_read_through_to_pydict() -> None:
    class Table:
        def to_pydict(self) -> dict[str, list[Any]]:
            return {"type": ["visit"], "at": [T0], "customer_id": ["c1"]}

    g = graph()
    assert g.record_table(Table()) == (1, 0)
    assert len(g.events("c1")) == 1


def test_a_polars_frame_reads_text_times_and_struct_data_as_their_values() -> None:
    pl = pytest.importorskip("polars")
    helsinki = [
        (T0 + timedelta(hours=h)).astimezone(timezone(timedelta(hours=2))) for h in range(3)
    ]
    frame = pl.DataFrame(
        {
            "type": ["purchase", "purchase", "visit"],
            "at": pl.Series([t.astimezone(UTC) for t in helsinki]).dt.convert_time_zone(
                "Europe/Helsinki"
            ),
            "customer_id": ["c1", "c1", None],
            "loyalty_card": [None, "card-0001", "card-0001"],
            "data": [
                {"amount": Decimal("9.50"), "store": "S1"},
                {"amount": Decimal("1.00"), "store": None},
                None,
            ],
            "id": ["p1", "p2", None],
        }
    )
    g = graph()
    refused: list[tuple[int, Exception]] = []
    assert g.record_table(frame, refused=refused) == (3, 0)
    assert refused == []
    reference = graph()
    rows = frame.to_dicts()
    reference.record_many(
        Event(
            row["type"],
            at=row["at"],
            customer_id=row["customer_id"],
            links=()
            if row["loyalty_card"] is None
            else (Link("loyalty_card", row["loyalty_card"]),),
            # A struct's null field is an absent key.
            data={k: v for k, v in (row["data"] or {}).items() if v is not None},
            id=row["id"],
        )
        for row in rows
    )
    assert g._ledger.by_id() == reference._ledger.by_id()
    # The times were converted to UTC in polars: equal instants, kept in UTC.
    for event in g._ledger.by_id().values():
        assert event.at.tzinfo is UTC
    assert list(g.journal()) == list(reference.journal())


def test_a_naive_polars_time_column_is_refused_row_by_row() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"type": ["visit"], "at": [datetime(2024, 1, 1)], "customer_id": ["c"]})
    refused: list[tuple[int, Exception]] = []
    assert graph().record_table(frame, refused=refused) == (0, 0)
    assert [i for i, _ in refused] == [0] and "naive" in str(refused[0][1])


# ----------------------------------------------- found by review and trial


def test_a_table_recorded_again_into_a_reopened_store_keeps_the_texts(tmp_path: Path) -> None:
    """A re-import looked each known id up through the decoding mapping,
    which kept every stored event decoded (the memory a store's texts save)."""
    n = 50
    table = {
        "type": ["purchase"] * n,
        "at": [T0 + timedelta(minutes=i) for i in range(n)],
        "customer_id": [f"c{i % 5}" for i in range(n)],
        "data": [{"amount": Decimal("1.50"), "items": [{"sku": "s", "quantity": 1}]}] * n,
        "id": [f"e{i}" for i in range(n)],
    }
    path = tmp_path / "g.db"
    with IdentityGraph.open(path, register_unknown=True) as g:
        assert g.record_table(table) == (n, 0)
    with IdentityGraph.open(path, register_unknown=True) as g:
        assert g.record_table(table) == (0, n)
        kept = g._ledger.by_id()
        assert [type(g._ledger._events[f"e{i}"]) for i in range(n)] == [str] * n
        assert len(kept) == n


def test_an_erased_value_in_a_refused_row_leaves_the_link_cache(tmp_path: Path) -> None:
    """A row refused before its links were looked at again (a broken row, an
    erased customer) left the erased value's raw spelling in the cache."""
    for table in (
        {"type": ["visit"], "at": [T0], "customer_id": ["bob"], "email": ["Ann@Secret.com"]}
        | {"phone": [5]},
        {"type": ["visit"], "at": [T0], "customer_id": ["ann"], "email": ["Ann@Secret.com"]},
    ):
        g = IdentityGraph(clock=lambda: T0, secret=b"s" * 32)
        g.link("ann", Link("email", "Ann@Secret.com"), at=T0)
        g.register("bob", at=T0)
        g.forget("ann")
        refused: list[tuple[int, Exception]] = []
        assert g.record_table(table, refused=refused) == (0, 0)
        assert [row for row, _error in refused] == [0]
        assert [text for text in reachable_strings(g) if "secret" in text.lower()] == []


def test_a_time_of_a_repeated_hour_in_data_is_the_same_content_when_read_back(
    tmp_path: Path,
) -> None:
    """Data holding the second 03:30 of the night Helsinki's clocks go back
    came back from the store with a fixed offset, which ``==`` never finds
    equal to it: the same event again was a DuplicateEvent."""
    fold = datetime(2024, 10, 27, 3, 30, tzinfo=ZoneInfo("Europe/Helsinki"), fold=1)
    event = Event("visit", at=T0, customer_id="c1", data={"when": fold}, id="v1")
    row = {"type": ["visit"], "at": [T0], "customer_id": ["c1"], "data": [{"when": fold}]}
    path = tmp_path / "g.db"
    with IdentityGraph.open(path) as g:
        g.register("c1", at=T0)
        g.record(event)
    with IdentityGraph.open(path) as g:
        assert g.record_table(row | {"id": ["v1"]}) == (0, 1)
        assert g.events("c1")[0].data["when"].astimezone(UTC) == fold.astimezone(UTC)
        assert g.record_many([event]) == (0, 1)
        other = attrs.evolve(event, data={"when": fold.replace(fold=0)})
        with pytest.raises(DuplicateEvent):
            g.record(other)


@pytest.mark.parametrize("call", ["record_table", "record_many", "link_table", "merge_table"])
def test_a_refused_argument_that_is_no_list_is_refused_before_any_write(call: str) -> None:
    g = graph()
    tables: dict[str, Any] = {
        "record_table": {"type": ["visit"], "at": [T0], "customer_id": ["a"]},
        "record_many": [Event("visit", at=T0, customer_id="a")],
        "link_table": {"customer_id": ["a"], "email": ["a@example.com"]},
        "merge_table": {"a": ["a"], "b": ["b"]},
    }
    with pytest.raises(TypeError, match=r"refused=set\(\) must be a list"):
        getattr(g, call)(tables[call], refused=set())
    assert g.customers() == [] and len(g.state.journal) == 0


@pytest.mark.parametrize("with_time", [False, True])
def test_a_struct_column_reads_a_missing_key_as_absent(with_time: bool) -> None:
    """polars fills a key some rows lack with null: the DataFrame's rows were
    other events than the same rows as lists (a purchase counted twice)."""
    pl = pytest.importorskip("polars")
    first: dict[str, Any] = {"amount": "10", "store": "HEL"}
    first["items"] = [{"sku": "a", "brand": "X"}, {"sku": "b"}]
    if with_time:  # a field type the column-by-column reading leaves to the rows
        first["when"] = T0
    rows = {
        "type": ["purchase"] * 2,
        "at": [T0, T0],
        "customer_id": ["ann"] * 2,
        "data": [first, {"amount": "5"}],
    }
    g = graph()
    assert g.record_table(rows) == (2, 0)
    assert g.record_table(pl.DataFrame(rows)) == (0, 2)
    assert [dict(event.data) for event in g.events("ann")] != []
    assert len(g.events("ann")) == 2
