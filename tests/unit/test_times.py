"""times.py: the one time-zone rule, and the supported range, held by every
public call that takes a time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, IdentityGraphError, InvalidTime, Link
from identity_graph.times import EARLIEST, LATEST, RANGE_RULE, check_range, utc

ZONES = st.builds(
    timezone, st.integers(-23 * 60, 23 * 60).map(lambda minutes: timedelta(minutes=minutes))
)
AWARE = st.datetimes(min_value=datetime(3, 1, 1), max_value=datetime(9998, 1, 1), timezones=ZONES)


@given(AWARE)
def test_an_aware_time_becomes_the_same_instant_in_utc(at: datetime) -> None:
    converted = utc(at)
    assert converted.tzinfo is UTC
    assert converted == at
    assert utc(converted) is converted  # the fast path returns it as it is


@given(st.datetimes(min_value=datetime(3, 1, 1), max_value=datetime(9998, 1, 1)))
def test_a_naive_time_is_refused_naming_the_input(at: datetime) -> None:
    with pytest.raises(ValueError, match=rf"^as_of={at.isoformat()} is a naive datetime"):
        utc(at, "as_of")


@pytest.mark.parametrize("value", [date(2024, 1, 1), "2024-01-01T00:00:00+00:00", 0, None])
def test_anything_but_a_datetime_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="is not a datetime"):
        utc(value)


def test_the_range_ends_are_inside_and_one_microsecond_beyond_is_not() -> None:
    check_range(EARLIEST, "t")
    check_range(LATEST, "t")
    with pytest.raises(ValueError, match="times must lie from"):
        check_range(LATEST + timedelta(microseconds=1), "t")
    with pytest.raises(ValueError, match="times must lie from"):
        check_range(EARLIEST - timedelta(microseconds=1), "t")


# --- every public call that takes a time holds the one rule --------------------------

T = datetime(2024, 1, 1, tzinfo=UTC)
CARD = Link("loyalty_card", "7001")


def _expected_utc(at: datetime) -> datetime | None:
    """``at`` as a naive UTC wall clock, counted independently of utc(); None
    when it falls off Python's calendar."""
    offset = at.utcoffset()
    assert offset is not None
    try:
        return at.replace(tzinfo=None) - offset
    except OverflowError:
        return None


def _inside(at: datetime) -> bool:
    moved = _expected_utc(at)
    earliest, latest = (bound.replace(tzinfo=None) for bound in (EARLIEST, LATEST))
    return moved is not None and earliest <= moved <= latest


def _graph() -> tuple[IdentityGraph, str]:
    g = IdentityGraph()
    g.link("c1", Link("email", "ann@example.com"), at=T)
    g.register("c2", at=T)
    g.register("c3", at=T)
    merge_id = g.merge("c2", "c3", at=T)
    assert merge_id is not None
    purchase = {"amount": Decimal("9.50"), "items": [{"name": "SKU-1", "quantity": 1}]}
    g.record(Event("purchase", at=T, customer_id="c1", data=purchase, id="p-1"))
    return g, merge_id


CALLS: dict[str, Callable[[IdentityGraph, str, datetime], object]] = {
    "register": lambda g, m, at: g.register("c9", {"tier": "gold"}, at=at),
    "link": lambda g, m, at: g.link("c1", CARD, at=at),
    "relink": lambda g, m, at: g.relink(Link("email", "ann@example.com"), to="c2", at=at),
    "unlink": lambda g, m, at: g.unlink(Link("email", "ann@example.com"), at=at),
    "merge": lambda g, m, at: g.merge("c1", "c2", at=at),
    "split": lambda g, m, at: g.split(m, at=at),
    "detach": lambda g, m, at: g.detach("c2", at=at),
    "release": lambda g, m, at: g.release(CARD, at=at),
    "owner": lambda g, m, at: g.owner(Link("email", "ann@example.com"), at=at),
    "resolve customer": lambda g, m, at: g.resolve("c1", at=at),
    "resolve link": lambda g, m, at: g.resolve(Link("email", "ann@example.com"), at=at),
    "events at": lambda g, m, at: g.events("c1", at=at),
    "events start": lambda g, m, at: g.events("c1", start=at),
    "events end": lambda g, m, at: g.events("c1", end=at),
    "kpis": lambda g, m, at: g.kpis(at),
    "kpis of one": lambda g, m, at: g.kpis(at, "c1"),
    "record": lambda g, m, at: g.record(Event("visit", at=at, customer_id="c1", id="v-1")),
}

