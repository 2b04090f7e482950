"""Protection against over-merging: Limits, caps, frozen links, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from identity_graph import (
    BlockedLink,
    IdentityGraph,
    LimitExceeded,
    Limits,
    Link,
    LinkConflict,
    LinkType,
    Refusal,
)
from identity_graph.guards import Guards


def d(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


CARD = Link("loyalty_card", "7001-2345")
CARD_N = Link("loyalty_card", "70012345")


def refused_without_change(
    g: IdentityGraph, call: Callable[[], object], error: type, match: str
) -> Refusal:
    """Run a call that must be refused; check nothing changed and one refusal was logged."""
    before = g._state()
    logged = len(g.refusals())
    with pytest.raises(error, match=match) as info:
        call()
    assert g._state() == before
    assert len(g.refusals()) == logged + 1
    refusal = g.refusals()[-1]
    assert refusal.error == error.__name__
    assert refusal.reason == str(info.value)
    g._check()
    return refusal


# --- Limits -----------------------------------------------------------------------


def test_limits_defaults() -> None:
    limits = Limits()
    assert limits.max_links_per_customer == 1000
    assert limits.max_customers_per_profile == 100
    assert limits.max_moves == 5
    assert limits.move_window == timedelta(days=30)


@pytest.mark.parametrize(
    "field", ["max_links_per_customer", "max_customers_per_profile", "max_moves"]
)
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_limits_whole_numbers(field: str, value: object) -> None:
    with pytest.raises(
        ValueError, match=rf"Limits\.{field} = {re.escape(repr(value))} must be a whole number"
    ):
        Limits(**{field: value})  # type: ignore[arg-type]


def test_limits_one_is_allowed() -> None:
    limits = Limits(max_links_per_customer=1, max_customers_per_profile=1, max_moves=1)
    assert limits.max_moves == 1


@pytest.mark.parametrize("value", [timedelta(0), timedelta(seconds=-1), 30, None])
def test_limits_move_window(value: object) -> None:
    with pytest.raises(ValueError, match=r"Limits\.move_window = .* must be a positive timedelta"):
        Limits(move_window=value)  # type: ignore[arg-type]


def test_graph_limits_must_be_limits() -> None:
    with pytest.raises(TypeError, match=r"limits must be a Limits"):
        IdentityGraph(limits={"max_moves": 1})  # type: ignore[arg-type]


# --- blocked values are refusals --------------------------------------------------


def test_blocked_link_is_refused_and_logged() -> None:
    g = IdentityGraph()
    g.register("c1", at=d(1))
    refusal = refused_without_change(
        g, lambda: g.link("c1", Link("email", "NULL"), at=d(2)), BlockedLink, r"email 'NULL'"
    )
    assert refusal.op == "link"
    assert refusal.at == d(2)
    assert refusal.args == {"customer_id": "c1", "link": Link("email", "NULL")}


def test_blocked_link_does_not_register_the_customer() -> None:
    g = IdentityGraph()
    with pytest.raises(BlockedLink):
        g.link("c1", Link("phone", "-1"), at=d(1))
    assert g.customers() == []


@pytest.mark.parametrize("op", ["relink", "unlink"])
def test_blocked_link_logged_for_relink_and_unlink(op: str) -> None:
    g = IdentityGraph()
    bad = Link("email", "test@test.com")
    call = {
        "relink": lambda: g.relink(bad, to="c1", at=d(1)),
        "unlink": lambda: g.unlink(bad, at=d(1)),
    }[op]
    refusal = refused_without_change(g, call, BlockedLink, r"email 'test@test.com'.*blocklist")
    assert refusal.op == op


def test_invalid_link_is_not_a_refusal() -> None:
    g = IdentityGraph()
    with pytest.raises(Exception, match="exactly one '@'"):
        g.link("c1", Link("email", "not-an-email"), at=d(1))
    assert g.refusals() == []


def test_read_only_calls_log_nothing() -> None:
    g = IdentityGraph()
    with pytest.raises(BlockedLink):
        g.normalize(Link("email", "null"))
    with pytest.raises(BlockedLink):
        g.owner(Link("email", "null"))
    assert g.refusals() == []


# --- per-type and overall caps ----------------------------------------------------


def test_max_per_customer() -> None:
    g = IdentityGraph(link_types={"email": LinkType(max_per_customer=1)})
    g.link("c1", Link("email", "a@example.com"), at=d(1))
    g.link("c1", Link("phone", "+358401234567"), at=d(1))  # other names don't count
    refusal = refused_without_change(
        g,
        lambda: g.link("c1", Link("email", "b@example.com"), at=d(2)),
        LimitExceeded,
        r"customer 'c1' already owns 1 email links; max_per_customer for email is 1",
    )
    assert refusal.op == "link"
    assert refusal.args == {"customer_id": "c1", "link": Link("email", "b@example.com")}


def test_max_per_customer_applies_to_relink_target() -> None:
    g = IdentityGraph(link_types={"email": LinkType(max_per_customer=1)})
    g.link("c1", Link("email", "a@example.com"), at=d(1))
    g.link("c2", Link("email", "b@example.com"), at=d(1))
    refusal = refused_without_change(
        g,
        lambda: g.relink(Link("email", "b@example.com"), to="c1", at=d(2)),
        LimitExceeded,
        r"customer 'c1'.*max_per_customer for email is 1",
    )
    assert refusal.op == "relink"
    assert refusal.args == {"link": Link("email", "b@example.com"), "to": "c1"}


def test_max_per_customer_frees_up_after_unlink() -> None:
    g = IdentityGraph(link_types={"email": LinkType(max_per_customer=1)})
    g.link("c1", Link("email", "a@example.com"), at=d(1))
    g.unlink(Link("email", "a@example.com"), at=d(2))
    assert g.link("c1", Link("email", "b@example.com"), at=d(3)) is not None


def test_max_links_per_customer() -> None:
    g = IdentityGraph(limits=Limits(max_links_per_customer=2))
    g.link("c1", Link("email", "a@example.com"), at=d(1))
    g.link("c1", Link("crm_id", "x"), at=d(1))
    refused_without_change(
        g,
        lambda: g.link("c1", Link("phone", "+358401234567"), at=d(2)),
        LimitExceeded,
        r"customer 'c1' already owns 2 links; max_links_per_customer is 2",
    )
    # another customer is not affected
    assert g.link("c2", Link("phone", "+358401234567"), at=d(2)) is not None


def test_max_customers_per_profile_on_merge() -> None:
    g = IdentityGraph(limits=Limits(max_customers_per_profile=2))
    for c in ("a", "b", "c"):
        g.register(c, at=d(1))
    g.merge("a", "b", at=d(2))
    refusal = refused_without_change(
        g,
        lambda: g.merge("c", "b", reason="why not", at=d(3)),
        LimitExceeded,
        r"merging customers 'c' \(1 in profile\) and 'b' \(2 in profile\) would make a "
        r"profile of 3 customers; max_customers_per_profile is 2",
    )
    assert refusal.op == "merge"
    assert refusal.args == {"a": "c", "b": "b", "reason": "why not"}


def test_max_customers_per_profile_on_shared_link_merge() -> None:
    g = IdentityGraph(
        link_types={"email": LinkType(conflict="merge")},
        limits=Limits(max_customers_per_profile=2),
    )
    shared = Link("email", "family@example.com")
    g.link("a", shared, at=d(1))
    g.link("b", shared, at=d(2))  # merged: a + b
    assert g.resolve("b") == "a"
    refusal = refused_without_change(
        g,
        lambda: g.link("c", shared, at=d(3)),
        LimitExceeded,
        r"merging customers 'c' \(1 in profile\) and 'a' \(2 in profile\).*"
        r"max_customers_per_profile is 2",
    )
    assert refusal.op == "link"
    assert "c" not in g.customers()


def test_reject_policy_refusal() -> None:
    g = IdentityGraph(link_types={"crm_id": LinkType(conflict="reject")})
    g.link("c1", Link("crm_id", "X1"), at=d(1))
    refusal = refused_without_change(
        g,
        lambda: g.link("c2", Link("crm_id", "X1"), at=d(2)),
        LinkConflict,
        r"crm_id 'X1' is owned by customer 'c1' at 2024-01-02.*conflict policy is 'reject'",
    )
    assert refusal.op == "link"
    assert "c2" not in g.customers()


# --- frozen links -----------------------------------------------------------------


def flapping_graph(max_moves: int = 3, window_days: int = 10) -> IdentityGraph:
    return IdentityGraph(
        limits=Limits(max_moves=max_moves, move_window=timedelta(days=window_days))
    )


def test_link_frozen_after_max_moves_within_window() -> None:
    g = flapping_graph()
    g.link("a", CARD, at=d(1))  # a claim, not a move
    g.relink(CARD, to="b", at=d(2))  # move 1
    g.relink(CARD, to="a", at=d(3))  # move 2
    assert g.frozen_links() == []
    g.relink(CARD, to="b", at=d(4))  # move 3 -> frozen
    assert g.frozen_links() == [CARD_N]
    refusal = refused_without_change(
        g,
        lambda: g.relink(CARD, to="a", at=d(5)),
        LimitExceeded,
        r"loyalty_card '70012345' is frozen: it moved between owners 3 times within "
        r"10 days.*release\(\)",
    )
    assert refusal.op == "relink"
    assert refusal.args == {"link": CARD, "to": "a"}
    # link() with the default move policy is refused too
    refusal = refused_without_change(
        g, lambda: g.link("c", CARD, at=d(6)), LimitExceeded, r"loyalty_card '70012345' is frozen"
    )
    assert refusal.op == "link"
    assert g.owner(CARD) == "b"


def test_frozen_link_still_idempotent_and_unlinkable() -> None:
    g = flapping_graph(max_moves=1)
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(2))
    assert g.frozen_links() == [CARD_N]
    assert g.link("b", CARD, at=d(3)) is None
    assert g.unlink(CARD, at=d(4)) is not None


def test_moves_spread_beyond_the_window_do_not_freeze() -> None:
    g = flapping_graph(max_moves=3, window_days=10)
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(1, 1))  # move at d1
    g.relink(CARD, to="a", at=d(5))  # move at d5
    g.relink(CARD, to="b", at=d(11, 1))  # [d1, d11) holds 2, [d5, d15) holds 2
    assert g.frozen_links() == []
    g.relink(CARD, to="a", at=d(12))  # [d5, d15) now holds 3
    assert g.frozen_links() == [CARD_N]


def test_window_is_half_open() -> None:
    # moves at d1 1h, d6, d11 1h: the last is exactly start + window -> excluded
    g = flapping_graph(max_moves=3, window_days=10)
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(1, 1))
    g.relink(CARD, to="a", at=d(6))
    g.relink(CARD, to="b", at=d(11, 1))
    assert g.frozen_links() == []


def test_guards_record_move_half_open_window_directly() -> None:
    guards = Guards(Limits(max_moves=2, move_window=timedelta(days=10)))
    key = ("loyalty_card", "X")
    guards.record_move(key, d(1))
    assert not guards.would_freeze(key, d(11))  # [d1, d11) does not hold d11
    guards.record_move(key, d(11))
    assert guards.would_freeze(key, d(20))  # [d11, d21) holds d11 and d20
    assert guards.frozen == set()  # deciding never freezes by itself


def test_late_arriving_move_counts_in_its_window() -> None:
    guards = Guards(Limits(max_moves=2, move_window=timedelta(days=10)))
    key = ("loyalty_card", "X")
    guards.record_move(key, d(20))
    assert guards.would_freeze(key, d(15))  # earlier instant, same window as d20
    assert not guards.would_freeze(key, d(5))  # [d5, d15) misses d20


def test_release_unfreezes_and_forgets_moves() -> None:
    g = flapping_graph(max_moves=2)
    g.link("a", CARD, at=d(1))
    g.relink(CARD, to="b", at=d(2))
    g.relink(CARD, to="a", at=d(3))
    assert g.frozen_links() == [CARD_N]
    entry = g.release(CARD, at=d(4))
    assert entry is not None
    assert entry.op == "release"
    assert entry.args["link"] == CARD_N
    assert g.frozen_links() == []
    # earlier moves forgotten: one more move does not freeze (max_moves=2)
    assert g.relink(CARD, to="b", at=d(5)) is not None
    assert g.frozen_links() == []
    g.relink(CARD, to="a", at=d(6))
    assert g.frozen_links() == [CARD_N]


def test_release_of_unfrozen_link_is_a_no_op() -> None:
    g = IdentityGraph()
    g.link("a", CARD, at=d(1))
    assert g.release(CARD, at=d(2)) is None
    assert len(list(g.journal())) == 1


def test_claims_and_unlinks_are_not_moves() -> None:
    g = flapping_graph(max_moves=1)
    g.link("a", CARD, at=d(1))
    g.unlink(CARD, at=d(2))
    g.link("a", CARD, at=d(3))
    assert g.frozen_links() == []


def test_refusals_accumulate_in_order() -> None:
    g = IdentityGraph(link_types={"crm_id": LinkType(conflict="reject")})
    g.link("c1", Link("crm_id", "X1"), at=d(1))
    with pytest.raises(BlockedLink):
        g.link("c1", Link("email", "none"), at=d(2))
    with pytest.raises(LinkConflict):
        g.link("c2", Link("crm_id", "X1"), at=d(3))
    assert [(r.op, r.error, r.at) for r in g.refusals()] == [
        ("link", "BlockedLink", d(2)),
        ("link", "LinkConflict", d(3)),
    ]
    # refusals() returns a copy
    g.refusals().clear()
    assert len(g.refusals()) == 2
