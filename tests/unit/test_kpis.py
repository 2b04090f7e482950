"""Unit tests of the indicators: names, RFM segments, attribution
through merges, splits and relinks, the CSV file, and money without floats."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from identity_graph import Event, IdentityGraph, InvalidEvent, Link
from identity_graph import kpis as kpis_module
from identity_graph.kpis import GROUPS, INDICATORS, rfm_group, rfm_segment, write_csv

# Every test here runs once per indicator engine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("each_kpis_engine")

T0 = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 12, 31, tzinfo=UTC)
CARD = Link("loyalty_card", "7001 2345")


def _day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def _buy(g: IdentityGraph, who: str | Link, at: datetime, event_id: str, **data: Any) -> None:
    data.setdefault("amount", Decimal("10.00"))
    if isinstance(who, Link):
        event = Event("purchase", at=at, links=(who,), id=event_id, data=data)
    else:
        event = Event("purchase", at=at, customer_id=who, id=event_id, data=data)
    assert g.record(event)


# ------------------------------------------------------------------ names


def _spec_names() -> list[str]:
    """The indicator names, written out from the indicators document's wording."""
    names = [
        "First_Purchase_Date",
        "Last_Purchase_Date",
        "Days_Since_First_Purchase",
        "Days_Since_Last_Purchase",
        "Last_Purchase_Amount",
    ]
    measures = [
        "Items",
        "Brands",
        "Categories",
        "Purchases",
        "Value",
        "Average_Value",
        "RFM",
        "Promo_Codes",
        "Stores",
    ]
    for measure in measures:
        names += [f"{measure}_{w}_Days" for w in (30, 60, 90, 180, 360)]
        names.append(f"Total_{measure}")
    for last in [
        "Payment_Methods",
        "Shipping_Methods",
        "Items",
        "Brands",
        "Categories",
        "Sellers",
        "Stores",
        "Promo_Codes",
    ]:
        names.append(f"Last_Purchase_{last}")
    names += ["RFM_Group", "RFM_Segment"]
    return names


def test_indicator_names_are_exactly_those_of_the_spec() -> None:
    names = [indicator.name for indicator in INDICATORS]
    assert len(names) == 69
    assert len(set(names)) == 69
    assert set(names) == set(_spec_names())
    assert "Items_30_Days" in names and "Total_Items" in names


def test_every_row_has_every_indicator_in_order() -> None:
    g = IdentityGraph()
    g.register("c1", at=T0)
    g.register("c2", at=T0)
    _buy(g, "c1", _day(10), "T-1")
    result = g.kpis(AS_OF)
    names = [indicator.name for indicator in INDICATORS]
    assert set(result) == {"c1", "c2"}
    for row in result.values():
        assert list(row) == names
    empty = result["c2"]
    assert empty["Total_Purchases"] == 0 and empty["Total_Items"] == 0
    assert empty["Total_Value"] == Decimal(0) and type(empty["Total_Value"]) is Decimal
    assert empty["Average_Value_30_Days"] is None and empty["Total_RFM"] is None
    assert empty["First_Purchase_Date"] is None and empty["RFM_Segment"] is None
    assert empty["Last_Purchase_Stores"] == () and empty["Total_Promo_Codes"] == ()


# ------------------------------------------------------------------ RFM segments