ZONE = st.one_of(ZONES, st.timezones())
EDGE_YEARS = st.sampled_from([1, 2, 9998, 9999])
ANY_AWARE = st.one_of(
    st.datetimes(timezones=ZONE),
    st.builds(
        lambda year, moment, zone: moment.replace(year=year, tzinfo=zone),
        EDGE_YEARS,
        st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2001, 12, 31, 23, 59)),
        ZONE,
    ),
)


@settings(max_examples=150, deadline=None)
@given(call=st.sampled_from(sorted(CALLS)), at=ANY_AWARE)
def test_every_call_that_takes_a_time_works_or_raises_invalid_time(call: str, at: datetime) -> None:
    g, merge_id = _graph()
    try:
        CALLS[call](g, merge_id, at)
    except InvalidTime as error:
        assert not _inside(at), f"{call} refused {at!r}, which is inside the range"
        assert RANGE_RULE in str(error) and at.isoformat() in str(error)
    else:
        assert _inside(at), f"{call} accepted {at!r}, which is outside the range"


@settings(max_examples=60, deadline=None)
@given(at=ANY_AWARE)
def test_record_many_logs_a_time_outside_the_range_and_goes_on(at: datetime) -> None:
    g, _ = _graph()
    recorded, unchanged = g.record_many(
        [
            Event("visit", at=at, customer_id="c1", id="v-1"),
            Event("visit", at=T, customer_id="c1", id="v-2"),
        ]
    )
    assert unchanged == 0
    if _inside(at):
        assert recorded == 2
    else:
        assert recorded == 1
        (refusal,) = g.refusals()
        assert refusal.error == "InvalidTime" and RANGE_RULE in refusal.reason


@given(at=ANY_AWARE)
def test_utc_refuses_exactly_the_times_outside_the_range(at: datetime) -> None:
    if _inside(at):
        moved = utc(at)
        # Not `moved == at`: Python calls two zones' times unequal when one of
        # them is in a gap or a fold of its zone (PEP 495).
        assert moved.tzinfo is UTC and moved.replace(tzinfo=None) == _expected_utc(at)
    else:
        with pytest.raises(InvalidTime, match=re.escape(f"start={at.isoformat()}: {RANGE_RULE}")):
            utc(at, "start")


@pytest.mark.parametrize(
    "at",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # cannot even reach UTC
        datetime(1, 1, 1, tzinfo=UTC),  # the fast path's own zone
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=ZoneInfo("America/New_York")),
        LATEST + timedelta(microseconds=1),
        EARLIEST - timedelta(microseconds=1),
    ],
)
def test_the_issue_s_times_are_invalid_time_not_overflow_error(at: datetime) -> None:
    g, _ = _graph()
    with pytest.raises(InvalidTime, match=r"^at=.*times must lie from 0002-01-01"):
        g.link("c1", CARD, at=at)
    with pytest.raises(InvalidTime, match=r"^event 'v-1': at=.*times must lie from 0002-01-01"):
        g.record(Event("visit", at=at, customer_id="c1", id="v-1"))


def test_the_range_ends_themselves_are_accepted_everywhere() -> None:
    for at in (EARLIEST, LATEST, LATEST.astimezone(timezone(timedelta(hours=-5)))):
        g, merge_id = _graph()
        for call in CALLS.values():
            call(g, merge_id, at)


def test_invalid_time_is_a_value_error_and_a_library_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2024, 1, 1))
    assert issubclass(InvalidTime, IdentityGraphError)
