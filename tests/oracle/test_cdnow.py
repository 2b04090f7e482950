"""Oracle on the CDNOW sample (6,919 purchase lines of 2,357 customers,
January 1997 – June 1998): the indicators and Total_RFM, recomputed
in plain Python straight from the file and compared with ``g.kpis(as_of)``.

Columns (whitespace separated): customer id, an unused id, date (YYYYMMDD),
quantity, amount in USD.  Every line is one ticket, even when a customer has
several lines on one date.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from identity_graph import Event, IdentityGraph

# Every test here runs once per indicator engine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("each_kpis_engine")

DATA = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
AS_OF = datetime(1998, 7, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Line:
    n: int
    customer: str
    at: datetime
    quantity: int
    amount: Decimal


def _lines() -> list[Line]:
    lines = []
    with DATA.open() as handle:
        for n, text in enumerate(handle, start=1):
            customer, _unused, day, quantity, amount = text.split()
            at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
            lines.append(Line(n, customer, at, int(quantity), Decimal(amount)))
    return lines


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return _lines()


@pytest.fixture(scope="module")
def actual(lines: list[Line]) -> dict[Any, dict[str, Any]]:
    g = IdentityGraph()
    for customer in dict.fromkeys(line.customer for line in lines):
        g.register(customer, at=datetime(1996, 12, 1, tzinfo=UTC))
    for line in lines:
        event = Event(
            "purchase",
            at=line.at,
            customer_id=line.customer,
            id=f"line-{line.n}",
            data={"amount": line.amount, "items": [{"sku": "cd", "quantity": line.quantity}]},
        )
        assert g.record(event)
    result: dict[Any, dict[str, Any]] = g.kpis(AS_OF)
    return result


def test_sanity_of_the_file(lines: list[Line]) -> None:
    assert len(lines) == 6919
    assert len({line.customer for line in lines}) == 2357
    assert sum(line.amount for line in lines) == Decimal("244091.94")
    assert sum(line.quantity for line in lines) == 16479
    assert max(line.at for line in lines) < AS_OF


def test_totals(lines: list[Line], actual: dict[Any, dict[str, Any]]) -> None:
    assert len(actual) == 2357
    assert set(actual) == {line.customer for line in lines}
    assert sum(row["Total_Purchases"] for row in actual.values()) == 6919
    assert sum(row["Total_Items"] for row in actual.values()) == 16479
    total = sum((row["Total_Value"] for row in actual.values()), Decimal(0))
    assert type(total) is Decimal
    assert total == sum((line.amount for line in lines), Decimal(0)) == Decimal("244091.94")


def test_per_customer(lines: list[Line], actual: dict[Any, dict[str, Any]]) -> None:
    by_customer: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_customer[line.customer].append(line)
    start_180 = AS_OF - timedelta(days=180)
    for customer, own in by_customer.items():
        row = actual[customer]
        first = min(line.at for line in own)
        last = max(line.at for line in own)
        assert row["Total_Value"] == sum((line.amount for line in own), Decimal(0)), customer
        assert type(row["Total_Value"]) is Decimal
        assert row["Total_Purchases"] == len(own), customer
        assert row["Total_Items"] == sum(line.quantity for line in own), customer
        assert row["Days_Since_First_Purchase"] == (AS_OF - first).days, customer
        assert row["Days_Since_Last_Purchase"] == (AS_OF - last).days, customer
        assert row["First_Purchase_Date"] == first
        recent = [line.amount for line in own if start_180 < line.at <= AS_OF]
        assert row["Value_180_Days"] == sum(recent, Decimal(0)), customer
        assert row["Purchases_180_Days"] == len(recent), customer


def test_total_rfm(lines: list[Line], actual: dict[Any, dict[str, Any]]) -> None:
    recency: dict[str, int] = {}
    frequency: dict[str, int] = defaultdict(int)
    monetary: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        days = (AS_OF - line.at).days
        recency[line.customer] = min(days, recency.get(line.customer, days))
        frequency[line.customer] += 1
        monetary[line.customer] += line.amount
    n = len(recency)
    # Counting by sorted lists (2,357² pairs would be slow): #{x' < x} etc.
    r_sorted = sorted(recency.values())
    f_sorted = sorted(frequency.values())
    m_sorted = sorted(monetary.values())

    def smaller(values: list[Any], x: Any) -> int:
        return sum(1 for v in values if v < x)

    # Precompute the counts per distinct value, then check every customer.
    r_greater = {r: sum(1 for v in r_sorted if v > r) for r in set(r_sorted)}
    f_smaller = {f: smaller(f_sorted, f) for f in set(f_sorted)}
    m_smaller = {m: smaller(m_sorted, m) for m in set(m_sorted)}
    codes = []
    for customer in recency:
        big_r = 1 + 5 * r_greater[recency[customer]] // n
        big_f = 1 + 5 * f_smaller[frequency[customer]] // n
        big_m = 1 + 5 * m_smaller[monetary[customer]] // n
        code = f"{big_r}{big_f}{big_m}"
        codes.append(code)
        assert actual[customer]["Total_RFM"] == code, customer
    # 1,205 customers (over 2/5 of them) bought once: F = 1 for exactly them,
    # and two purchases already beat 1,205 of 2,357, so nobody has F = 2.
    once = sum(1 for f in frequency.values() if f == 1)
    assert once == 1205
    assert sum(1 for code in codes if code[1] == "1") == once
    assert {code[1] for code in codes} == {"1", "3", "4", "5"}
