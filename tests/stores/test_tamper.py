"""Corrupt or tampered stores are detected, never served.

Each test writes a real store (a SQLite file, a PostgreSQL schema) through
the library, then damages it behind the library's back with plain SQL (or
by overwriting bytes of the SQLite file) and opens it again.  Opening, or
the first read of the damaged rows, must raise ``StoreError`` naming the
table and the row; no other exception, no graph served from part of the
rows, and nothing written on top (the tables are compared before and after).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph import Event, IdentityGraph, Link
from identity_graph.errors import StoreError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TABLES = ("ig_meta", "ig_journal", "ig_events", "ig_refusals", "ig_checkpoints")


def execute(target: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """One statement over a plain connection (``?`` placeholders), bypassing the library."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


def dump(target: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for "nothing was written" checks."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            return {
                table: [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
                for table in TABLES
            }
    conn = sqlite3.connect(target)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES
        }
    finally:
        conn.close()


def fill(target: str, checkpoint: bool = False, entries: int = 8) -> dict[str, Any]:
    """A small graph with journal entries, events and a refusal; its snapshot."""
    with IdentityGraph.open(target, checkpoint_every=10**9) as g:
        for i in range(entries):
            g.link(f"c{i}", Link("email", f"p{i}@example.com"), at=T0 + timedelta(hours=i))
        g.record(Event("visit", at=T0, customer_id="c1", id="v1"))
        g.record(Event("visit", at=T0, customer_id="c2", id="v2", data={"n": 1}))
        g.record(Event("visit", at=T0, customer_id="c3", id="v3"))
        with pytest.raises(ValueError):
            g.link("c9", Link("email", "n/a"), at=T0)  # a refusal row
        with pytest.raises(ValueError):
            g.link("c9", Link("email", "none"), at=T0)
        if checkpoint:
            g.checkpoint()
        return served(g)


def served(g: IdentityGraph) -> dict[str, Any]:
    """Everything a graph serves: state, journal, events, refusals."""
    return {
        "state": g._state(),
        "journal": list(g.journal()),
        "events": [(e.id, e.data) for c in g.customers() for e in g.events(c)],
        "refusals": [(r.op, r.reason) for r in g.refusals()],
    }


def open_and_serve(target: str) -> dict[str, Any]:
    with IdentityGraph.open(target, checkpoint_every=10**9) as g:
        return served(g)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "graph.db")
    else:
        yield request.getfixturevalue("postgres_url")


def refused(target: str, *words: str) -> str:
    """Open ``target`` and read everything: it must raise StoreError naming
    ``words``, and leave every table as it was."""
    before = dump(target)
    with pytest.raises(StoreError) as info:
        open_and_serve(target)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert dump(target) == before, "the failed open wrote to the store"
    return message


# --------------------------------------------------------------- journal rows


@pytest.mark.parametrize("checkpoint", [False, True], ids=["no-checkpoint", "checkpoint"])
@pytest.mark.parametrize("seq", [1, 2, 3, 7])
def test_a_deleted_journal_row_is_a_gap(target: str, seq: int, checkpoint: bool) -> None:
    fill(target, checkpoint)
    execute(target, "DELETE FROM ig_journal WHERE seq = ?", (seq,))
    refused(target, "ig_journal", f"{seq}")


def test_a_deleted_last_journal_row_is_missing(target: str) -> None:
    fill(target)
    execute(target, "DELETE FROM ig_journal WHERE seq = 8")
    refused(target, "ig_journal", "8")


def test_the_journal_cut_below_the_checkpoint_is_refused(target: str) -> None:
    fill(target, checkpoint=True)
    execute(target, "DELETE FROM ig_journal WHERE seq >= 6")
    refused(target, "ig_journal", "6")


def test_a_changed_seq_is_a_gap(target: str) -> None:
    fill(target)
    execute(target, "UPDATE ig_journal SET seq = 100 WHERE seq = 3")
    refused(target, "ig_journal", "3")


