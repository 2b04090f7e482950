"""The purchase columns the columnar indicator engine reads (purchases.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, InvalidEvent, Link
from identity_graph.purchases import (
    BRANDS,
    ITEMS,
    KINDS,
    PRICE_DIGITS,
    SELLERS,
    STORES,
    _unscaled,
    exact_sum,
    exact_unit_price,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.33", (2933, -2)),
        ("10.50", (1050, -2)),
        ("10", (10, 0)),
        ("-0.00", (0, -2)),
        ("-7.5", (-75, -1)),
        ("1E+2", (1, 2)),
        ("1E-7", (1, -7)),
        ("0E-9", (0, -9)),
    ],
)
def test_unscaled_keeps_the_exponent(text: str, expected: tuple[int, int]) -> None:
    """An amount is kept as ``unscaled * 10**exponent`` with its own exponent."""
    assert _unscaled(Decimal(text)) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_unscaled_is_exact(value: Decimal) -> None:
    unscaled, exponent = _unscaled(value)
    assert Decimal(f"{unscaled}E{exponent}") == value  # text: exact at any length
    assert exponent == value.as_tuple().exponent


def graph() -> IdentityGraph:
    g = IdentityGraph()
    g.register("c1", at=T)
    return g


def test_a_purchase_becomes_one_row_and_its_strings() -> None:
    g = graph()
    g.record(
        Event(
            "purchase",
            at=T + timedelta(days=1),
            customer_id="c1",
            id="T1",
            data={
                "items": [
                    {"sku": "A", "brand": "Acme", "quantity": 2, "unit_price": "1.25"},
                    {"sku": "B", "brand": "Acme", "seller": ["Mia", "Ola"], "quantity": 1},
                ],
                "store": 17,
                "seller": "Mia",
            },
        )
    )
    g.record(Event("visit", at=T, customer_id="c1", id="V1"))  # not a purchase: no row
    columns = g._ledger.purchases
    assert len(columns) == 1 and columns.exact
    assert list(columns.unscaled) == [250] and list(columns.exponent) == [-2]  # 2 x 1.25
    assert list(columns.quantity) == [3]
    assert columns.at[0] == (T + timedelta(days=1) - datetime(1970, 1, 1, tzinfo=UTC)) // (
        timedelta(microseconds=1)
    )
    found = columns.strings_of(0)
    assert found[ITEMS] == ("A", "B")
    assert found[BRANDS] == ("Acme",)  # distinct
    assert found[SELLERS] == ("Mia", "Ola")  # the ticket's and the items', distinct
    assert found[STORES] == ("17",)
    assert set(found) <= set(range(len(KINDS)))


def test_anchors_are_coded_once_and_links_listed() -> None:
    g = graph()
    card = Link("loyalty_card", "1234 5678")
    for i in range(3):
        g.record(Event("purchase", at=T, customer_id="c1", id=f"A{i}", data={"amount": 1}))
        g.record(Event("purchase", at=T, links=[card], id=f"B{i}", data={"amount": 1}))
    columns = g._ledger.purchases
    assert len(columns.anchors) == 2
    assert list(columns.anchor) == [0, 1, 0, 1, 0, 1]
    assert [columns.anchors[code] for code in columns.link_anchors] == [g._types.key(card)]


@pytest.mark.parametrize("amount", [Decimal("1E+20"), Decimal("0.0000000000000000000001")])
def test_an_amount_beyond_the_exact_range_turns_the_columns_off(amount: Decimal) -> None:
    """Recording never fails because of the columns; they stop and say why."""
    g = graph()
    g.record(Event("purchase", at=T, customer_id="c1", id="ok", data={"amount": 1}))
    assert g.record(Event("purchase", at=T, customer_id="c1", id="big", data={"amount": amount}))
    columns = g._ledger.purchases
    assert not columns.exact
    assert "big" in columns.problem and "exact range" in columns.problem
    assert len(columns) == 0  # freed
    g.record(Event("purchase", at=T, customer_id="c1", id="later", data={"amount": 2}))
    assert len(columns) == 0
    assert g.kpis(T, ref="c1")["Total_Purchases"] == 3  # the pure-Python engine answers


def test_times_in_any_zone_are_instants() -> None:
    g = graph()
    helsinki = timezone(timedelta(hours=2))
    g.record(Event("purchase", at=T.astimezone(helsinki), customer_id="c1", id="H"))
    g.record(Event("purchase", at=T, customer_id="c1", id="U"))
    columns = g._ledger.purchases
    assert columns.at[0] == columns.at[1]


def test_a_narrow_decimal_context_runs_the_pure_engine() -> None:
    """With fewer than 28 digits the pure engine rounds each addition; the
    columnar one would not, so ``auto`` runs the pure one and ``polars`` says why."""
    import decimal

    g = graph()
    for i, amount in enumerate(("0.4", "100000", "0.4")):
        g.record(Event("purchase", at=T, customer_id="c1", id=f"P{i}", data={"amount": amount}))
    with decimal.localcontext(prec=6):
        assert (
            g.kpis(T, ref="c1")["Total_Value"]
            == g.kpis(T, ref="c1", engine="python")["Total_Value"]
        )
        with pytest.raises(ValueError, match="decimal context"):
            g.kpis(T, engine="polars")


@pytest.mark.parametrize(
    "data",
    [
        {"amount": Decimal("9E+999999")},
        {"amount": 10**24},
        {"items": [{"sku": "A", "unit_price": Decimal("-1E+30")}]},
    ],
)
def test_money_beyond_any_purchase_is_refused(data: dict[str, object]) -> None:
    """Two such amounts would overflow Decimal's context in every kpis() call."""
    from identity_graph.errors import InvalidEvent

    g = graph()
    with pytest.raises(InvalidEvent, match="10\\*\\*24"):
        g.record(Event("purchase", at=T, customer_id="c1", id="X", data=data))
    g.record(Event("purchase", at=T, customer_id="c1", id="ok", data={"amount": 10**24 - 1}))
    assert g.kpis(T, ref="c1")["Total_Purchases"] == 1


