"""session.py: the in-memory twin does nothing; a store session commits
refusals (``IdentityGraphError``) and rolls back anything else."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, Link, LinkConflict, LinkType, codec
from identity_graph.errors import StoreError
from identity_graph.session import Session, dumps_record
from identity_graph.testing import apply, random_operations

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


def test_bad_input_rolls_back_without_reloading_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Input refused before anything changed costs a rollback, not a reload of
    every checkpoint, entry, event and refusal; a call that failed after
    memory ran ahead still reloads."""
    with IdentityGraph.open(tmp_path / "g.db") as g:
        g.link("c1", EMAIL, at=T)
        store = g.store
        assert store is not None
        loads: list[int] = []
        original = store.checkpoint
        monkeypatch.setattr(store, "checkpoint", lambda: loads.append(1) or original())
        with pytest.raises(ValueError, match="naive datetime"):
            g.link("c2", EMAIL, at=datetime(2024, 1, 2))
        with pytest.raises(ValueError, match="attribute name"):
            g.register("c3", {"Bad": 1}, at=T)
        assert loads == []
        assert g.customers() == ["c1"] and g.owner(EMAIL) == "c1"

        def broken(*_args: object) -> None:
            raise RuntimeError("a bug after the state changed")

        monkeypatch.setattr(store, "append_journal", broken)
        with pytest.raises(RuntimeError):
            g.link("c4", Link("email", "d@x.com"), at=T)
        assert loads == [1]  # reloaded: memory had run ahead
        assert g.customers() == ["c1"]


def test_a_store_session_refuses_sizes_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        IdentityGraph.open(tmp_path / "g.db", batch_size=0)
    # The store was closed again: it opens.
    with IdentityGraph.open(tmp_path / "g.db") as g:
        assert g.store is not None and g.customers() == []


def _disk_error(*_args: object) -> None:
    raise sqlite3.OperationalError("disk I/O error")


def test_a_failed_reload_never_answers_from_an_empty_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = IdentityGraph.open(tmp_path / "g.db")
    try:
        graph.link("c1", Link("email", "a@x.com"), at=T)
        assert graph.customers() == ["c1"]
        store = graph.store
        with monkeypatch.context() as patch:
            patch.setattr(store, "append_journal", _disk_error)
            patch.setattr(store, "checkpoint", _disk_error)  # the reload fails too
            with pytest.raises(StoreError):
                graph.link("c2", Link("email", "b@x.com"), at=T)
        # The store holds c1: a read must show it (or raise), never say it is gone.
        try:
            customers = graph.customers()
        except StoreError:
            return
        assert customers == ["c1"]
    finally:
        graph.close()


def test_a_rolled_back_batch_keeps_register_unknown() -> None:
    graph = IdentityGraph.open("memory:")
    graph.register_unknown = True
    with pytest.raises(RuntimeError), graph.batch():
        raise RuntimeError("leave the batch")
    assert graph.record(Event("visit", at=T, customer_id="new", id="v1")) is True


def test_equality_and_state_catch_up_with_another_connection(tmp_path: Path) -> None:
    """``==`` and ``state`` on a stored graph see what another process
    committed (the state is read after the session caught up)."""
    path = tmp_path / "g.db"
    with IdentityGraph.open(path) as writer, IdentityGraph.open(path) as reader:
        assert reader.customers() == []
        writer.link("c1", EMAIL, at=T)
        memory = IdentityGraph()
        memory.link("c1", EMAIL, at=T)
        assert reader == memory
        assert "c1" in reader.state.order


# ------------------------------------------------------- journal row text

_ITEMS = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))])),
        st.tuples(st.text(), st.text()),
    ),
    lambda inner: st.one_of(st.tuples(inner), st.tuples(inner, inner, inner), st.lists(inner)),
    max_leaves=6,
)


class _Name(str):
    """A str subclass (an enum's value, say): the codec writes it as plain text."""


@given(st.lists(_ITEMS, max_size=8), st.integers(0, 10_000))
def test_a_journal_row_is_the_codecs_text(items: list[Any], seed: int) -> None:
    """The fast writer of journal records gives exactly the codec's text,
    for the records graphs write and for items of any other kind."""
    g = IdentityGraph()
    apply(g, random_operations(seed, 40))
    records = [record for _seq, record in g.state.journal.records(0)]
    records.append(("op", datetime(2024, 1, 1, tzinfo=UTC), 0, *items, _Name("x"), True))
    for record in records:
        assert dumps_record(record) == codec.dumps(record)
        assert codec.loads(dumps_record(record)) == codec.loads(codec.dumps(record))
