"""checkpoint.py: a state saved and restored is the same state, in every
format this library reads."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Limits, Link
from identity_graph import checkpoint as checkpoints
from identity_graph.errors import IdentityGraphError
from identity_graph.state import GraphState
from identity_graph.testing import T0, apply, random_operations

#: A SQLite store whose checkpoint (after entry 89) is format 3, written by
#: the library before format 4 existed: attributes of every kind, links that
#: changed hands, frozen links, active and split merges, an erased customer
#: (so a suppression list), and one journal entry after the checkpoint.
FORMAT_3_STORE = Path(__file__).parents[1] / "data" / "checkpoint-format3.db"
LIMITS = Limits(max_moves=2)


def restored(state: GraphState) -> GraphState:
    """``state`` through the bytes of its checkpoint and back."""
    again = GraphState(LIMITS)
    seq = checkpoints.restore(again, checkpoints.loads(checkpoints.dumps(state)))
    assert seq == len(state.journal)
    again.check()
    return again


def assert_same(got: GraphState, expected: GraphState) -> None:
    a, b = got.comparable(), expected.comparable()
    del a["journal"], b["journal"]  # a checkpoint holds no journal
    assert a == b


# Values of every kind an attribute may hold, and texts that are no
# trouble to a link or a customer id but are to a naive separator.
ATTRIBUTE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.text(max_size=6),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
)
NAMES = st.text("abcé ,\"'[]{}:\\", min_size=1, max_size=5).map(lambda s: f"x{s}")


@st.composite
def graphs(draw: st.DrawFn) -> IdentityGraph:
    """A graph after random calls: links moved and unlinked, merges made
    and split, frozen links, attributes of every kind, erased customers."""
    g = IdentityGraph(limits=LIMITS)
    apply(g, random_operations(draw(st.integers(0, 10_000)), draw(st.integers(0, 150))))
    for _ in range(draw(st.integers(0, 6))):
        customer = draw(st.sampled_from(["c1", "c2", "n1", "ünï", 'quo"te', "x,y"]))
        at = T0 + timedelta(seconds=draw(st.integers(0, 10**6)))
        kind = draw(st.sampled_from(["register", "link", "forget"]))
        try:
            if kind == "register":
                attributes = draw(st.dictionaries(st.sampled_from(["a", "b", "ü"]), ATTRIBUTE))
                g.register(customer, attributes, at=at)
            elif kind == "link":
                g.link(customer, Link(draw(st.sampled_from(["email", "crm"])), draw(NAMES)), at=at)
            else:
                g.forget(customer, at=at)
        except (IdentityGraphError, ValueError):
            pass  # refused (a conflict, an unknown customer...): the rest goes on
    return g


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_a_restored_state_equals_the_captured_one(g: IdentityGraph) -> None:
    assert_same(restored(g.state), g.state)


@given(st.integers(0, 300), st.integers(0, 3), st.booleans())
def test_the_registration_indexes_and_seqs_come_back_as_numbers(
    customers: int, links_each: int, late: bool
) -> None:
    """The seqs share the indexes' int objects: below, at and beyond the
    number of customers, whatever the journal's length."""
    g = IdentityGraph()
    for i in range(customers):
        for j in range(links_each):
            g.link(f"c{i}", Link("email", f"{i}.{j}@example.com"), at=T0)
    if late:
        g.register("late", {"n": 1}, at=T0)
    again = restored(g.state)
    assert_same(again, g.state)
    assert list(again.order.values()) == list(range(len(g.state.order)))


def test_a_string_holding_the_separator_is_kept_as_json() -> None:
    """No customer id or link value can hold a newline today; should one
    ever, its list is written as JSON rather than split wrongly."""
    saved = checkpoints.capture(GraphState(Limits()))
    saved["customers"] = ["a\nb", "c"]
    saved["values"] = [""]
    again = checkpoints.loads(checkpoints.encode(saved))
    assert again["customers"] == ["a\nb", "c"]
    assert again["values"] == [""]


def test_a_checkpoint_of_another_format_is_refused() -> None:
    saved = checkpoints.capture(GraphState(Limits()))
    saved["format"] = checkpoints.FORMAT + 1
    with pytest.raises(ValueError, match="checkpoint format"):
        checkpoints.restore(GraphState(Limits()), saved)


# ----------------------------------------------------------- older formats


