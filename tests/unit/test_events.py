"""events.py: an event is frozen as base types, so it reads back from a store
equal to what was recorded; prepare() normalises and anchors it."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import Event, IdentityGraph, InvalidEvent, Link, UnknownCustomer
from identity_graph.events import FrozenMap, plain_data, prepare
from identity_graph.ids import LinkTypes

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