SPEC_MAP = [
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
PAIRS = [f"{r}{f}" for r in "12345" for f in "12345"]


@pytest.mark.parametrize("pair", PAIRS)
def test_rfm_segment_of_every_pair(pair: str) -> None:
    expected = [name for pattern, name in SPEC_MAP if re.fullmatch(pattern, pair)]
    assert len(expected) == 1  # the map covers every pair exactly once
    for m in "15":
        assert rfm_segment(pair + m) == expected[0]
        assert rfm_group(pair + m) == GROUPS[expected[0]]


def test_rfm_segment_of_none_and_groups() -> None:
    assert rfm_segment(None) is None and rfm_group(None) is None
    assert set(GROUPS) == {name for _, name in SPEC_MAP}
    assert set(GROUPS.values()) == {"Best", "Promising", "Needs Attention", "At Risk", "Lost"}


def test_segment_and_group_come_from_total_rfm() -> None:
    g = IdentityGraph()
    for i in range(5):
        g.register(f"c{i}", at=T0)
        for j in range(i + 1):  # c4 buys most, most recently
            _buy(g, f"c{i}", _day(100 + 10 * i + j), f"T-{i}-{j}")
    result = g.kpis(AS_OF)
    assert result["c4"]["Total_RFM"] == "555"
    assert result["c0"]["Total_RFM"] == "111"
    for row in result.values():
        assert row["RFM_Segment"] == rfm_segment(row["Total_RFM"])
        assert row["RFM_Group"] == GROUPS[row["RFM_Segment"]]
    assert result["c4"]["RFM_Segment"] == "Champions"
    assert result["c0"]["RFM_Segment"] == "Hibernating"


# ------------------------------------------------------------------ attribution


def _two_buyers() -> IdentityGraph:
    g = IdentityGraph()
    g.register("a", at=T0)
    g.register("b", at=T0)
    g.register("z", at=T0)
    _buy(g, "a", _day(300), "A-1", amount=Decimal("5.00"), store="S1", promo_codes=["P1"])
    _buy(g, "a", _day(340), "A-2", amount=Decimal("7.50"), store="S2")
    _buy(
        g,
        "b",
        _day(350),
        "B-1",
        amount=Decimal("100"),
        store="S3",
        items=[{"sku": "x", "brand": "Acme", "quantity": 3}],
        payment_methods=["cash"],
    )
    _buy(g, "z", _day(200), "Z-1", amount=Decimal("1"))
    return g


def test_merge_sees_the_union_and_split_restores_each_part() -> None:
    g = _two_buyers()
    before = g.kpis(AS_OF)
    merge_id = g.merge("a", "b", reason="same person", at=AS_OF)
    assert merge_id is not None
    merged = g.kpis(AS_OF)
    assert set(merged) == {"a", "z"}  # b is in a's profile now
    row = merged["a"]
    assert row["Total_Purchases"] == 3
    assert row["Total_Value"] == Decimal("112.50")
    assert row["Total_Items"] == 3 and row["Total_Brands"] == 1
    assert row["Total_Stores"] == ("S1", "S2", "S3")
    assert row["Total_Promo_Codes"] == ("P1",)
    assert row["First_Purchase_Date"] == _day(300)
    assert row["Last_Purchase_Date"] == _day(350)
    assert row["Last_Purchase_Payment_Methods"] == ("cash",)
    assert g.kpis(AS_OF, ref="b") == row
    g.split(merge_id)
    assert g.kpis(AS_OF) == before
    assert before["a"]["Total_Value"] == Decimal("12.50")
    assert before["b"]["Total_Value"] == Decimal("100")


def test_card_relink_moves_later_purchases() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    g.register("b", at=T0)
    _buy(g, CARD, _day(5), "K-0", amount=Decimal("1"))  # before anybody owns it
    g.link("a", CARD, at=_day(10))
    _buy(g, CARD, _day(20), "K-1", amount=Decimal("2"))
    _buy(g, CARD, _day(40), "K-2", amount=Decimal("4"), store="S9")
    before = g.kpis(AS_OF)
    assert before["a"]["Total_Value"] == Decimal("7")  # the anonymous span goes to a
    assert before["b"]["Total_Purchases"] == 0
    g.relink(CARD, to="b", at=_day(30))
    after = g.kpis(AS_OF)
    assert after["a"]["Total_Value"] == Decimal("3")
    assert after["a"]["Last_Purchase_Date"] == _day(20)
    assert after["b"]["Total_Value"] == Decimal("4")
    assert after["b"]["Last_Purchase_Stores"] == ("S9",)
    assert after["b"]["First_Purchase_Date"] == _day(40)
    assert g.kpis(AS_OF, ref=CARD) == after["b"]


def test_anonymous_card_has_a_row_only_with_a_purchase() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    _buy(g, Link("loyalty_card", "5555-0001"), _day(100), "X-1")
    _buy(g, Link("loyalty_card", "5555-0002"), AS_OF + timedelta(days=1), "X-2")  # after as_of
    result = g.kpis(AS_OF)
    assert set(result) == {"a", Link("loyalty_card", "55550001")}
    assert result[Link("loyalty_card", "55550001")]["Total_Purchases"] == 1


def test_only_purchase_events_count() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    _buy(g, "a", _day(100), "P-1")
    g.record(Event("call", at=_day(101), customer_id="a", id="C-1", data={"amount": 99}))
    row = g.kpis(AS_OF, ref="a")
    assert row["Total_Purchases"] == 1 and row["Total_Value"] == Decimal("10.00")


def test_ties_on_time_go_to_the_larger_event_id() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    # As text "T-2" > "T-10"; "T-2" is the latest.
    _buy(g, "a", _day(100), "T-2", amount=Decimal("2"), store="TWO")
    _buy(g, "a", _day(100), "T-10", amount=Decimal("10"), store="TEN")
    row = g.kpis(AS_OF, ref="a")
    assert row["Last_Purchase_Amount"] == Decimal("2")
    assert row["Last_Purchase_Stores"] == ("TWO",)


# ------------------------------------------------------------------ money


def test_float_amounts_without_float_arithmetic() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    for i in range(3):
        _buy(g, "a", _day(100 + i), f"F-{i}", amount=0.1)
    items = [{"unit_price": 19.99, "quantity": 3}]  # no amount: 3 × 19.99
    g.record(Event("purchase", at=_day(110), customer_id="a", id="F-9", data={"items": items}))
    row = g.kpis(AS_OF, ref="a")
    assert 0.1 + 0.1 + 0.1 != 0.3  # what float arithmetic would get wrong
    assert type(row["Total_Value"]) is Decimal
    assert row["Total_Value"] == Decimal("0.3") + Decimal("59.97")
    assert row["Last_Purchase_Amount"] == Decimal("59.97")
    assert row["Total_Average_Value"] == Decimal("60.27") / 4
    assert type(row["Total_Average_Value"]) is Decimal


def test_missing_amount_is_quantity_times_unit_price() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    items = [
        {"sku": "x", "quantity": 3, "unit_price": Decimal("2.50")},
        {"sku": "y", "unit_price": Decimal("1.25")},  # quantity defaults to 1
        {"sku": "z", "quantity": 2, "unit_price": 4},
    ]
    g.record(Event("purchase", at=_day(100), customer_id="a", id="M-1", data={"items": items}))
    row = g.kpis(AS_OF, ref="a")
    assert row["Total_Value"] == Decimal("16.75")
    assert type(row["Total_Value"]) is Decimal
    assert row["Total_Items"] == 6
    assert row["Last_Purchase_Items"] == ("x", "y", "z")


def test_naive_as_of_is_refused() -> None:
    g = IdentityGraph()
    g.register("a", at=T0)
    with pytest.raises(ValueError):
        g.kpis(datetime(2024, 12, 31))
    with pytest.raises(ValueError):
        g.kpis(datetime(2024, 12, 31), ref="a")


# ------------------------------------------------------------------ CSV


def test_write_csv(tmp_path: Path) -> None:
    g = IdentityGraph()
    g.register("b", at=T0)
    g.register("a", at=T0)
    g.register("=HYPERLINK(1)", at=T0)
    g.register("quiet", at=T0)
    _buy(
        g,
        "a",
        _day(360),
        "A-1",
        amount=Decimal("12.50"),
        store="=cmd|' /C calc'!A0",
        promo_codes=["@evil", "+SUM(1)", "PLAIN"],
        payment_methods=["cash", "card"],
    )
    _buy(g, "b", _day(300), "B-1", amount=Decimal("-5.00"), store="-x")  # a refund
    _buy(g, "=HYPERLINK(1)", _day(300), "H-1")
    _buy(g, Link("loyalty_card", "8888 0001"), _day(200), "K-1")
    result = g.kpis(AS_OF)
    path = tmp_path / "kpis.csv"
    assert write_csv(result, path) == 5
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = [indicator.name for indicator in INDICATORS]
    assert rows[0] == ["Profile_ID", *names]
    assert len(rows) == 6 and all(len(row) == 70 for row in rows)
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    # Sorted by profile id (anonymous profiles by their text); the quote is
    # only a cell's protection, not part of the order.
    assert [row[0] for row in rows[1:]] == [
        "'=HYPERLINK(1)",
        "a",
        "b",
        "loyalty_card:88880001",
        "quiet",
    ]
    a = by_id["a"]
    assert a["Total_Stores"] == "'=cmd|' /C calc'!A0"
    assert a["Total_Promo_Codes"] == "'+SUM(1)|@evil|PLAIN"
    assert a["Last_Purchase_Payment_Methods"] == "card|cash"
    assert a["Total_Value"] == "12.50"
    assert a["Last_Purchase_Date"] == _day(360).isoformat()
    b = by_id["b"]
    assert b["Total_Value"] == "-5.00"  # a negative number is left alone
    assert b["Last_Purchase_Amount"] == "-5.00"
    assert b["Total_Stores"] == "'-x"
    quiet = by_id["quiet"]
    assert quiet["Average_Value_30_Days"] == ""  # None
    assert quiet["Total_RFM"] == "" and quiet["First_Purchase_Date"] == ""
    assert quiet["Total_Stores"] == ""  # an empty list
    assert quiet["Total_Purchases"] == "0" and quiet["Total_Value"] == "0"


def test_module_lists_its_windows() -> None:
    assert kpis_module.WINDOWS == (30, 60, 90, 180, 360)


# --- purchases are checked when recorded, so kpis() never breaks on one ------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "abc"}, r"amount 'abc' is not a finite amount"),
        ({"amount": Decimal("NaN")}, "amount NaN is not a finite amount"),
        ({"amount": True}, r"amount True is not a finite amount"),
        ({"items": [{"quantity": 2.5}]}, r"items\[0\]\.quantity 2\.5 must be a whole number"),
        ({"items": [{"quantity": None}]}, r"items\[0\]\.quantity None must be a whole number"),
        ({"items": [{"quantity": -1}]}, r"items\[0\]\.quantity -1 must be a whole number >= 0"),
        ({"items": [{"unit_price": "x"}]}, r"items\[0\]\.unit_price 'x' is not a finite amount"),
        ({"items": "abc"}, r"items 'abc' must be a list of mappings"),
    ],
)
def test_malformed_purchase_refused_when_recorded(data: dict[str, object], message: str) -> None:
    g = IdentityGraph()
    g.register("a", at=datetime(2024, 1, 1, tzinfo=UTC))
    bad = Event("purchase", at=datetime(2024, 1, 2, tzinfo=UTC), customer_id="a", id="x", data=data)
    with pytest.raises(InvalidEvent, match=message):
        g.record(bad)
    good = Event(
        "purchase",
        at=datetime(2024, 1, 3, tzinfo=UTC),
        customer_id="a",
        id="y",
        data={"amount": Decimal("5"), "items": [{"quantity": 2.0}, {"quantity": "3"}]},
    )
    assert g.record_many([bad, good]) == (1, 0)
    row = g.kpis(datetime(2024, 2, 1, tzinfo=UTC), ref="a")
    assert (row["Total_Purchases"], row["Total_Items"], row["Total_Value"]) == (1, 5, Decimal(5))


