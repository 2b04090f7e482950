"""times.py: the one time-zone rule, and the supported range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph.times import EARLIEST, LATEST, check_range, utc

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
    with pytest.raises(ValueError, match="times must be from"):
        check_range(LATEST + timedelta(microseconds=1), "t")
    with pytest.raises(ValueError, match="times must be from"):
        check_range(EARLIEST - timedelta(microseconds=1), "t")
