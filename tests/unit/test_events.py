"""events.py: an event is frozen as base types, so it reads back from a store
equal to what was recorded; prepare() normalises and anchors it."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, InvalidEvent, Link, UnknownCustomer
from identity_graph.events import MAX_DATA_DEPTH, FrozenMap, plain_data, prepare, same_event
from identity_graph.ids import LinkTypes
from identity_graph.times import RANGE_RULE

T = datetime(2024, 1, 1, tzinfo=UTC)


class _Channel(enum.StrEnum):
    WEB = "web"


def test_re_recording_an_event_with_a_str_enum_after_reopening_is_unchanged(
    tmp_path: Path,
) -> None:
    def event() -> Event:
        return Event("visit", at=T, customer_id="c1", data={"channel": _Channel.WEB}, id="v1")

    assert type(event().data["channel"]) is str
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        graph.register("c1", at=T)
        assert graph.record(event()) is True
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        assert graph.record(event()) is False


def test_prepare_drops_invalid_links_and_anchors_on_the_priority_link() -> None:
    dropped: list[Link] = []
    event = Event(
        "visit",
        at=T,
        links=(Link("phone", "not a phone"), Link("email", "Ann@Example.com")),
        id="v1",
    )
    prepared, anchor = prepare(
        event, LinkTypes(None, None), {}, False, lambda _at, _id, link, _e: dropped.append(link)
    )
    assert dropped == [Link("phone", "not a phone")]
    assert anchor == ("email", "ann@example.com")
    assert prepared.links == (Link("email", "ann@example.com"),)


def test_prepare_refuses_an_unknown_customer_unless_told_to_register_it() -> None:
    event = Event("visit", at=T, customer_id=" c9 ", id="v1")
    with pytest.raises(UnknownCustomer, match="'c9'"):
        prepare(event, LinkTypes(None, None), {}, False, print)
    prepared, anchor = prepare(event, LinkTypes(None, None), {}, True, print)
    assert anchor == "c9" and prepared.customer_id == "c9"
    with pytest.raises(InvalidEvent, match="no customer id and no valid link"):
        prepare(Event("visit", at=T, id="v2", links=()), LinkTypes(None, None), {}, True, print)


def test_plain_data_is_the_frozen_maps_own_dict() -> None:
    data = Event("visit", at=T, customer_id="c1", data={"a": [1, {"b": 2}]}).data
    assert type(data) is FrozenMap
    assert plain_data(data) == {"a": (1, FrozenMap({"b": 2}))}
    assert plain_data({"x": 1}) == {"x": 1}


# ------------------------------------------------------------------ content ids


def test_data_that_spells_a_tag_is_not_the_tagged_value() -> None:
    # {"$decimal": "1"} was written as a Decimal is: one content id for two
    # events, so the second was refused as a DuplicateEvent.
    spelt = Event("visit", at=T, customer_id="c1", data={"x": {"$decimal": "1"}})
    decimal = Event("visit", at=T, customer_id="c1", data={"x": Decimal("1")})
    assert spelt.content_id() != decimal.content_id()
    graph = IdentityGraph()
    graph.register("c1", at=T)
    assert graph.record(spelt) is True
    assert graph.record(decimal) is True
    assert len(graph.events("c1")) == 2


#: Keys that spell the content encoding's tags, or their escaped forms.
tag_keys = st.sampled_from(
    ["$decimal", "$$decimal", "$$$decimal", "$date", "$$date", "$datetime", "$$datetime", "$", "x"]
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.decimals()
    | st.dates()
    | st.datetimes(datetime(2, 1, 2), datetime(9998, 12, 31), timezones=zones)  # accepted
    | tag_keys
)
data_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(tag_keys | st.text(max_size=4), inner, max_size=3)
        | st.builds(lambda k, v: {k: v}, tag_keys, inner)  # one key: the risky shape
    ),
    max_leaves=10,
)
datas = st.dictionaries(tag_keys | st.text(max_size=4), data_values, max_size=3)


def _from_content(value: Any) -> Any:
    """Event data back from its content text (the reading the encoding's
    escape makes unambiguous): a decoder exists, so the encoding is injective."""
    if isinstance(value, list):
        return tuple(_from_content(item) for item in value)
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, body),) = value.items()
        if key == "$decimal":
            return Decimal(body)
        if key == "$date":
            return date.fromisoformat(body)
        if key == "$datetime":
            return datetime.fromisoformat(body)
        if re.fullmatch(r"\$\$+(decimal|datetime|date)", key):
            return FrozenMap({key[1:]: _from_content(body)})
    return FrozenMap({key: _from_content(item) for key, item in value.items()})


def _visit(data: Any) -> Event:
    return Event("visit", at=T, customer_id="c1", data=data)


@given(datas)
def test_the_content_of_any_data_reads_back_as_that_data(data: dict[str, Any]) -> None:
    event = _visit(data)
    back = _from_content(json.loads(event.content())["data"])
    assert same_event(_visit(back), event)


@given(datas, datas)
def test_two_events_share_a_content_id_only_when_their_content_is_the_same(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    first, second = _visit(a), _visit(b)
    assert (first.content_id() == second.content_id()) == same_event(first, second)


def test_one_and_its_look_alikes_have_distinct_content_ids() -> None:
    look_alikes = [Decimal("1"), "1", 1, 1.0, True, {"$decimal": "1"}, {"$$decimal": "1"}, ["1"]]
    ids = {_visit({"x": value}).content_id() for value in look_alikes}
    assert len(ids) == len(look_alikes)


def _legacy_plain(value: Any) -> Any:
    """The content encoding before the escape (a copy, to compare with)."""
    if isinstance(value, Mapping):
        return {key: _legacy_plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_legacy_plain(item) for item in value]
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _spells_a_tag(value: Any) -> bool:
    if isinstance(value, Mapping):
        if len(value) == 1 and re.fullmatch(r"\$+(decimal|datetime|date)", next(iter(value))):
            return True
        return any(_spells_a_tag(item) for item in value.values())
    if isinstance(value, tuple):
        return any(_spells_a_tag(item) for item in value)
    return False


@given(datas)
def test_the_content_of_ordinary_data_is_written_as_before(data: dict[str, Any]) -> None:
    # Stored events keep the ids they were given: only data with a one-key
    # mapping spelling a tag (the colliding case) is written differently.
    event = _visit(data)
    legacy = json.loads(event.content())
    legacy["data"] = _legacy_plain(event.data)
    before = json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (event.content() == before) == (not _spells_a_tag(event.data))


def test_a_content_id_given_before_the_escape_is_unchanged(tmp_path: Path) -> None:
    # The id this event was given by the code before the escape (pinned):
    # a store holding it still finds it, and re-recording changes nothing.
    event = Event(
        "purchase",
        at=T,
        customer_id="c1",
        links=(Link("email", "ann@example.com"),),
        data={
            "amount": Decimal("10.50"),
            "paid": datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            "day": date(2024, 1, 1),
            "tags": ["a", 1, 1.0, True, None],
            "$note": {"$x": "y"},
            "meta": {"$decimal": "1", "other": 2},
        },
    )
    assert event.content_id() == "h-8c15451e9f73c6653162a3853dde356a"
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        graph.register("c1", at=T)
        assert graph.record(event) is True
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        assert graph.record(event) is False
        assert [e.id for e in graph.events("c1")] == ["h-8c15451e9f73c6653162a3853dde356a"]


# ------------------------------------------------------------------ the door


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"items": [{"sku": "a\x00"}]}, r"data\.items\[0\]\.sku contains NUL"),
        ({"n": {"k\ud800": 1}}, r"data\.n has the key 'k\\ud800', which contains the surrogate"),
        (FrozenMap({"t": ("ok", "\udfff")}), r"data\.t\[1\] contains the surrogate"),
        ({"": ["\x00"]}, r"data\.\[0\] contains NUL"),
    ],
)
def test_the_door_names_where_the_data_breaks_the_text_rule(data: Any, where: str) -> None:
    graph = IdentityGraph()
    graph.register("c1", at=T)
    with pytest.raises(InvalidEvent, match=rf"event 'v1': {where}"):
        graph.record(Event("visit", at=T, customer_id="c1", data=data, id="v1"))
    assert graph.refusals()[-1].error == "InvalidEvent"


def test_data_nested_at_the_bound_is_accepted_and_one_deeper_refused_when_built() -> None:
    from identity_graph.testing import nested_data

    graph = IdentityGraph()
    graph.register("c1", at=T)
    assert graph.record(Event("visit", at=T, customer_id="c1", data=nested_data(MAX_DATA_DEPTH)))
    with pytest.raises(InvalidEvent, match=r"more than 32 levels deep"):
        Event("visit", at=T, customer_id="c1", data=nested_data(MAX_DATA_DEPTH + 1))
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidEvent, match=r"more than 32 levels deep"):
        Event("visit", at=T, customer_id="c1", data=cyclic)


_ZONES = st.timezones() | st.builds(
    timezone, st.integers(-23 * 60 + 1, 23 * 60 - 1).map(lambda m: timedelta(minutes=m))
)
_NEAR_THE_ENDS = (
    st.datetimes(max_value=datetime(1, 1, 3))
    | st.datetimes(min_value=datetime(9998, 12, 30))
    | st.datetimes()
)


@given(when=_NEAR_THE_ENDS.flatmap(lambda naive: _ZONES.map(lambda z: naive.replace(tzinfo=z))))
def test_a_time_in_event_data_is_recorded_or_refused_as_an_event(when: datetime) -> None:
    """Any aware time in data: recorded, or, near the calendar's ends where no
    UTC instant exists for it, InvalidEvent naming the range — never Python's
    OverflowError."""
    g = IdentityGraph()
    event = None
    try:
        event = Event(
            "visit",
            at=datetime(2024, 1, 1, tzinfo=UTC),
            links=[Link("email", "a@b.co")],
            data={"when": when},
        )
    except InvalidEvent as error:
        assert RANGE_RULE in str(error)
        assert not (datetime(2, 1, 1, tzinfo=UTC) <= when <= datetime(9999, 1, 1, tzinfo=UTC))
        return
    assert g.record(event) is not None


def test_a_whole_number_in_data_has_at_most_a_thousand_digits() -> None:
    """Python will not print an int of more than 4,300 digits (so no store or
    content id could hold one): the library's bound is said as a rule."""
    g = IdentityGraph()
    at = datetime(2024, 1, 1, tzinfo=UTC)
    big = 10**1000 - 1
    assert g.record(Event("visit", at=at, links=[Link("email", "a@b.co")], data={"n": [-big]}))
    for huge in (10**1000, -(10**5000)):
        with pytest.raises(InvalidEvent, match=r"data\.n\[0\] has more than 1,000 digits"):
            Event("visit", at=at, links=[Link("email", "a@b.co")], data={"n": [huge]})


