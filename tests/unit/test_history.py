"""Ownership of one link over time: history.py and the graph's owner()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from identity_graph import IdentityGraph, Link
from identity_graph.history import (
    LinkHistory,
    current_owner,
    explicit_owner_at,
    insert,
    owner_at,
    points,
)


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


CARD = Link("loyalty_card", "7001 2345")
PHONE = Link("phone", "+358 40 123 4567")


# --- the module -------------------------------------------------------------------


def test_empty_history() -> None:
    assert owner_at(None, d(1)) is None
    assert explicit_owner_at(None, d(1)) is None
    assert current_owner(None) is None


def test_insert_first_point_is_a_bare_tuple() -> None:
    history, replaced = insert(None, (d(5), "c1", 1))
    assert history == (d(5), "c1", 1)
    assert replaced is None
    assert points(history) == [(d(5), "c1", 1)]


def test_single_point() -> None:
    history = (d(5), "c1", 1)
    assert owner_at(history, d(5)) == "c1"
    assert owner_at(history, d(9)) == "c1"
    # anonymous span before it: the next claimant takes it
    assert owner_at(history, d(1)) == "c1"
    assert explicit_owner_at(history, d(1)) is None
    assert explicit_owner_at(history, d(5)) == "c1"
    assert current_owner(history) == "c1"


def test_single_point_same_instant_replaced() -> None:
    history, replaced = insert((d(5), "c1", 1), (d(5), "c2", 2))
    assert history == (d(5), "c2", 2)
    assert replaced == (d(5), "c1", 1)


def test_same_instant_in_another_time_zone_is_the_same_point() -> None:
    helsinki = d(5).astimezone(timezone(timedelta(hours=2)))
    history, replaced = insert((d(5), "c1", 1), (helsinki, "c2", 2))
    assert replaced is not None
    assert current_owner(history) == "c2"
    assert len(points(history)) == 1


def test_two_points() -> None:
    history, replaced = insert((d(1), "c1", 1), (d(10), "c2", 2))
    assert isinstance(history, LinkHistory)
    assert replaced is None
    assert points(history) == [(d(1), "c1", 1), (d(10), "c2", 2)]
    assert owner_at(history, d(5)) == "c1"
    assert owner_at(history, d(10)) == "c2"
    assert owner_at(history, d(10) - timedelta(microseconds=1)) == "c1"
    assert current_owner(history) == "c2"


def test_link_history_same_instant_replacement() -> None:
    history, _ = insert((d(1), "c1", 1), (d(10), "c2", 2))
    history, replaced = insert(history, (d(10), "c3", 3))
    assert replaced == (d(10), "c2", 2)
    assert points(history) == [(d(1), "c1", 1), (d(10), "c3", 3)]
    assert current_owner(history) == "c3"


def test_late_arriving_point_inserted_in_order() -> None:
    history, _ = insert((d(1), "c1", 1), (d(20), "c3", 2))
    history, replaced = insert(history, (d(10), "c2", 3))
    assert replaced is None
    assert [p[0] for p in points(history)] == [d(1), d(10), d(20)]
    # affects only the span up to the next change point
    assert owner_at(history, d(5)) == "c1"
    assert owner_at(history, d(15)) == "c2"
    assert owner_at(history, d(25)) == "c3"
    assert current_owner(history) == "c3"


def test_late_arriving_point_before_the_first() -> None:
    history, _ = insert((d(10), "c1", 1), (d(1), "c2", 2))
    assert points(history) == [(d(1), "c2", 2), (d(10), "c1", 1)]
    assert owner_at(history, d(1)) == "c2"
    assert current_owner(history) == "c1"


def test_link_history_at_or_before_and_after() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(10), None, 2), (d(20), "c2", 3)])
    assert history.at_or_before(d(1)) == (d(1), "c1", 1)
    assert history.at_or_before(d(15)) == (d(10), None, 2)
    assert history.at_or_before(datetime(2023, 12, 31, tzinfo=UTC)) is None
    assert history.after(d(10)) == (d(20), "c2", 3)
    assert history.after(d(20)) is None
    assert history.last() == (d(20), "c2", 3)
    assert len(history) == 3


def test_registering_a_phone_absorbs_earlier_anonymous_calls() -> None:
    history = LinkHistory([(d(10), "c1", 1), (d(20), "c2", 2)])
    assert owner_at(history, d(2)) == "c1"


def test_card_sold_on_keeps_earlier_purchases_with_old_owner() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(10), "c2", 2)])
    assert owner_at(history, d(9)) == "c1"
    assert owner_at(history, d(11)) == "c2"


def test_unlink_span_followed_by_new_owner_belongs_to_new_owner() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(5), None, 2), (d(10), "c2", 3)])
    assert owner_at(history, d(7)) == "c2"
    assert owner_at(history, d(5)) == "c2"
    assert owner_at(history, d(3)) == "c1"


def test_unlink_at_the_end_is_unowned() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(5), None, 2)])
    assert owner_at(history, d(7)) is None
    assert owner_at(history, d(3)) == "c1"
    assert current_owner(history) is None


def test_unlink_followed_by_unlink_is_unowned() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(5), None, 2), (d(10), None, 3)])
    assert owner_at(history, d(7)) is None


def test_explicit_owner_ignores_next_claimant() -> None:
    history = LinkHistory([(d(1), "c1", 1), (d(5), None, 2), (d(10), "c2", 3)])
    assert explicit_owner_at(history, d(7)) is None
    assert owner_at(history, d(7)) == "c2"
    assert explicit_owner_at(history, d(1)) == "c1"
    before_all = datetime(2023, 12, 1, tzinfo=UTC)
    assert explicit_owner_at(history, before_all) is None
    assert owner_at(history, before_all) == "c1"


# --- through the graph ------------------------------------------------------------


def test_graph_history_and_owner() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    g.relink(CARD, to="c2", at=d(10))
    assert g.history(CARD) == [(d(1), "c1"), (d(10), "c2")]
    assert g.owner(CARD, at=d(5)) == "c1"
    assert g.owner(CARD, at=d(10)) == "c2"
    assert g.owner(CARD) == "c2"


def test_graph_history_of_unknown_link_is_empty() -> None:
    g = IdentityGraph()
    assert g.history(CARD) == []
    assert g.owner(CARD) is None
    assert g.owner(CARD, at=d(1)) is None


def test_graph_same_instant_relink_replaces() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    g.relink(CARD, to="c2", at=d(1))
    assert g.history(CARD) == [(d(1), "c2")]
    assert g.profile("c1").links == ()
    assert g.profile("c2").links == (g.normalize(CARD),)


def test_graph_late_arriving_fact() -> None:
    g = IdentityGraph()
    g.link("c1", PHONE, at=d(10))
    g.link("c2", PHONE, at=d(2))
    assert g.history(PHONE) == [(d(2), "c2"), (d(10), "c1")]
    assert g.owner(PHONE, at=d(1)) == "c2"
    assert g.owner(PHONE, at=d(5)) == "c2"
    assert g.owner(PHONE, at=d(12)) == "c1"
    assert g.owner(PHONE) == "c1"
    g._check()


def test_graph_phone_registered_later_absorbs_calls() -> None:
    g = IdentityGraph()
    g.link("c1", PHONE, at=d(10))
    assert g.owner(PHONE, at=d(3)) == "c1"
    assert g.resolve(PHONE, at=d(3)) == "c1"


def test_graph_unlink_then_new_owner() -> None:
    g = IdentityGraph()
    g.link("c1", CARD, at=d(1))
    g.unlink(CARD, at=d(5))
    assert g.owner(CARD, at=d(7)) is None
    assert g.owner(CARD) is None
    g.link("c2", CARD, at=d(10))
    assert g.owner(CARD, at=d(7)) == "c2"
    assert g.owner(CARD, at=d(3)) == "c1"
    assert g.history(CARD) == [(d(1), "c1"), (d(5), None), (d(10), "c2")]


def test_graph_owner_normalises_the_link() -> None:
    g = IdentityGraph()
    g.link("c1", Link("email", "Ann@Example.com"), at=d(1))
    assert g.owner(Link("email", " ANN@example.com ")) == "c1"
