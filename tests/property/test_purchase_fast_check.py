"""The purchase check's fast path: ``purchase_plain`` may only say yes for
data the full check passes, and must say yes for the common shapes (else
the bulk paths would be slow, not wrong, but the point is lost)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph.errors import InvalidEvent
from identity_graph.events import _check_purchase_fields, freeze_data, purchase_plain

#: Every kind of value a purchase field may hold, fine or not for it.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**25), 10**25),
    st.sampled_from([-1, 0, 1, 2, 10**24 - 1, 10**24]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1E+30"), Decimal("0." + "1" * 30), Decimal("-0"), Decimal("2.50")]),
    st.floats(),
    st.sampled_from(["12.5", "x", "", "S1"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.lists(st.lists(st.just("a"), max_size=1), min_size=1, max_size=1),
    st.just({"k": "v"}),
)
ITEM_FIELDS = ["quantity", "unit_price", "line_total", "sku", "brand", "category", "seller", "x"]
FIELDS = ["amount", "seller", "payment_methods", "shipping_methods", "promo_codes", "store", "x"]


@st.composite
def purchase_data(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4))
    if draw(st.booleans()):
        item = st.dictionaries(st.sampled_from(ITEM_FIELDS), VALUES, max_size=4)
        data["items"] = draw(st.lists(item | st.sampled_from(["x", None, 3]), max_size=3) | VALUES)
    return data


@settings(max_examples=1000)
@given(purchase_data())
def test_the_fast_path_says_yes_only_to_what_the_full_check_passes(data: dict[str, Any]) -> None:
    frozen = freeze_data(data)
    if purchase_plain(frozen.as_dict()):
        _check_purchase_fields(frozen, "purchase")  # must not raise


@given(
    st.decimals("-1000", "1000", places=2, allow_nan=False) | st.integers(-(10**6), 10**6),
    st.lists(
        st.fixed_dictionaries(
            {"sku": st.sampled_from(["S1", "S2"]), "quantity": st.integers(0, 5)},
            optional={"unit_price": st.decimals("0", "100", places=2, allow_nan=False)},
        ),
        max_size=3,
    ),
)
def test_the_common_purchase_takes_the_fast_path(amount: Any, items: list[Any]) -> None:
    data = freeze_data({"amount": amount, "items": items, "store": "S", "promo_codes": ["P"]})
    assert purchase_plain(data.as_dict())
    _check_purchase_fields(data, "purchase")


def test_a_fault_the_fast_path_passes_over_is_named_by_the_full_check() -> None:
    data = freeze_data({"items": [{"sku": ["x"]}]})
    assert not purchase_plain(data.as_dict())
    try:
        _check_purchase_fields(data, "purchase")
    except InvalidEvent as error:
        assert "items[0].sku" in str(error)
    else:  # pragma: no cover
        raise AssertionError("a list as a sku was accepted")
