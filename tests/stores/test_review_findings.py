"""Review findings on the stored graph: each test pins a bug found in review and since fixed."""

from __future__ import annotations

import enum
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import IdentityGraph, Link
from identity_graph.errors import StoreError
from identity_graph.ledger import Event

T = datetime(2024, 1, 1, tzinfo=UTC)


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
    # The in-memory graph records this event (batch() changes nothing there).
    assert graph.record(Event("visit", at=T, customer_id="new", id="v1")) is True


class _Channel(enum.StrEnum):
    WEB = "web"


def test_re_recording_an_event_with_a_str_enum_after_reopening_is_unchanged(
    tmp_path: Path,
) -> None:
    def event() -> Event:
        return Event("visit", at=T, customer_id="c1", data={"channel": _Channel.WEB}, id="v1")

    with IdentityGraph.open(tmp_path / "g.db") as graph:
        graph.register("c1", at=T)
        assert graph.record(event()) is True
    with IdentityGraph.open(tmp_path / "g.db") as graph:
        assert graph.record(event()) is False
