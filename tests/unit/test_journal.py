"""The journal and the change feed: journal.py through the graph."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity_graph import Entry, IdentityGraph, Link, LinkType, ProfileChange
from identity_graph.errors import IdentityGraphError
from identity_graph.journal import Journal, raw


def d(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


EMAIL = Link("email", "Ann@Example.com")
EMAIL_N = Link("email", "ann@example.com")
PHONE = Link("phone", "+358401234567")


def test_journal_class_append_and_read() -> None:
    j = Journal()
    assert len(j) == 0
    assert j.next_seq() == 1
    seq = j.append("unlink", {"link": Link("crm_id", "x")}, d(1), [])
    assert seq == 1
    assert j.next_seq() == 2
    entry = j.entry(1)
    assert entry == Entry(1, "unlink", entry.args, d(1), ())
    assert entry.args["link"] == Link("crm_id", "x")
    assert j.raw(1) == ("unlink", {"link": ("crm_id", "x")}, d(1))


def test_journal_entries_since() -> None:
    j = Journal()
    for day in (1, 2, 3):
        j.append("register", {"customer_id": f"c{day}"}, d(day), [])
    assert [e.seq for e in j.entries()] == [1, 2, 3]
    assert [e.seq for e in j.entries(since=2)] == [3]
    assert [e.seq for e in j.entries(since=3)] == []
    assert [e.seq for e in j.entries(since=-5)] == [1, 2, 3]


def test_entry_args_are_read_only() -> None:
    g = IdentityGraph()
    entry = g.register("c1", at=d(1))
    assert entry is not None
    with pytest.raises(TypeError):
        entry.args["customer_id"] = "c2"  # type: ignore[index]


def build() -> IdentityGraph:
    g = IdentityGraph()
    g.register("c1", {"first_name": "Ann"}, at=d(1))  # 1
    g.link("c1", EMAIL, at=d(2))  # 2
    g.link("c2", PHONE, at=d(3))  # 3
    g.merge("c1", "c2", reason="same person", at=d(4))  # 4
    g.relink(EMAIL, to="c3", at=d(5))  # 5
    g.unlink(PHONE, at=d(6))  # 6
    g.split("m4", at=d(7))  # 7
    return g


def test_seqs_gap_free_from_one() -> None:
    g = build()
    entries = list(g.journal())
    assert [e.seq for e in entries] == list(range(1, 8))
    assert [e.op for e in entries] == [
        "register",
        "link",
        "link",
        "merge",
        "relink",
        "unlink",
        "split",
    ]
    assert [e.at for e in entries] == [d(i) for i in range(1, 8)]


def test_no_op_calls_append_nothing() -> None:
    g = build()
    n = len(list(g.journal()))
    assert g.register("c1", {"first_name": "Ann"}, at=d(1)) is None  # same value, same time
    assert g.register("c1", {"first_name": "Ann"}, at=d(1) - timedelta(hours=1)) is None  # earlier
    assert g.link("c3", EMAIL, at=d(9)) is None
    assert g.unlink(PHONE, at=d(9)) is None
    assert g.split("m4", at=d(9)) is None
    assert g.detach("c1", at=d(9)) is None
    g.resolve("c1")
    g.profile("c2")
    list(g.profiles())
    g.owner(EMAIL)
    g.history(EMAIL)
    g.changes()
    assert len(list(g.journal())) == n


def test_entry_args_as_decided() -> None:
    entries = list(build().journal())
    assert dict(entries[0].args) == {"customer_id": "c1", "attributes": {"first_name": "Ann"}}
    # normalised link; raw kept because it differs
    assert dict(entries[1].args) == {"customer_id": "c1", "link": EMAIL_N, "raw": EMAIL.value}
    # raw equal to the normalised value is not kept
    assert dict(entries[2].args) == {"customer_id": "c2", "link": PHONE}
    assert dict(entries[3].args) == {
        "a": "c1",
        "b": "c2",
        "reason": "same person",
        "merge_id": "m4",
    }
    assert dict(entries[4].args) == {"customer_id": "c3", "link": EMAIL_N, "raw": EMAIL.value}
    assert dict(entries[5].args) == {"link": PHONE}
    assert dict(entries[6].args) == {"merge_id": "m4"}


def test_entry_args_use_stripped_customer_ids() -> None:
    g = IdentityGraph()
    entry = g.link("  c1 ", PHONE, at=d(1))
    assert entry is not None
    assert entry.args["customer_id"] == "c1"


def test_merge_id_is_m_and_seq() -> None:
    g = IdentityGraph()
    for c in ("a", "b", "c"):
        g.register(c, at=d(1))
    g.link("a", PHONE, at=d(1))
    m = g.merge("a", "b", at=d(2))
    assert m == "m5"
    assert list(g.journal())[-1].args["merge_id"] == "m5"
    m2 = g.merge("c", "a", at=d(2))
    assert m2 == "m6"


def test_returned_entry_is_the_journal_entry() -> None:
    g = IdentityGraph()
    entry = g.link("c1", EMAIL, at=d(1))
    assert entry == next(g.journal())
    assert entry is not None and entry.seq == 1


def test_change_created() -> None:
    g = IdentityGraph()
    entry = g.register("c1", at=d(1))
    assert entry is not None
    assert entry.changes == (ProfileChange(1, "created", (), ("c1",)),)


def test_change_created_and_link_moved_from_anonymous() -> None:
    g = IdentityGraph()
    entry = g.link("c1", EMAIL, at=d(1))
    assert entry is not None
    assert entry.changes == (
        ProfileChange(1, "created", (), ("c1",)),
        ProfileChange(1, "link_moved", (EMAIL_N,), ("c1",), EMAIL_N),
    )


def test_change_merged() -> None:
    g = IdentityGraph()
    g.register("old", at=d(1))
    g.register("new", at=d(1))
    g.merge("new", "old", at=d(2))
    assert g.changes(since=2) == [ProfileChange(3, "merged", ("new", "old"), ("old",))]


def test_change_split_parts_oldest_first() -> None:
    g = IdentityGraph()
    for c in ("a", "b", "c"):
        g.register(c, at=d(1))
    g.merge("c", "b", at=d(2))  # m4
    g.merge("b", "a", at=d(2))  # m5
    entry = g.split("m4", at=d(3))
    assert entry is not None
    assert entry.changes == (ProfileChange(6, "split", ("a",), ("a", "c")),)


def test_change_detach() -> None:
    g = IdentityGraph()
    for c in ("a", "b", "c"):
        g.register(c, at=d(1))
    g.merge("a", "b", at=d(2))  # m4
    g.merge("a", "c", at=d(2))  # m5
    entry = g.detach("a", at=d(3))
    assert entry is not None
    assert entry.op == "detach"
    assert dict(entry.args) == {"customer_id": "a", "merge_ids": ("m4", "m5")}
    assert entry.changes == (ProfileChange(6, "split", ("a",), ("a", "b", "c")),)


def test_change_link_moved_between_customers_and_to_anonymous() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(1))
    moved = g.relink(EMAIL, to="c2", at=d(2))
    assert moved is not None
    assert moved.changes == (
        ProfileChange(2, "created", (), ("c2",)),
        ProfileChange(2, "link_moved", ("c1",), ("c2",), EMAIL_N),
    )
    unlinked = g.unlink(EMAIL, at=d(3))
    assert unlinked is not None
    assert unlinked.changes == (ProfileChange(3, "link_moved", ("c2",), (EMAIL_N,), EMAIL_N),)


def test_change_link_moved_reports_profile_ids() -> None:
    g = IdentityGraph()
    g.register("a", at=d(1))
    g.register("b", at=d(1))
    g.merge("a", "b", at=d(1))
    g.link("c", EMAIL, at=d(2))
    entry = g.relink(EMAIL, to="b", at=d(3))
    assert entry is not None
    assert entry.changes[-1] == ProfileChange(5, "link_moved", ("c",), ("a",), EMAIL_N)


def test_change_link_history_for_late_arriving_point() -> None:
    g = IdentityGraph()
    g.link("c1", EMAIL, at=d(10))
    entry = g.link("c2", EMAIL, at=d(2))
    assert entry is not None
    kinds = [c.kind for c in entry.changes]
    assert kinds == ["created", "link_history"]
    change = entry.changes[-1]
    assert change.before == ()
    assert change.link == EMAIL_N
    assert "c1" in change.after
    assert "c2" in change.after


def test_change_link_history_within_one_profile() -> None:
    g = IdentityGraph()
    g.register("a", at=d(1))
    g.register("b", at=d(1))
    g.merge("a", "b", at=d(1))
    g.link("a", EMAIL, at=d(2))
    entry = g.relink(EMAIL, to="b", at=d(3))
    assert entry is not None
    assert entry.changes == (ProfileChange(5, "link_history", (), ("a",), EMAIL_N),)


def test_change_merge_through_shared_link() -> None:
    g = IdentityGraph(link_types={"email": LinkType(conflict="merge")})
    g.link("c1", EMAIL, at=d(1))
    entry = g.link("c2", EMAIL, at=d(2))
    assert entry is not None
    assert dict(entry.args) == {
        "customer_id": "c2",
        "link": EMAIL_N,
        "raw": EMAIL.value,
        "merge_id": "m2",
        "merged_with": "c1",
    }
    assert entry.changes == (
        ProfileChange(2, "created", (), ("c2",)),
        ProfileChange(2, "merged", ("c2", "c1"), ("c1",)),
    )


def test_changes_since() -> None:
    g = build()
    everything = g.changes()
    assert everything == [c for e in g.journal() for c in e.changes]
    assert [c.seq for c in everything] == sorted(c.seq for c in everything)
    later = g.changes(since=4)
    assert later == [c for c in everything if c.seq > 4]
    assert {c.seq for c in later} == {5, 6, 7}
    assert g.changes(since=7) == []


def test_journal_since() -> None:
    g = build()
    assert [e.seq for e in g.journal(since=5)] == [6, 7]
    assert list(g.journal(since=7)) == []
    assert [e.seq for e in g.journal(0)] == list(range(1, 8))


def test_release_entry() -> None:
    from datetime import timedelta

    from identity_graph import Limits

    g = IdentityGraph(limits=Limits(max_moves=1, move_window=timedelta(days=30)))
    g.link("a", PHONE, at=d(1))
    g.relink(PHONE, to="b", at=d(2))
    entry = g.release(PHONE, at=d(3))
    assert entry is not None
    assert (entry.seq, entry.op, dict(entry.args), entry.changes) == (
        3,
        "release",
        {"link": PHONE},
        (),
    )


def test_mutating_a_returned_entry_does_not_rewrite_the_journal() -> None:
    g = IdentityGraph()
    entry = g.register("c1", {"first_name": "Ann"}, at=d(1))
    assert entry is not None
    with contextlib.suppress(TypeError):  # a read-only mapping is a fine answer too
        entry.args["attributes"]["first_name"] = "Mallory"
    assert next(g.journal()).args["attributes"] == {"first_name": "Ann"}
    assert g.as_of(1).profile("c1").attributes == {"first_name": "Ann"}


_calls = st.lists(
    st.tuples(
        st.sampled_from(["link", "relink", "merge"]),
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["c1", "c2", "a@x.com", "A@x.com", "b@x.com", "d@x.com", "e@x.com"]),
        st.integers(1, 4),
    ),
    max_size=10,
)


@given(_calls)
def test_the_short_records_read_back_as_the_flat_ones(calls: list[Any]) -> None:
    # The in-memory journal keeps first claims and merges shorter; a replay
    # (which never makes them) must read back the very same flat records,
    # entries, raw arguments and rewritten records.
    g = IdentityGraph()
    for op, customer, other, day in calls:
        with contextlib.suppress(IdentityGraphError):
            if op == "merge" and other in ("c1", "c2"):
                g.merge(customer, other, reason="r", at=d(day))
            elif op == "relink":
                g.relink(Link("email", other), customer, at=d(day))
            else:
                g.link(customer, Link("email", other), at=d(day))
    journal = g.state.journal
    replayed = IdentityGraph.from_journal(g.journal()).state.journal
    flat = [record for _seq, record in replayed.records()]
    assert [record for _seq, record in journal.records()] == flat
    assert [journal.raw(seq) for seq in range(1, len(flat) + 1)] == [raw(r) for r in flat]
    for seq, record in enumerate(flat, 1):
        assert journal.entry(seq) == Entry.from_record(seq, record)
    seen: list[Any] = []
    journal.rewrite(lambda record: seen.append(record))
    assert seen == flat


def test_a_first_claim_and_a_merge_are_kept_short() -> None:
    g = IdentityGraph()
    g.link("a", EMAIL, at=d(1))
    g.link("b", PHONE, at=d(1))
    g.merge("a", "b", at=d(2))
    g.link("b", Link("email", "other@example.com"), at=d(3))  # profile "a"
    kept = [len(r) for r in g.state.journal._records]  # type: ignore[attr-defined]
    assert kept == [15, 3, 8, 4]  # EMAIL keeps its raw spelling: the flat record
    assert [e.op for e in g.journal()] == ["link", "link", "merge", "link"]
    replayed = IdentityGraph.from_journal(g.journal()).state.journal
    assert list(g.state.journal.records()) == list(replayed.records())
    assert list(g.journal())[3].changes[0].after == ("a",)