_DECIMALS = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.integers(-1_000_060, -999_960) | st.integers(-60, 30),
) | st.sampled_from([Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN"), Decimal("1E+23")])


@given(_DECIMALS)
def test_an_amount_is_judged_by_the_money_rules_whatever_path_judges_it(amount: Decimal) -> None:
    """The bulk path's one-call check of Decimal amounts agrees with the rules
    themselves: finite, below 10**24 in size, at most 28 significant digits
    (trailing zeros aside), down to the smallest exponents Decimal reaches."""
    from identity_graph.events import check_purchase

    digits = amount.as_tuple().digits if amount.is_finite() else ()
    significant = len("".join(map(str, digits)).rstrip("0")) or 1
    allowed = amount.is_finite() and abs(amount) < 10**24 and significant <= 28
    event = Event("purchase", at=T, customer_id="c1", data={"amount": amount}, id="p1")
    if allowed:
        check_purchase(event)
    else:
        with pytest.raises(InvalidEvent):
            check_purchase(event)


#: Plain ASCII (the data the door need not walk again), text with a
#: character it refuses (NUL, a surrogate) or lets by (é, U+200B), and any.
_PLAIN_TEXT = st.text(st.sampled_from("ab Z_-1"), max_size=4)
_ANY_TEXT = st.one_of(
    _PLAIN_TEXT,
    st.text(st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\u00e9", "\u200b"]), max_size=3),
    st.text(st.characters(blacklist_categories=()), max_size=4),
)
_KEYS = st.one_of(_PLAIN_TEXT, _PLAIN_TEXT, _ANY_TEXT)
_DATA_VALUES = st.recursive(
    _ANY_TEXT | st.integers() | st.none(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KEYS, inner, max_size=3)
        | st.dictionaries(_KEYS, inner, max_size=3).map(FrozenMap)
    ),
    max_leaves=12,
)


def _breaks_text_rule(value: Any) -> bool:
    """Whether any key or string in ``value`` holds NUL or a surrogate."""
    if isinstance(value, str):
        return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, Mapping):
        return any(_breaks_text_rule(k) or _breaks_text_rule(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_breaks_text_rule(v) for v in value)
    return False


@given(st.dictionaries(_KEYS, _DATA_VALUES, max_size=4))
@example({"a": "x\x00"})
@example({"a": ["ok", "\ud800"]})
@example({"k\x00": 1})
@example({"a": {"b\udc00": 1}})
@example({"a": FrozenMap({"b": "\x00"})})
@example({"a": "\u00e9\u200b"})
def test_the_door_judges_event_data_alike_however_it_was_built(data: dict[str, Any]) -> None:
    """Data an Event froze from plain values is spared the door's second walk
    only when that walk would find nothing: recording it ends as recording
    the same data read back from a store (which the door walks), and it is
    refused exactly when a key or string holds NUL or a surrogate."""
    from identity_graph.events import stored_data

    built = Event("visit", at=T, customer_id="c1", data=data, id="v1")
    walked = Event("visit", at=T, customer_id="c1", data=stored_data(data), id="v1")
    assert built.data == walked.data
    outcomes = []
    for event in (built, walked):
        graph = IdentityGraph()
        graph.register("c1", at=T)
        try:
            graph.record(event)
            outcomes.append(None)
        except InvalidEvent as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] is not None) == _breaks_text_rule(data)