def test_swapped_journal_rows_are_refused(target: str) -> None:
    fill(target)
    execute(target, "UPDATE ig_journal SET seq = -1 WHERE seq = 2")
    execute(target, "UPDATE ig_journal SET seq = 2 WHERE seq = 5")
    execute(target, "UPDATE ig_journal SET seq = 5 WHERE seq = -1")
    refused(target, "ig_journal", "row 2")


def test_a_duplicated_journal_row_is_refused(target: str) -> None:
    fill(target)
    execute(
        target,
        "INSERT INTO ig_journal (seq, op, at, record) SELECT 9, op, at, record"
        " FROM ig_journal WHERE seq = 4",
    )
    refused(target, "ig_journal", "row 9")


@pytest.mark.parametrize(
    "record", ['{"t":[', "not json", '"text"', '{"t":[3,"link"]}', '{"zz":1}', "[1,2]"]
)
def test_a_garbled_journal_row_is_refused(target: str, record: str) -> None:
    fill(target)
    execute(target, "UPDATE ig_journal SET record = ? WHERE seq = 3", (record,))
    refused(target, "ig_journal", "row 3")


def test_a_garbled_journal_row_below_the_checkpoint_is_refused_when_read(target: str) -> None:
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_journal SET record = 'garbage' WHERE seq = 3")
    with IdentityGraph.open(target) as g:
        # From the checkpoint: opening never reads row 3.
        assert sorted(g.customers()) == sorted(f"c{i}" for i in range(8))
        with pytest.raises(StoreError, match="ig_journal row 3"):
            list(g.journal())


def test_a_gap_written_while_open_is_refused_at_catch_up(target: str) -> None:
    fill(target)
    with IdentityGraph.open(target) as g:
        execute(
            target,
            "INSERT INTO ig_journal (seq, op, at, record) SELECT 10, op, at, record"
            " FROM ig_journal WHERE seq = 8",
        )
        with pytest.raises(StoreError, match="ig_journal") as info:
            g.customers()
        assert "9" in str(info.value)
        before = dump(target)
        with pytest.raises(StoreError):
            g.link("c20", Link("email", "new@example.com"), at=T0)
        assert dump(target) == before, "a write went on top of the gap"


# ------------------------------------------------------- events and refusals


@pytest.mark.parametrize("column", ["body", "anchor"])
@pytest.mark.parametrize("value", ["garbage", '{"t":', "[1]", "null"])
def test_a_garbled_event_row_is_refused(target: str, column: str, value: str) -> None:
    fill(target)
    (pos,) = [row[0] for row in dump(target)["ig_events"] if row[1] == "v2"]
    execute(target, f"UPDATE ig_events SET {column} = ? WHERE id = 'v2'", (value,))
    refused(target, "ig_events", f"row {pos}")


@pytest.mark.parametrize("column", ["body", "at"])
def test_a_garbled_refusal_row_is_refused(target: str, column: str) -> None:
    fill(target)
    execute(target, f"UPDATE ig_refusals SET {column} = 'garbage' WHERE pos = 2")
    refused(target, "ig_refusals", "row 2")


# ----------------------------------------------------------------- checkpoint


@pytest.mark.parametrize(
    "state",
    [
        b"\x00\x11\x22\x33",
        zlib.compress(b"not json"),
        zlib.compress(b'{"format":2}'),
        zlib.compress(b'{"format":2,"seq":9}'),
        zlib.compress(b"[1,2]"),
    ],
    ids=["not-zlib", "not-json", "no-fields", "wrong-seq", "not-an-object"],
)
def test_a_garbled_checkpoint_is_refused(target: str, state: bytes) -> None:
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_checkpoints SET state = ?", (state,))
    refused(target, "ig_checkpoints", "row 8")


def test_a_checkpoint_beyond_the_journal_is_refused(target: str) -> None:
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_checkpoints SET seq = 12")
    refused(target, "ig_checkpoints", "12")


# -------------------------------------------------------------- schema version


@pytest.mark.parametrize("value", ["2.0", "x", "", " 2", "-1", "0", "9" * 40])
def test_a_garbled_schema_version_is_refused(target: str, value: str) -> None:
    fill(target)
    execute(target, "UPDATE ig_meta SET value = ? WHERE key = 'schema_version'", (value,))
    refused(target, "ig_meta", "schema_version")