def format_3_row() -> tuple[int, int, bytes]:
    conn = sqlite3.connect(f"{FORMAT_3_STORE.resolve().as_uri()}?mode=ro", uri=True)
    try:
        seq, fmt, state = conn.execute("SELECT seq, format, state FROM ig_checkpoints").fetchone()
    finally:
        conn.close()
    return int(seq), int(fmt), bytes(state)


def test_the_format_3_fixture_is_what_it_says() -> None:
    seq, fmt, state = format_3_row()
    saved = checkpoints.loads(state)
    assert (seq, fmt, saved["format"], saved["seq"]) == (89, 3, 3, 89)
    assert any(count > 1 for count in saved["h_count"])  # a link that changed hands
    assert any(count > 1 for count in saved["c_count"])  # a customer with several links
    assert saved["s_customers"] and saved["s_links"] and saved["frozen"] and saved["moves"]
    assert {merge[-1] for merge in saved["merges"]} == {True, False}
    assert len({type(value) for value in saved["a_value"]}) >= 4


def test_a_format_3_store_opens_as_its_journal_replayed(tmp_path: Path) -> None:
    from_checkpoint, replayed = tmp_path / "checkpoint.db", tmp_path / "replayed.db"
    shutil.copy(FORMAT_3_STORE, from_checkpoint)
    shutil.copy(FORMAT_3_STORE, replayed)
    conn = sqlite3.connect(replayed)
    conn.execute("DELETE FROM ig_checkpoints")
    conn.commit()
    conn.close()
    with (
        IdentityGraph.open(str(from_checkpoint), limits=LIMITS) as got,
        IdentityGraph.open(str(replayed), limits=LIMITS, checkpoint_every=10**9) as expected,
    ):
        assert got.state.comparable() == expected.state.comparable()
        assert got == expected
        assert got.verify() == len(expected.state.journal) == 90
        # The next checkpoint is written in today's format, and reads back.
        assert got.checkpoint() == 90
    conn = sqlite3.connect(from_checkpoint)
    (fmt,) = conn.execute("SELECT format FROM ig_checkpoints").fetchone()
    # The store was migrated to the schema version that tells an older
    # library, up front, that it cannot read this store's checkpoints.
    meta = dict(conn.execute("SELECT key, value FROM ig_meta").fetchall())
    conn.close()
    assert fmt == checkpoints.FORMAT
    assert meta["schema_version"] == "5" and meta["checkpoint_format"] == str(fmt)
    with (
        IdentityGraph.open(str(from_checkpoint), limits=LIMITS) as got,
        IdentityGraph.open(str(replayed), limits=LIMITS, checkpoint_every=10**9) as expected,
    ):
        assert got.state.comparable() == expected.state.comparable()


def test_a_format_2_checkpoint_is_restored_with_an_empty_suppression_list() -> None:
    """Format 2 is format 3 without the suppression list (written before
    ``forget`` existed)."""
    _seq, _fmt, state = format_3_row()
    three = checkpoints.loads(state)
    two: dict[str, Any] = json.loads(zlib.decompress(state))
    two["format"] = 2
    for key in ("s_customers", "s_links", "s_events"):
        del two[key]
    got, expected = GraphState(LIMITS), GraphState(LIMITS)
    assert checkpoints.restore(got, two) == checkpoints.restore(expected, three) == 89
    assert got.suppression.state() == ([], [], [])
    assert expected.suppression.state() != ([], [], [])
    a, b = got.comparable(), expected.comparable()
    del a["suppressed"], b["suppressed"]
    assert a == b


def test_format_4_keeps_the_times_and_values_of_format_3() -> None:
    """Re-saving a restored format-3 state loses nothing: the same state."""
    _seq, _fmt, state = format_3_row()
    expected = GraphState(LIMITS)
    checkpoints.restore(expected, checkpoints.loads(state))
    saved = checkpoints.capture(expected)
    saved["seq"] = 89  # the restored state holds no journal to count
    got = GraphState(LIMITS)
    assert checkpoints.restore(got, checkpoints.loads(checkpoints.encode(saved))) == 89
    assert_same(got, expected)
    assert [type(r[0]) for r in got.attributes_of("c-attrs").values()] == [
        type(r[0]) for r in expected.attributes_of("c-attrs").values()
    ]
    assert Decimal("12.50") in [r[0] for r in got.attributes_of("c-attrs").values()]