# ------------------------------------------------------------------ unit prices


def _exact_digits(value: Fraction) -> int | None:
    """Significant digits of ``value`` as a finite decimal, or None if it has none."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return None
    scale = 0
    while (value * 10**scale).denominator != 1:
        scale += 1
    digits = str(abs(value.numerator * 10**scale // value.denominator)).rstrip("0")
    return max(len(digits), 1)


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**24), max_value=10**24),
    st.integers(min_value=-2, max_value=10**6) | st.sampled_from([3, 6, 7, 8, 64, 625]),
)
def test_a_unit_price_is_kept_exactly_when_the_quotient_is_exact(
    total: Decimal, quantity: int
) -> None:
    price = exact_unit_price(total, quantity)
    if quantity < 1:
        assert price is None
        return
    quotient = Fraction(total) / quantity
    digits = _exact_digits(quotient)
    kept = digits is not None and digits <= PRICE_DIGITS
    assert (price is not None) == kept
    if price is not None:
        assert Fraction(price) * quantity == Fraction(total)  # exactly, in rationals


@pytest.mark.parametrize(
    ("total", "quantity", "expected"),
    [
        ("1.00", 7, None),  # 0.142857…: was kept rounded to 28 digits
        ("10.00", 6, None),  # 1.666…: likewise
        ("10.00", 3, None),
        ("10.00", 4, Decimal("2.50")),
        ("1.00", 8, Decimal("0.125")),
        ("7.80", 2, Decimal("3.90")),
        ("3.20", 1, Decimal("3.20")),
        ("0.00", 5, Decimal("0.00")),
        ("5", 0, None),
    ],
)
def test_exact_unit_prices(total: str, quantity: int, expected: Decimal | None) -> None:
    price = exact_unit_price(Decimal(total), quantity)
    assert price == expected
    if expected is not None:
        assert str(price) == str(expected)  # the scale too: 2.50, not 2.5


_AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**24), max_value=10**24)


@given(_AMOUNTS, _AMOUNTS)
def test_a_sum_is_given_only_when_it_is_exact(a: Decimal, b: Decimal) -> None:
    """A ticket's amount is the exact sum of its lines, or there is none."""
    total = exact_sum(a, b)
    exact = Fraction(a) + Fraction(b)
    digits = _exact_digits(exact)
    assert digits is not None  # a sum of two decimals is a decimal
    assert (total is not None) == (digits <= PRICE_DIGITS)
    if total is not None:
        assert Fraction(total) == exact


@given(_AMOUNTS)
def test_a_purchase_amount_is_kept_exactly_or_refused(amount: Decimal) -> None:
    """An amount of more than 28 significant digits would be rounded by
    every sum the indicators make: it is refused when recorded."""
    g = IdentityGraph()
    g.register("c1", at=T)
    event = Event("purchase", at=T, customer_id="c1", data={"amount": amount})
    digits = _exact_digits(Fraction(amount))
    if digits is not None and digits <= PRICE_DIGITS and abs(amount) < 10**24:
        assert g.record(event) is not None
        (stored,) = g.events(g.resolve("c1"))
        assert stored.data["amount"] == amount
    else:
        with pytest.raises(InvalidEvent):
            g.record(event)


def test_trailing_zeros_are_not_significant() -> None:
    g = IdentityGraph()
    g.register("c1", at=T)
    long_zeros = Decimal("1." + "0" * 40)
    assert g.record(Event("purchase", at=T, customer_id="c1", data={"amount": long_zeros}))
    with pytest.raises(InvalidEvent, match="more than 28 significant digits"):
        g.record(
            Event(
                "purchase", at=T, customer_id="c1", data={"amount": Decimal("1." + "0" * 27 + "1")}
            )
        )


def test_a_line_total_keeps_the_money_rules() -> None:
    """The importer writes it; an integrator may too: it was not checked."""
    g = IdentityGraph()
    g.register("c1", at=T)
    item = {"sku": "A", "line_total": Decimal("1.0000000000000000000000000001")}
    with pytest.raises(InvalidEvent, match=r"items\[0\]\.line_total .* 28 significant digits"):
        g.record(Event("purchase", at=T, customer_id="c1", data={"items": [item]}))
    with pytest.raises(InvalidEvent, match=r"items\[0\]\.line_total 'NaN' is not a finite amount"):
        g.record(Event("purchase", at=T, customer_id="c1", data={"items": [{"line_total": "NaN"}]}))