@pytest.mark.parametrize(
    "data",
    [{"n": 10**1000}, {"n": [10**1000]}, {"a": {"n": -(10**1000)}}, {"a": [[10**1000]]}],
)
def test_a_whole_number_too_long_is_refused_wherever_it_sits(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="has more than 1,000 digits"):
        Event("visit", at=datetime(2024, 1, 1, tzinfo=UTC), customer_id="c1", data=data)


class _Big(int):
    """An int subclass (an IntEnum is one): kept as its base type."""


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"x": _Big(10**2000)}, "more than 1,000 digits"),
        ({"x": [_Big(10**5000)]}, "more than 1,000 digits"),
        # A FrozenMap built directly is walked by the door, not trusted.
        ({"x": FrozenMap({"n": 10**2000})}, "more than 1,000 digits"),
        ({"x": FrozenMap({"n": _Big(10**2000)})}, "more than 1,000 digits"),
        ({"x": FrozenMap({"t": datetime(2024, 1, 1)})}, "naive datetime"),
        (
            {"x": FrozenMap({"t": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))})},
            "outside the supported times",
        ),
        (FrozenMap({"n": 10**2000}), "more than 1,000 digits"),
    ],
)
def test_every_path_into_data_keeps_the_value_rules(data: Any, words: str) -> None:
    g = IdentityGraph()
    at = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidEvent, match=words):  # when built, or else when recorded
        g.record(Event("visit", at=at, links=[Link("email", "a@b.co")], data=data))
    assert g.events(Link("email", "a@b.co")) == []