# ------------------------------------------------------------- SQLite pages


def _pages(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("page", [0, 1, 2, 3, 4, 5, 6, 7, -1])
def test_a_garbled_sqlite_page_is_refused_or_harmless(tmp_path: Path, page: int) -> None:
    """Random bytes over one whole page: opening refuses the file, or (a page
    no table uses) serves exactly what was written.  Never part of it."""
    path = tmp_path / "graph.db"
    expected = fill(str(path), entries=60)
    pages = _pages(path)
    number = page % pages
    size = 4096
    data = bytearray(path.read_bytes())
    data[number * size : (number + 1) * size] = random.Random(page).randbytes(size)
    path.write_bytes(bytes(data))
    try:
        got = open_and_serve(str(path))
    except StoreError as error:
        assert str(path) in str(error)
        assert path.read_bytes() == bytes(data), "the failed open wrote to the file"
    else:
        assert got == expected


def test_the_sqlite_store_runs_quick_check_at_open(tmp_path: Path) -> None:
    """A page SQLite never reads at open (an event table's page) is still
    caught: the quick check reads every page."""
    path = tmp_path / "graph.db"
    with IdentityGraph.open(path) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
        g.record_many(
            Event("visit", at=T0, customer_id="c1", id=f"v{i}", data={"pad": "x" * 200})
            for i in range(200)
        )
    conn = sqlite3.connect(path)
    try:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'ig_events'"
        ).fetchone()
    finally:
        conn.close()
    data = bytearray(path.read_bytes())
    # The events table's root page (an interior page: its children hold the rows).
    start = (root - 1) * 4096
    data[start + 100 : start + 4096] = random.Random(1).randbytes(3996)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"damaged \(PRAGMA quick_check\)") as info:
        IdentityGraph.open(path).close()
    assert "ig_events" in str(info.value)  # the damaged tree, by its table's name


def test_small_garbles_anywhere_in_a_sqlite_file_are_refused_or_harmless(tmp_path: Path) -> None:
    """A few random bytes at many places of a 420-entry store (before the
    checks, such garbles served 384 of 420 entries, or raised JSONDecodeError,
    KeyError or InvalidLink)."""
    path = tmp_path / "graph.db"
    expected = fill(str(path), entries=420)
    original = path.read_bytes()
    rng = random.Random(14)
    outcomes = {"refused": 0, "same": 0}
    for _ in range(60):
        data = bytearray(original)
        offset, length = rng.randrange(100, len(data) - 64), rng.choice([1, 8, 64])
        data[offset : offset + length] = rng.randbytes(length)
        path.write_bytes(bytes(data))
        try:
            got = open_and_serve(str(path))
        except StoreError:
            outcomes["refused"] += 1
            assert path.read_bytes() == bytes(data), f"the failed open wrote (offset {offset})"
        else:
            assert got == expected, f"a garble at offset {offset} served another graph"
            outcomes["same"] += 1
    assert outcomes["refused"] > 30, outcomes  # most garbles hit rows or structure


# ------------------------------------------------------ any damage to the rows


@pytest.fixture(scope="module")
def random_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, tuple[Path, Any]]:
    """A store written by random calls, without and with a checkpoint half
    way, and what each serves."""
    from identity_graph.testing import apply, random_operations

    stores = {}
    for checkpoint in (False, True):
        path = tmp_path_factory.mktemp("random") / "graph.db"
        with IdentityGraph.open(path, synchronous="NORMAL", checkpoint_every=10**9) as g:
            operations = list(random_operations(5, 80))
            apply(g, iter(operations[:40]))
            if checkpoint:
                g.checkpoint()
            apply(g, iter(operations[40:]))
        stores[checkpoint] = (path, open_and_serve(str(path)))
    return stores