@pytest.mark.parametrize("text", ["-Infinity", "+inf", "-1_000", "\t=cmd", "\r=cmd", "-NaN"])
def test_csv_quotes_every_cell_a_spreadsheet_might_evaluate(text: str, tmp_path: Path) -> None:
    g = IdentityGraph()
    g.register("a", at=datetime(2024, 1, 1, tzinfo=UTC))
    g.record(
        Event(
            "purchase",
            at=datetime(2024, 1, 2, tzinfo=UTC),
            customer_id="a",
            id="T-1",
            data={"amount": Decimal("-5.00"), "store": text},
        )
    )
    path = tmp_path / "k.csv"
    write_csv(g.kpis(datetime(2024, 2, 1, tzinfo=UTC)), path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert rows[1][header.index("Total_Stores")] == "'" + text
    assert rows[1][header.index("Total_Value")] == "-5.00"  # a plain number stays a number


def test_the_engine_of_each_run_reaches_a_stored_graph_too(each_kpis_engine: str) -> None:
    """A stored graph is an IdentityGraph holding a store session, not a
    subclass re-wrapping kpis(): patching the class reaches it as well."""
    with IdentityGraph.open("memory:") as g:
        _buy(g, CARD, _day(1), "T-1")
        computed = g.kpis(AS_OF)
        assert (type(computed) is dict) == (each_kpis_engine == "python")
        assert computed[Link(*g.normalize(CARD).key)]["Total_Purchases"] == 1
