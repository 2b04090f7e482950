"""link_table and merge_table: reading the columns, and equal, entry for
entry, to the same calls made one by one."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Limits, Link, LinkType
from identity_graph.errors import IdentityGraphError, StoreError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(days=d) for d in range(6)]
DEFAULT = TIMES[3]  # the call's at: rows without one fall between the set-up's times
CUSTOMERS = ["c0", "c1", "c2", "c3", " c1 ", "", "x" * 300, 7, "gone", "new-1", "new-2"]
VALUES = {
    "email": ["a@x.com", "A@X.com", "b@x.com", "c@x.com", "null@example.com", "bad", 5, None, ""],
    "phone": ["+358401234567", "+358 40 123 4567", "+358409999999", "123", None],
    "loyalty_card": ["card-1", "CARD-1", "card-2", "card-3", None, ""],
}
REASONS = ["", "same person", None, "bad\x00reason", 3]


def _graph(policy: str, limits: Limits, store: Path | None = None) -> IdentityGraph:
    types = {
        "email": LinkType(conflict=policy),  # type: ignore[arg-type]
        "loyalty_card": LinkType(max_per_customer=1),
    }
    if store is None:
        return IdentityGraph(link_types=types, limits=limits, secret=b"k" * 16)
    return IdentityGraph.open(
        store, link_types=types, limits=limits, secret=b"k" * 16, batch_size=2
    )


def _set_up(g: IdentityGraph, forget: bool) -> None:
    """The same past for both graphs: customers, claimed links (some moved
    to the limit of the move guard), a merge, perhaps an erased customer."""
    steps: list[Any] = [
        *(lambda c=c: g.register(c, at=TIMES[0]) for c in ("c0", "c1", "c2", "c3", "gone")),
        lambda: g.link("c0", Link("email", "a@x.com"), at=TIMES[1]),
        lambda: g.link("gone", Link("email", "gone@x.com"), at=TIMES[1]),
        lambda: g.link("c2", Link("loyalty_card", "card-2"), at=TIMES[2]),
        lambda: g.relink(Link("phone", "+358401234567"), "c1", at=TIMES[4]),
        lambda: g.relink(Link("phone", "+358401234567"), "c2", at=TIMES[5]),
        lambda: g.merge("c2", "c3", at=TIMES[2]),
    ]
    if forget:
        steps.append(lambda: g.forget("gone", at=TIMES[2]))
    for step in steps:
        # Refused under these limits: the same for both graphs.
        with contextlib.suppress(IdentityGraphError):
            step()


def _cells(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = ["customer_id", "at", "email", "phone", "loyalty_card"]
    return {name: [row.get(name) for row in rows] for name in names}


link_rows = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from(CUSTOMERS),
            "at": st.sampled_from([None, *TIMES]),
            **{name: st.sampled_from(values) for name, values in VALUES.items()},
        }
    ),
    max_size=12,
)
merge_rows = st.lists(
    st.fixed_dictionaries(
        {
            "a": st.sampled_from(CUSTOMERS),
            "b": st.sampled_from(CUSTOMERS),
            "reason": st.sampled_from(REASONS),
            "at": st.sampled_from([None, *TIMES]),
        }
    ),
    max_size=6,
)
limits = st.builds(
    Limits,
    max_links_per_customer=st.integers(1, 4),
    max_customers_per_profile=st.integers(2, 4),
    max_moves=st.integers(1, 3),
    move_window=st.just(timedelta(days=30)),
)


def _link_one_by_one(
    g: IdentityGraph, table: dict[str, list[Any]]
) -> tuple[int, int, list[tuple[int, str, Exception]]]:
    changed = unchanged = 0
    refused: list[tuple[int, str, Exception]] = []
    for row, customer in enumerate(table["customer_id"]):
        at = table["at"][row] or DEFAULT
        for name in ("email", "phone", "loyalty_card"):
            value = table[name][row]
            if value is None or value == "":
                continue
            try:
                if g.link(customer, Link(name, value), at=at) is None:
                    unchanged += 1
                else:
                    changed += 1
            except IdentityGraphError as error:
                refused.append((row, name, error))
    return changed, unchanged, refused


def _merge_one_by_one(
    g: IdentityGraph, table: dict[str, list[Any]]
) -> tuple[int, int, list[tuple[int, Exception]]]:
    merged = unchanged = 0
    refused: list[tuple[int, Exception]] = []
    for row, (a, b) in enumerate(zip(table["a"], table["b"], strict=True)):
        reason = table["reason"][row]
        try:
            if g.merge(a, b, "" if reason is None else reason, at=table["at"][row] or DEFAULT):
                merged += 1
            else:
                unchanged += 1
        except (IdentityGraphError, TypeError, ValueError) as error:
            refused.append((row, error))
    return merged, unchanged, refused


def _shown(refused: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*where, type(error).__name__, str(error)) for *where, error in refused]


def _assert_same(bulk: IdentityGraph, calls: IdentityGraph) -> None:
    assert list(bulk.journal()) == list(calls.journal())
    assert bulk.refusals() == calls.refusals()
    assert bulk.frozen_links() == calls.frozen_links()
    assert bulk == calls
    bulk._check()


def _run(
    bulk: IdentityGraph,
    calls: IdentityGraph,
    links: list[dict[str, Any]],
    merges: list[dict[str, Any]],
    more: list[dict[str, Any]],
) -> None:
    for rows, kind in ((links, "link"), (merges, "merge"), (more, "link")):
        if kind == "link":
            table = _cells(rows)
            refused_links: list[tuple[int, str, Exception]] = []
            counts = bulk.link_table(table, at=DEFAULT, refused=refused_links)
            expected = _link_one_by_one(calls, table)
            assert (*counts, _shown(refused_links)) == (*expected[:2], _shown(expected[2]))
        else:
            table = {name: [row[name] for row in rows] for name in ("a", "b", "reason", "at")}
            refused_merges: list[tuple[int, Exception]] = []
            counts = bulk.merge_table(table, at=DEFAULT, refused=refused_merges)
            expected_merges = _merge_one_by_one(calls, table)
            assert (*counts, _shown(refused_merges)) == (
                *expected_merges[:2],
                _shown(expected_merges[2]),
            )
        _assert_same(bulk, calls)


@given(
    policy=st.sampled_from(["move", "merge", "reject"]),
    limits=limits,
    forget=st.booleans(),
    links=link_rows,
    merges=merge_rows,
    more=link_rows,
)
def test_tables_equal_the_same_calls_one_by_one(
    policy: str,
    limits: Limits,
    forget: bool,
    links: list[dict[str, Any]],
    merges: list[dict[str, Any]],
    more: list[dict[str, Any]],
) -> None:
    bulk, calls = _graph(policy, limits), _graph(policy, limits)
    for g in (bulk, calls):
        _set_up(g, forget)
    _run(bulk, calls, links, merges, more)


@settings(max_examples=5)
@given(links=link_rows, merges=merge_rows, more=link_rows)
def test_tables_on_a_store_equal_the_same_calls_in_memory(
    tmp_path_factory: pytest.TempPathFactory,
    links: list[dict[str, Any]],
    merges: list[dict[str, Any]],
    more: list[dict[str, Any]],
) -> None:
    store = tmp_path_factory.mktemp("store") / "graph.db"
    limits = Limits(max_customers_per_profile=3, max_moves=2)
    with _graph("merge", limits, store) as bulk:
        calls = _graph("merge", limits)
        for g in (bulk, calls):
            _set_up(g, forget=True)
        _run(bulk, calls, links, merges, more)
    with _graph("merge", limits, store) as reopened:
        assert reopened == calls  # what the chunks' transactions wrote


def test_a_table_of_new_customers_and_new_links_journals_each_link() -> None:
    g = IdentityGraph()
    table = {"customer_id": ["a", "b"], "email": ["A@x.com", None], "phone": ["", "+358401234567"]}
    assert g.link_table(table, at=T0) == (2, 0)
    entries = list(g.journal())
    assert [(e.op, dict(e.args)) for e in entries] == [
        ("link", {"customer_id": "a", "link": Link("email", "a@x.com"), "raw": "A@x.com"}),
        ("link", {"customer_id": "b", "link": Link("phone", "+358401234567")}),
    ]
    assert [c.kind for c in entries[0].changes] == ["created", "link_moved"]
    assert g.link_table(table, at=T0) == (0, 2)  # linked already: nothing changes


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"customer_id": ["a"], "emial": ["a@x.com"]}, "column 'emial' is not one"),
        ({"email": ["a@x.com"]}, "needs a 'customer_id' column"),
        ({"customer_id": ["a", "b"], "email": ["a@x.com"]}, "column 'email' has 1 rows"),
        ({"customer_id": ["a"], "at": [datetime(2024, 1, 1)]}, "column 'at', row 0"),
        ({"customer_id": ["a"], "at": ["2024-01-01"]}, "column 'at', row 0"),
        ({"customer_id": "abc"}, "column 'customer_id' is a str"),
        ({1: ["a"]}, "column name 1 is not a string"),
    ],
)
def test_a_table_that_cannot_be_read_writes_nothing(table: Any, message: str) -> None:
    g = IdentityGraph()
    g.register("z", at=T0)
    with pytest.raises(ValueError, match=message):
        g.link_table(table, at=T0)
    assert len(list(g.journal())) == 1


def test_a_merge_table_needs_a_and_b_and_known_columns() -> None:
    g = IdentityGraph()
    with pytest.raises(ValueError, match="needs columns 'a' and 'b'"):
        g.merge_table({"a": ["x"]})
    with pytest.raises(ValueError, match="column 'why' is not one"):
        g.merge_table({"a": ["x"], "b": ["y"], "why": ["z"]})
    with pytest.raises(TypeError, match="mapping of column names"):
        g.merge_table([("x", "y")])


def test_times_in_another_zone_and_the_clock_read_once() -> None:
    readings: list[datetime] = []

    def clock() -> datetime:
        readings.append(T0 + timedelta(hours=len(readings)))
        return readings[-1]

    g = IdentityGraph(clock=clock)
    helsinki = timezone(timedelta(hours=2))
    table = {
        "customer_id": ["a", "b", "c"],
        "at": [datetime(2024, 3, 1, 12, tzinfo=helsinki), None, None],
        "email": ["a@x.com", "b@x.com", "c@x.com"],
    }
    assert g.link_table(table) == (3, 0)
    assert len(readings) == 1  # one reading for the whole call
    assert [e.at for e in g.journal()] == [datetime(2024, 3, 1, 10, tzinfo=UTC), T0, T0]


def test_polars_and_to_pydict_tables() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "at": [datetime(2024, 1, 2), datetime(2024, 1, 3)],
            "email": ["a@x.com", None],
        }
    )
    g = IdentityGraph()
    with pytest.raises(ValueError, match="polars Datetime without a time zone"):
        g.link_table(frame)
    zoned = frame.with_columns(pl.col("at").dt.replace_time_zone("Europe/Helsinki"))
    assert g.link_table(zoned) == (1, 0)
    assert [e.at for e in g.journal()] == [datetime(2024, 1, 1, 22, tzinfo=UTC)]

    class Arrowish:
        def to_pydict(self) -> dict[str, list[Any]]:
            return {"a": ["a"], "b": ["b"]}

    g.link("b", Link("email", "b@x.com"), at=T0)
    refused: list[tuple[int, Exception]] = []
    assert g.merge_table(Arrowish(), at=T0, refused=refused) == (1, 0)
    assert g.resolve("b") == "a" and refused == []


def test_a_store_failure_is_not_a_refused_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    g = IdentityGraph()

    def fail(*_args: Any) -> None:
        raise StoreError("the disk is gone")

    monkeypatch.setattr(g, "_link", fail)
    with pytest.raises(StoreError):
        g.link_table({"customer_id": [7], "email": ["a@x.com"]}, at=T0)
