"""state.py: GraphState's one apply(), its comparable form, its check(); the
Ownership index behind its public reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Limits, Link
from identity_graph.journal import raw
from identity_graph.state import GraphState, Ownership
from identity_graph.testing import apply, random_operations

T = datetime(2024, 1, 1, tzinfo=UTC)
EMAIL = ("email", "ann@example.com")


def _graph(seed: int) -> IdentityGraph:
    g = IdentityGraph()
    apply(g, random_operations(seed, 80))
    return g


@given(st.integers(0, 10_000))
def test_replaying_the_journal_into_a_new_state_gives_an_equal_state(seed: int) -> None:
    g = _graph(seed)
    copy = GraphState(Limits())
    for at_seq, record in g.state.journal.records():
        op, args, at = raw(record)
        copy.replay(op, args, at, at_seq)
    copy.check()
    assert copy.comparable() == g.state.comparable()


@given(st.integers(0, 10_000))
def test_check_holds_after_any_calls_and_clear_empties_in_place(seed: int) -> None:
    g = _graph(seed)
    state = g.state
    state.check()
    ownership, partition = state.ownership, state.partition
    state.clear(type(state.journal)())
    assert state.ownership is ownership and state.partition is partition
    assert list(state.order) == [] and len(ownership) == 0 and state.guards.log == []
    state.check()


def test_check_finds_a_link_owned_by_an_unregistered_customer() -> None:
    state = GraphState(Limits())
    state.commit("register", {"customer_id": "c1"}, T)
    state.ownership.restore(EMAIL, [(T, "ghost", 1)])
    with pytest.raises(AssertionError, match="unregistered 'ghost'"):
        state.check()


def test_check_finds_guards_tracking_a_link_without_history() -> None:
    state = GraphState(Limits())
    state.guards.frozen.add(EMAIL)
    with pytest.raises(AssertionError, match="no history"):
        state.check()


def test_ownership_reads_follow_a_move() -> None:
    g = IdentityGraph()
    link = Link(*EMAIL)
    g.link("c1", link, at=T)
    g.relink(link, "c2", at=T + timedelta(days=2))
    ownership: Ownership = g.state.ownership
    assert ownership.owner_at(EMAIL, T + timedelta(days=1)) == "c1"
    assert ownership.current_owner(EMAIL) == "c2"
    assert [owner for _start, _end, owner in ownership.spans(EMAIL)] == ["c1", "c2"]
    assert ownership.spans(("email", "nobody@example.com")) == []
    assert ownership.claimed_by("c1") == (EMAIL,) == ownership.claimed_by("c2")
    assert ownership.links_of("c1") == () and ownership.links_of("c2") == (EMAIL,)
    assert set(ownership.claimants()) == {"c1", "c2"} and EMAIL in ownership
