"""How a stored event is written: the compact row of ``codec.dumps_event``.

``dumps_event`` writes an event with the C JSON encoder, and falls back to
the general (slower, type-tagged) codec, marked by a leading ``T``, only for
data whose strings hold a NUL character (codec notes).  Bulk ingest into a
store (``record_many``, benchmarks/stores.py) spends most of its time here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from identity_graph import Event, codec

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def purchase(**data: object) -> Event:
    return Event("purchase", at=T0, customer_id="c1", data=data, id="t1")


def test_plain_data_takes_the_fast_path_and_round_trips() -> None:
    event = purchase(amount="19.90", items=[{"sku": "A", "quantity": 1}])
    text = codec.dumps_event(event)
    assert not text.startswith("T")
    assert codec.loads_event(text) == event


def test_a_nul_in_a_string_round_trips() -> None:
    event = purchase(note="a\x00b", amount=Decimal("1.00"))
    assert codec.loads_event(codec.dumps_event(event)) == event


@pytest.mark.parametrize(
    "value", [Decimal("19.90"), date(2024, 1, 2), T0], ids=["Decimal", "date", "datetime"]
)
def test_typed_values_round_trip(value: object) -> None:
    event = purchase(amount=value, items=[{"sku": "A", "unit_price": value}])
    assert codec.loads_event(codec.dumps_event(event)) == event


@pytest.mark.parametrize(
    "value", [Decimal("19.90"), date(2024, 1, 2), T0], ids=["Decimal", "date", "datetime"]
)
def test_typed_values_take_the_fast_path(value: object) -> None:
    text = codec.dumps_event(purchase(amount=value))
    assert not text.startswith("T"), text[:60]