@st.composite
def damage(draw: st.DrawFn, n: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements that delete, duplicate or permute some of ``n`` journal rows."""
    seqs = st.integers(1, n)
    kind = draw(st.sampled_from(["delete", "duplicate", "copy-over", "permute"]))
    chosen = draw(st.lists(seqs, min_size=1, max_size=5, unique=True))
    if kind == "delete":
        return [("DELETE FROM ig_journal WHERE seq = ?", (seq,)) for seq in chosen]
    if kind == "duplicate":  # copies appended after the last row
        return [
            (
                "INSERT INTO ig_journal (seq, op, at, record)"
                " SELECT ?, op, at, record FROM ig_journal WHERE seq = ?",
                (n + 1 + i, seq),
            )
            for i, seq in enumerate(chosen)
        ]
    if kind == "copy-over":  # one row's content over others
        source = draw(seqs)
        return [
            (
                "UPDATE ig_journal SET (op, at, record) ="
                " (SELECT op, at, record FROM ig_journal WHERE seq = ?) WHERE seq = ?",
                (source, seq),
            )
            for seq in chosen
        ]
    order = draw(st.permutations(chosen))
    # Through negative seqs, so the primary key never sees two rows at once.
    return [("UPDATE ig_journal SET seq = ? WHERE seq = ?", (-seq, seq)) for seq in chosen] + [
        ("UPDATE ig_journal SET seq = ? WHERE seq = ?", (new, -old))
        for old, new in zip(chosen, order, strict=True)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), checkpoint=st.booleans())
def test_any_damage_to_journal_rows_is_refused_or_changes_nothing(
    random_stores: dict[bool, tuple[Path, Any]], data: st.DataObject, checkpoint: bool
) -> None:
    """Delete, duplicate, copy over or permute any rows: opening and reading
    either serves exactly what was written or raises StoreError; never
    another exception, never a graph missing or reordering entries."""
    source, expected = random_stores[checkpoint]
    n = len(expected["journal"])
    statements = data.draw(damage(n))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "graph.db"
        shutil.copy(source, path)
        for statement, params in statements:
            execute(str(path), statement, params)
        before = dump(str(path))
        try:
            got = open_and_serve(str(path))
        except StoreError as error:
            assert "ig_journal" in str(error) or "ig_checkpoints" in str(error), str(error)
            assert dump(str(path)) == before, "the failed open wrote to the store"
        else:
            assert got == expected


# ------------------------------------------------------------- verify and CLI


def test_verify_checks_every_row_and_the_checkpoint_against_the_journal(
    target: str, tmp_path: Path
) -> None:
    fill(target, checkpoint=True)
    with IdentityGraph.open(target) as g:
        assert g.verify() == 8
    # A checkpoint of another graph, at the same seq: it decodes, so opening
    # trusts it; only replaying the journal tells.
    other = str(tmp_path / "other.db")
    with IdentityGraph.open(other) as g:
        for i in range(8):
            g.link(f"x{i}", Link("email", f"x{i}@example.com"), at=T0)
        g.checkpoint()
    (row,) = dump(other)["ig_checkpoints"]
    execute(target, "UPDATE ig_checkpoints SET state = ?", (bytes(row[2]),))
    with (
        IdentityGraph.open(target) as g,
        pytest.raises(StoreError, match="ig_checkpoints disagrees with the journal"),
    ):
        g.verify()


def test_verify_reads_the_rows_opening_skips(target: str) -> None:
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_journal SET record = 'garbage' WHERE seq = 2")
    with IdentityGraph.open(target) as g, pytest.raises(StoreError, match="ig_journal row 2"):
        g.verify()


def test_the_cli_reports_a_damaged_store_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from identity_graph.cli import main

    path = str(tmp_path / "graph.db")
    fill(path, checkpoint=True)
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--db", path])
    assert exit_.value.code == 0
    assert "no damage found (8 journal entries checked)" in capsys.readouterr().out
    execute(path, "UPDATE ig_checkpoints SET state = ?", (b"\x00\x11",))
    for command in (["resolve", "c1"], ["verify"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--db", path])
        assert exit_.value.code == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "StoreError" in err and "ig_checkpoints row 8" in err, err
