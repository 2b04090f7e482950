"""decisions.py: the conflict policies and the guard checks decide or refuse,
logging each refusal, and never change the state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from identity_graph import LimitExceeded, Limits, LinkConflict, LinkType
from identity_graph.decisions import check_ownership, check_profile_size, conflict, same_profile
from identity_graph.ids import LinkTypes
from identity_graph.state import GraphState

T = datetime(2024, 1, 1, tzinfo=UTC)
KEY = ("email", "ann@example.com")


def _state(limits: Limits | None = None) -> GraphState:
    state = GraphState(limits or Limits())
    for customer in ("c1", "c2", "c3"):
        state.commit("register", {"customer_id": customer}, T)
    state.commit("link", {"customer_id": "c1", "link": KEY}, T)
    return state


@pytest.mark.parametrize(
    ("policy", "outcome"), [("move", "move"), ("merge", "merge"), ("reject", None)]
)
def test_a_conflict_follows_the_link_types_policy(policy: str, outcome: str | None) -> None:
    state = _state()
    types = LinkTypes({"email": LinkType(conflict=policy)}, None)  # type: ignore[arg-type]
    before = state.comparable()
    if outcome is None:
        with pytest.raises(LinkConflict, match="policy is 'reject'"):
            conflict(state, types, KEY, "c2", "c1", {"customer_id": "c2"}, T)
        assert [r.error for r in state.guards.log] == ["LinkConflict"]
    else:
        assert conflict(state, types, KEY, "c2", "c1", {}, T) == outcome
        assert state.guards.log == []
    assert state.comparable() == before


def test_a_merge_conflict_inside_one_profile_is_nothing_to_do() -> None:
    state = _state()
    state.commit("merge", {"merge_id": "m9", "a": "c1", "b": "c2", "reason": ""}, T)
    types = LinkTypes({"email": LinkType(conflict="merge")}, None)
    assert same_profile(state, "c1", "c2") and not same_profile(state, "c1", "c3")
    assert conflict(state, types, KEY, "c2", "c1", {}, T) == "same"


def test_profile_size_and_link_caps_refuse_and_log() -> None:
    state = _state(Limits(max_customers_per_profile=1, max_links_per_customer=1))
    with pytest.raises(LimitExceeded, match="max_customers_per_profile is 1"):
        check_profile_size(state, "c2", "c3", "merge", {}, T)
    other = ("email", "bo@example.com")
    with pytest.raises(LimitExceeded, match="max_links_per_customer is 1"):
        check_ownership(state, LinkTypes(None, None), other, "c1", None, "link", {}, T)
    assert [r.op for r in state.guards.log] == ["merge", "link"]
    assert check_ownership(state, LinkTypes(None, None), other, "c2", None, "link", {}, T) is False
