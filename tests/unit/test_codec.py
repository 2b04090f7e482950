"""The stores' typed JSON gives back equal values of the same types."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from identity_graph import Event, Link, codec
from identity_graph.events import same_event

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.datetimes(datetime(2, 1, 2), datetime(9998, 12, 31), timezones=st.just(UTC))
    | st.timedeltas()
    | st.builds(Link, st.sampled_from(["email", "crm_id"]), st.text(min_size=1))
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def same(a: object, b: object) -> bool:
    if type(a) is not type(b) and not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


@given(values)
def test_round_trip_keeps_values_and_types(value: object) -> None:
    assert same(codec.loads(codec.dumps(value)), value)


def test_a_mapping_proxy_comes_back_as_an_equal_mapping() -> None:
    proxy = MappingProxyType({"city": "Oulu", "born": date(1990, 5, 1)})
    assert codec.loads(codec.dumps(proxy)) == proxy


def test_an_aware_datetime_keeps_its_instant_and_offset() -> None:
    helsinki = datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=3)))
    back = codec.loads(codec.dumps(helsinki))
    assert back == helsinki and back.utcoffset() == timedelta(hours=3)


def test_an_event_round_trips() -> None:
    event = Event(
        "purchase",
        at=datetime(2024, 1, 1, tzinfo=UTC),
        customer_id="c1",
        links=(Link("email", "a@example.com"),),
        data={"amount": Decimal("9.90"), "items": [{"sku": "A", "quantity": 1}]},
        id="T-1",
    )
    assert codec.loads(codec.dumps(event)) == event


def test_an_unknown_object_is_kept_as_its_repr() -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    assert codec.loads(codec.dumps({"x": Odd()})) == {"x": "<odd>"}


event_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.datetimes(datetime(2, 1, 2), datetime(9998, 12, 31), timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(max_size=6), event_data, max_size=4),
    st.one_of(st.none(), st.text(min_size=1, max_size=8).filter(lambda s: s.strip())),
)
def test_events_round_trip_through_the_bulk_path(data: dict[str, object], customer: object) -> None:
    event = Event(
        "purchase",
        at=datetime(2024, 1, 1, tzinfo=UTC),
        customer_id=customer,  # type: ignore[arg-type]
        links=(Link("email", "a@example.com"),),
        data=data,
        id="T-1",
    )
    assert codec.loads_event(codec.dumps_event(event)) == event


def test_a_mapping_that_looks_like_a_tag_takes_the_general_path() -> None:
    event = Event(
        "visit",
        at=datetime(2024, 1, 1, tzinfo=UTC),
        customer_id="c1",
        data={"x": {"\x00n": "1.5"}, "note": "a\x00b"},
    )
    text = codec.dumps_event(event)
    assert text.startswith("T")
    assert codec.loads_event(text) == event


def test_decimals_dates_and_nuls_take_the_fast_path() -> None:
    event = Event(
        "visit",
        at=datetime(2024, 1, 1, tzinfo=UTC),
        customer_id="c1",
        data={"amount": Decimal("1.50"), "on": date(2024, 1, 2), "note": "a\x00b"},
    )
    text = codec.dumps_event(event)
    assert not text.startswith("T")
    assert codec.loads_event(text) == event
    assert codec.loads_anchor(codec.dumps_anchor(("email", "a@b"))) == ("email", "a@b")


#: Keys that spell a tag of either codec path, or of the content ids.
tag_keys = st.sampled_from(["n", "t", "m", "e", "r", "dt", "$decimal", "$$decimal", "x"])
tagged_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=4)
    | st.decimals()
    | st.dates()
    | st.datetimes(
        datetime(2, 1, 2),
        datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=3))]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(tag_keys, inner, max_size=3)
        | st.builds(lambda k, v: {k: v}, tag_keys, inner)
    ),
    max_leaves=10,
)


@given(st.dictionaries(tag_keys, tagged_data, max_size=3))
def test_event_data_reads_back_as_written_whatever_its_keys(data: dict[str, object]) -> None:
    event = Event("visit", at=datetime(2024, 1, 1, tzinfo=UTC), customer_id="c1", data=data)
    for back in (
        codec.loads_event(codec.dumps_event(event)),
        codec.loads(codec.dumps(event)),
    ):
        assert same_event(back, event)
        # Same instants *and* offsets: the codec keeps both.
        assert codec.dumps_event(back) == codec.dumps_event(event)
