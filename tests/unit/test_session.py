"""session.py: the in-memory twin does nothing; a store session commits
refusals (``IdentityGraphError``) and rolls back anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import IdentityGraph, Link, LinkConflict, LinkType
from identity_graph.session import Session

T = datetime(2024, 1, 1, tzinfo=UTC)
EMAIL = Link("email", "ann@example.com")


def test_the_in_memory_session_runs_each_call_as_it_is() -> None:
    session = Session()
    assert session.read(lambda: 1) == 1
    assert session.write(lambda: 2, events=True) == 2
    with session.batch():
        pass
    assert session.store is None and session.chunks() is None and not session.stored


def test_a_graph_holds_its_session_rather_than_being_a_subclass(tmp_path: Path) -> None:
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert type(g) is IdentityGraph
        assert g.store is not None
    assert IdentityGraph().store is None
    assert IdentityGraph().checkpoint() == 0


def test_a_refusal_is_committed_with_its_log_entry(tmp_path: Path) -> None:
    config = {"link_types": {"email": LinkType(conflict="reject")}}
    with IdentityGraph.open(tmp_path / "g.db", **config) as g:
        g.link("c1", EMAIL, at=T)
        with pytest.raises(LinkConflict):
            g.link("c2", EMAIL, at=T)
    with IdentityGraph.open(tmp_path / "g.db", **config) as again:
        assert [r.error for r in again.refusals()] == ["LinkConflict"]
        assert again.customers() == ["c1"]


def test_any_other_error_rolls_the_call_back(tmp_path: Path) -> None:
    with IdentityGraph.open(tmp_path / "g.db") as g:
        g.link("c1", EMAIL, at=T)
        before = list(g.journal())
        with pytest.raises(ValueError, match="naive datetime"):
            g.link("c2", EMAIL, at=datetime(2024, 1, 2))
        with pytest.raises(TypeError, match="attribute 'n'"):
            g.register("c3", {"n": object()}, at=T)  # type: ignore[dict-item]
        assert list(g.journal()) == before and g.refusals() == []
    with IdentityGraph.open(tmp_path / "g.db") as again:
        assert list(again.journal()) == before


def test_a_store_session_refuses_sizes_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        IdentityGraph.open(tmp_path / "g.db", batch_size=0)
    # The store was closed again: it opens.
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert g.store is not None and g.customers() == []
