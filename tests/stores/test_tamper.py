"""Corrupt or tampered stores are detected, never served.

Each test writes a real store (a SQLite file, a PostgreSQL schema) through
the library, then damages it behind the library's back with plain SQL (or
by overwriting bytes of the SQLite file) and opens it again.  Opening, or
the first read of the damaged rows, must raise ``StoreError`` naming the
table and the row; no other exception, no graph served from part of the
rows, and nothing written on top (the tables are compared before and after).
"""

from __future__ import annotations

import contextlib
import json
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
from identity_graph import checkpoint as checkpoints
from identity_graph.checkpoint import FORMAT
from identity_graph.errors import StoreError
from identity_graph.stores import LATEST

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


def pos_of(target: str, event_id: str) -> int:
    (pos,) = [row[0] for row in dump(target)["ig_events"] if row[1] == event_id]
    return int(pos)


def tampered(target: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Run ``statement``, which must change the store."""
    before = dump(target)
    execute(target, statement, params)
    assert dump(target) != before, f"{statement} changed nothing"


@pytest.mark.parametrize(
    "statement",
    [
        # An amount or a field edited in the body.
        "UPDATE ig_events SET body = replace(body, '\"n\":1', '\"n\":2') WHERE id = 'v2'",
        # The event moved to another customer.
        "UPDATE ig_events SET anchor = '\"c1\"' WHERE id = 'v2'",
        # Its number among the rows changed (see the next test for deletions).
        "UPDATE ig_events SET body = replace(body, '{\"e\":[2,', '{\"e\":[3,') WHERE id = 'v2'",
        # Cut short.
        "UPDATE ig_events SET body = substr(body, 1, length(body) - 2) WHERE id = 'v2'",
    ],
    ids=["body", "anchor", "number", "cut"],
)
def test_an_edited_event_row_is_refused(target: str, statement: str) -> None:
    fill(target)
    tampered(target, statement)
    refused(target, f"ig_events row {pos_of(target, 'v2')} is damaged")


def test_an_edited_event_with_a_content_id_is_refused(target: str) -> None:
    """Its ``h-…`` id is a hash of the content it was recorded with; the row
    holds no more proof than any other, so the checksum is what tells."""
    fill(target)
    with IdentityGraph.open(target) as g:
        g.record(Event("call", at=T0, customer_id="c1", data={"minutes": 5}))
    (row,) = [row for row in dump(target)["ig_events"] if row[2] == "call"]
    assert str(row[1]).startswith("h-")
    tampered(target, "UPDATE ig_events SET body = replace(body, ':5}', ':9}') WHERE type = 'call'")
    refused(target, f"ig_events row {row[0]} is damaged", "checksum")


def test_swapped_event_rows_are_refused(target: str) -> None:
    fill(target)
    v1, v2 = pos_of(target, "v1"), pos_of(target, "v2")
    execute(target, "UPDATE ig_events SET id = 'x' || id WHERE id IN ('v1', 'v2')")
    tampered(
        target,
        "UPDATE ig_events SET (id, type, at, anchor, body) ="
        " (SELECT substr(id, 2), type, at, anchor, body FROM ig_events o"
        "  WHERE o.pos = (CASE WHEN ig_events.pos = ? THEN ? ELSE ? END))"
        " WHERE pos IN (?, ?)",
        (v1, v2, v1, v1, v2),
    )
    refused(target, f"ig_events row {v1} is damaged", "deleted, copied or moved")


def test_a_deleted_event_row_is_refused(target: str) -> None:
    fill(target)
    v3 = pos_of(target, "v3")
    tampered(target, "DELETE FROM ig_events WHERE id = 'v2'")
    refused(target, f"ig_events row {v3} is damaged", "written as event row 3, but is event row 2")


def test_a_deleted_last_event_row_is_refused(target: str) -> None:
    fill(target)
    tampered(target, "DELETE FROM ig_events WHERE id = 'v3'")
    refused(target, "ig_events holds 2 rows, but 3 were written", "event_count", "last row")
    # The next write catches up first, and stops there.
    before = dump(target)
    with IdentityGraph.open(target) as g, pytest.raises(StoreError, match="ig_events holds 2"):
        g.record(Event("visit", at=T0, customer_id="c1", id="v4"))
    assert dump(target) == before


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("DELETE FROM ig_meta WHERE key = 'event_count'", ("ig_meta row event_count", "missing")),
        ("UPDATE ig_meta SET value = '2' WHERE key = 'event_count'", ("event_count says 2",)),
        ("UPDATE ig_meta SET value = 'x' WHERE key = 'event_count'", ("event_count holds 'x'",)),
    ],
)
def test_a_damaged_event_count_is_refused(
    target: str, statement: str, words: tuple[str, ...]
) -> None:
    fill(target)
    tampered(target, statement)
    refused(target, *words)


@pytest.mark.parametrize(
    ("table", "key", "column", "value"),
    [
        ("ig_events", "v2", "id", "v9"),
        ("ig_events", "v2", "type", "purchase"),
        ("ig_events", "v2", "at", "2030-01-01T00:00:00+00:00"),
        ("ig_journal", 3, "op", "unlink"),
        ("ig_journal", 3, "at", "2030-01-01T00:00:00+00:00"),
    ],
)
def test_verify_compares_the_query_columns_with_their_rows(
    target: str, table: str, key: Any, column: str, value: str
) -> None:
    """The library never serves these columns (they are for SQL queries),
    so opening serves the same graph; verify names the row."""
    expected = fill(target)
    where = "id" if table == "ig_events" else "seq"
    tampered(target, f"UPDATE {table} SET {column} = ? WHERE {where} = ?", (value, key))
    assert open_and_serve(target) == expected
    row = pos_of(target, "v9" if column == "id" else "v2") if table == "ig_events" else key
    with IdentityGraph.open(target) as g, pytest.raises(StoreError) as info:
        g.verify()
    assert f"{table} row {row} is damaged: {column} {value!r}" in str(info.value)


def test_event_rows_written_before_checksums_are_read_unchecked(target: str) -> None:
    """Rows of schema versions 1 and 2 are the bare event text; the number
    of rows written starts from the rows the migration found."""
    expected = fill(target)
    for row in dump(target)["ig_events"]:
        bare = str(row[5]).split(",", 2)[2][:-2]
        execute(target, "UPDATE ig_events SET body = ? WHERE pos = ?", (bare, row[0]))
    assert open_and_serve(target) == expected
    with IdentityGraph.open(target) as g:
        g.record(Event("visit", at=T0, customer_id="c4", id="v4"))
        assert g.verify() == 8
    assert str(dump(target)["ig_events"][-1][5]).startswith('{"e":[4,')


@pytest.mark.parametrize("column", ["body", "at"])
def test_a_garbled_refusal_row_is_refused(target: str, column: str) -> None:
    fill(target)
    execute(target, f"UPDATE ig_refusals SET {column} = 'garbage' WHERE pos = 2")
    refused(target, "ig_refusals", "row 2")


@pytest.mark.parametrize("last_too", [False, True], ids=["row-only", "with-the-last-entry"])
def test_a_deleted_journal_seq_row_is_refused(target: str, last_too: bool) -> None:
    """A version-3 store always records the last seq it wrote; without that
    row, deleting the journal's last entry too would go unnoticed."""
    fill(target)
    execute(target, "DELETE FROM ig_meta WHERE key = 'journal_seq'")
    if last_too:
        execute(target, "DELETE FROM ig_journal WHERE seq = 8")
    refused(target, "ig_meta row journal_seq", "missing")


def test_a_journal_seq_below_the_journal_is_refused(target: str) -> None:
    """Every write sets journal_seq to its last row, in the same transaction:
    rows beyond it were not written by this library."""
    fill(target)
    execute(target, "UPDATE ig_meta SET value = '6' WHERE key = 'journal_seq'")
    refused(target, "ig_meta row journal_seq", "6", "row 8")


def test_a_journal_seq_row_deleted_while_open_stops_the_next_write(target: str) -> None:
    fill(target)
    with IdentityGraph.open(target) as g:
        execute(target, "DELETE FROM ig_meta WHERE key = 'journal_seq'")
        before = dump(target)
        with pytest.raises(StoreError, match="ig_meta row journal_seq"):
            g.link("c20", Link("email", "new@example.com"), at=T0)
        assert dump(target) == before, "a write went on without its journal_seq"


#: What Python's own errors say when a row has another shape than expected;
#: a StoreError's reason says what the row is instead.
PYTHON_SAYS = (
    "unpack",
    "out of range",
    "indices must be",
    "argument must be",
    "object is not",
    "has no attribute",
    "zip()",
    "subscriptable",
    "iterable",
    "required positional",
)


def assert_readable(message: str) -> None:
    for words in PYTHON_SAYS:
        assert words not in message, message
    reason = message.split(" is damaged: ", 1)[-1]
    assert not (reason.startswith("'") and reason.endswith("'")), message  # a bare KeyError


def with_checksum(seq: int, text: str) -> str:
    """Journal row ``seq`` holding ``text`` with a matching checksum: a row
    that passes the checksum but is not a record this library writes."""
    return f'{{"s":[{seq},{zlib.crc32(text.encode())},{text}]}}'


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("body", "[]"),
        ("body", "{}"),
        ("body", "5"),
        ("body", "[1,2,3,4,5,6]"),
        ("body", '["visit","2024-01-01T00:00:00+00:00","c2",[[1]],{},"v2"]'),
        ("body", '["visit","2024-01-01T00:00:00+00:00","c2",5,{},"v2"]'),
        ("anchor", "[]"),
        ("anchor", "[1]"),
        ("anchor", "{}"),
        ("anchor", "5"),
    ],
)
def test_an_event_row_of_another_shape_is_refused_readably(
    target: str, column: str, value: str
) -> None:
    fill(target)
    (row,) = [row for row in dump(target)["ig_events"] if row[1] == "v2"]
    if column == "anchor":
        # A row written before checksums (its bare event), or the checksum
        # would tell first that the anchor is not the one written.
        bare = str(row[5]).split(",", 2)[2][:-2]
        execute(target, "UPDATE ig_events SET body = ? WHERE id = 'v2'", (bare,))
    execute(target, f"UPDATE ig_events SET {column} = ? WHERE id = 'v2'", (value,))
    message = refused(target, f"ig_events row {row[0]}", "not an event row this library writes")
    assert column in message
    assert_readable(message)


@pytest.mark.parametrize(
    ("column", "value"),
    [("body", "[]"), ("body", "5"), ("body", '{"error":"x"}'), ("body", '{"args":1}'), ("at", "5")],
)
def test_a_refusal_row_of_another_shape_is_refused_readably(
    target: str, column: str, value: str
) -> None:
    fill(target)
    execute(target, f"UPDATE ig_refusals SET {column} = ? WHERE pos = 2", (value,))
    message = refused(target, "ig_refusals row 2", "not a refusal row this library writes")
    assert column in message
    assert_readable(message)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "5",
        "{}",
        '{"t":["link"]}',
        '{"t":["link",{"dt":5},0]}',
        '{"t":["link",{"dt":"2024-01-01T00:00:00+00:00"},0]}',
    ],
)
def test_a_journal_row_of_another_shape_is_refused_readably(target: str, text: str) -> None:
    """Rows with a valid checksum (written by hand) that do not hold a record,
    or hold one that does not fit the graph (a ``link`` without its arguments)."""
    fill(target)
    execute(target, "UPDATE ig_journal SET record = ? WHERE seq = 3", (with_checksum(3, text),))
    message = refused(target, "ig_journal row 3", "not a journal row this library writes")
    assert_readable(message)


@pytest.mark.parametrize(
    "text",
    [
        '{"t":["link",{"dt":"2024-01-01T00:00:00+00:00"},0]}',
        '{"t":["link",{"dt":"2024-01-01T00:00:00+00:00"},1,"customer_id",5]}',
        '{"t":["zzz",{"dt":"2024-01-01T00:00:00+00:00"},0]}',
    ],
)
def test_a_journal_row_below_the_checkpoint_of_another_shape_is_refused_when_replayed(
    target: str, text: str
) -> None:
    """Opening starts from the checkpoint and never reads row 3; replaying
    it (``as_of``, ``verify``) must say the row is damaged, not KeyError."""
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_journal SET record = ? WHERE seq = 3", (with_checksum(3, text),))
    with IdentityGraph.open(target) as g:
        for replay in (lambda: g.as_of(5), g.verify):
            with pytest.raises(StoreError, match="ig_journal row 3 is damaged") as info:
                replay()
            assert_readable(str(info.value))


def _checkpoint_fields(target: str) -> dict[str, Any]:
    (row,) = dump(target)["ig_checkpoints"]
    return checkpoints.loads(bytes(row[2]))


@pytest.mark.parametrize(
    "change",
    [
        "no-customers",
        "customers-a-number",
        "a-column-short",
        "an-index-too-far",
        "a-seq-too-far",
        "a-customer-twice",
        "merge-short",
        "frozen-a-string",
    ],
)
def test_a_checkpoint_of_another_shape_is_refused_readably(target: str, change: str) -> None:
    fill(target, checkpoint=True)
    with IdentityGraph.open(target) as g:
        g.merge("c1", "c2", reason="same", at=T0)
        g.checkpoint()
    saved = _checkpoint_fields(target)
    assert saved["format"] == FORMAT
    if change == "no-customers":
        del saved["customers"]
    elif change == "customers-a-number":
        saved["customers"] = 5
    elif change == "a-column-short":
        saved["p_seq"] = saved["p_seq"][:-1]
    elif change == "an-index-too-far":
        saved["p_owner"][0] = len(saved["customers"]) + 1
    elif change == "a-seq-too-far":
        saved["p_seq"][0] = saved["seq"] + 1
    elif change == "a-customer-twice":
        saved["customers"][1] = saved["customers"][0]
    elif change == "merge-short":
        saved["merges"] = [saved["merges"][0][:3]]
    else:
        saved["frozen"] = "x"
    execute(target, "UPDATE ig_checkpoints SET state = ?", (checkpoints.encode(saved),))
    message = refused(target, "ig_checkpoints row 9", "not a checkpoint this library writes")
    assert_readable(message)
    if change == "no-customers":
        assert "'customers'" in message


def _garbled(saved: dict[str, Any], change: str) -> bytes:
    """The bytes of ``saved``'s checkpoint with its layout broken by ``change``."""
    body = zlib.decompress(checkpoints.encode(saved))
    end = body.index(b"\n")
    header = json.loads(body[:end])
    parts = header["parts"]
    if change == "part-cut-short":
        return zlib.compress(body[:-3])
    if change == "bytes-after":
        return zlib.compress(body + b"xyz")
    if change == "part-of-unknown-kind":
        parts[0][1] = "float"
    elif change == "array-of-odd-length":
        column = next(part for part in parts if part[1] == "u4")
        column[2] += 1
    elif change == "text-count-off":
        parts[0][2] += 1
    else:
        header["parts"] = "none"
    return zlib.compress(json.dumps(header).encode() + body[end:])


@pytest.mark.parametrize(
    "change",
    [
        "part-cut-short",
        "bytes-after",
        "part-of-unknown-kind",
        "array-of-odd-length",
        "text-count-off",
        "no-parts",
    ],
)
def test_a_checkpoint_with_a_broken_layout_is_refused_readably(target: str, change: str) -> None:
    fill(target, checkpoint=True)
    saved = _checkpoint_fields(target)
    execute(target, "UPDATE ig_checkpoints SET state = ?", (_garbled(saved, change),))
    message = refused(target, "ig_checkpoints row 8", "not a checkpoint this library writes: it")
    assert_readable(message)


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


@pytest.mark.parametrize("fmt", [99, FORMAT + 1, 0, -1])
def test_an_unknown_checkpoint_format_is_refused(target: str, fmt: int) -> None:
    fill(target, checkpoint=True)
    execute(target, "UPDATE ig_checkpoints SET format = ?", (fmt,))
    refused(target, "ig_checkpoints row 8", f"format {fmt}")


def test_an_older_checkpoint_format_is_skipped_and_the_journal_replayed(target: str) -> None:
    """Format 1 was written by earlier versions: never misread, never an error."""
    expected = fill(target, checkpoint=True)
    execute(target, "UPDATE ig_checkpoints SET format = 1, state = ?", (b"older layout",))
    assert open_and_serve(target) == expected


@pytest.mark.parametrize(
    ("column", "value"),
    [("format", "x"), ("format", 2.5), ("state", "text, not bytes"), ("state", 7)],
)
def test_a_checkpoint_row_of_the_wrong_type_is_refused(
    tmp_path: Path, column: str, value: Any
) -> None:
    """SQLite keeps whatever type a value had (PostgreSQL refuses the update)."""
    path = str(tmp_path / "graph.db")
    fill(path, checkpoint=True)
    execute(path, f"UPDATE ig_checkpoints SET {column} = ?", (value,))
    message = refused(path, "ig_checkpoints row 8", column)
    assert_readable(message)


# -------------------------------------------------------------- schema version


@pytest.mark.parametrize("value", ["2.0", "x", "", " 2", "-1", "0", "9" * 40])
def test_a_garbled_schema_version_is_refused(target: str, value: str) -> None:
    fill(target)
    execute(target, "UPDATE ig_meta SET value = ? WHERE key = 'schema_version'", (value,))
    refused(target, "ig_meta", "schema_version")


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        ("UPDATE ig_meta SET value = '2' WHERE key = 'schema_version'", "says version 2"),
        ("UPDATE ig_meta SET value = '1' WHERE key = 'schema_version'", "says version 1"),
        ("DELETE FROM ig_meta WHERE key = 'schema_version'", "is missing"),
    ],
    ids=["2", "1", "deleted"],
)
def test_a_lowered_or_missing_schema_version_is_refused(
    target: str, statement: str, found: str
) -> None:
    """Believed, it would rerun migrations over tables that have them
    (SQLite said "UNIQUE constraint failed: ig_meta.key")."""
    fill(target)
    execute(target, statement)
    message = refused(target, "ig_meta row schema_version", found, f"version {LATEST}'s")
    assert "UNIQUE" not in message and "already exists" not in message, message


def has_index(target: str) -> bool:
    """Whether migration 2's index exists."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('ig_journal_at') IS NOT NULL").fetchone()
            return bool(row and row[0])
    conn = sqlite3.connect(target)
    try:
        return bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ig_journal_at'").fetchall()
        )
    finally:
        conn.close()


@pytest.mark.parametrize("blocked", [False, True], ids=["migrates", "migration-fails"])
def test_a_failing_migration_is_named_and_leaves_the_store_as_it_was(
    target: str, blocked: bool
) -> None:
    """A version-1 store (a current one with migrations 2 and 3 undone) whose
    migration 3 the database refuses: the error names the migration, and
    migration 2, which had run, is rolled back with it."""
    expected = fill(target)
    execute(target, "DROP INDEX ig_journal_at")
    execute(
        target,
        "DELETE FROM ig_meta WHERE key IN"
        " ('journal_seq', 'event_count', 'erasure_epoch', 'checkpoint_format')",
    )
    execute(target, "UPDATE ig_meta SET value = '1' WHERE key = 'schema_version'")
    if not blocked:  # the store above is a sound version-1 store
        assert open_and_serve(target) == expected
        assert has_index(target)
        return
    if target.startswith("postgresql://"):
        execute(
            target, "ALTER TABLE ig_meta ADD CONSTRAINT ig_test_block CHECK (key <> 'journal_seq')"
        )
    else:
        execute(
            target,
            "CREATE TRIGGER ig_test_block BEFORE INSERT ON ig_meta WHEN NEW.key = 'journal_seq'"
            " BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END",
        )
    refused(target, "migration 3", "version 1", "left as it was")
    assert not has_index(target), "migration 2 was kept although the migration failed"


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


@pytest.fixture(scope="module")
def event_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A store with events of several kinds (a content id, a purchase with
    exact amounts, one filed under a link), and what it serves."""
    from decimal import Decimal

    path = tmp_path_factory.mktemp("events") / "graph.db"
    fill(str(path))
    with IdentityGraph.open(path) as g:
        g.record(Event("call", at=T0, customer_id="c1", data={"minutes": 5}))
        g.record(
            Event(
                "purchase",
                at=T0 + timedelta(hours=1),
                customer_id="c2",
                id="p1",
                data={"amount": Decimal("6.50"), "currency": "EUR"},
            )
        )
        g.record(Event("visit", at=T0, links=[Link("email", "p3@example.com")], id="l1"))
    return path, open_and_serve(str(path))


@st.composite
def event_damage(draw: st.DrawFn, rows: list[tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements that edit a character of a column of some event rows,
    delete some, or swap two rows' anchors and bodies."""
    kind = draw(st.sampled_from(["edit", "delete", "swap"]))
    chosen = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=3, unique=True))
    if kind == "delete":
        return [("DELETE FROM ig_events WHERE pos = ?", (row[0],)) for row in chosen]
    if kind == "swap":
        a, b = draw(st.lists(st.sampled_from(rows), min_size=2, max_size=2, unique=True))
        return [
            ("UPDATE ig_events SET anchor = ?, body = ? WHERE pos = ?", (b[4], b[5], a[0])),
            ("UPDATE ig_events SET anchor = ?, body = ? WHERE pos = ?", (a[4], a[5], b[0])),
        ]
    statements = []
    for row in chosen:
        index = draw(st.integers(1, 5))  # id, type, at, anchor, body
        text = str(row[index])
        i = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        new = text[:i] + draw(st.text(max_size=2)) + text[i + cut :]
        column = ("id", "type", "at", "anchor", "body")[index - 1]
        statements.append((f"UPDATE ig_events SET {column} = ? WHERE pos = ?", (new, row[0])))
    return statements


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_damage_to_event_rows_is_refused_or_changes_nothing(
    event_store: tuple[Path, Any], data: st.DataObject
) -> None:
    """Edit, delete or swap event rows: opening and reading either serves
    exactly what was written or raises StoreError naming ig_events; and
    verify, which also compares the columns kept for queries, always raises."""
    source, expected = event_store
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "graph.db"
        shutil.copy(source, path)
        before = dump(str(path))
        for statement, params in data.draw(event_damage(before["ig_events"])):
            # An edited id that another row has is refused: no damage made.
            with contextlib.suppress(sqlite3.IntegrityError):
                execute(str(path), statement, params)
        after = dump(str(path))
        if after == before:
            return
        try:
            got = open_and_serve(str(path))
        except StoreError as error:
            assert "ig_events" in str(error), str(error)
            assert dump(str(path)) == after, "the failed open wrote to the store"
        else:
            assert got == expected
        with IdentityGraph.open(path) as g, pytest.raises(StoreError, match="ig_events"):
            g.verify()


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


# ----------------------------------------------------------------- empty files


def test_an_empty_file_opened_read_only_is_no_store_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.db"
    path.touch()
    with pytest.raises(StoreError, match="holds no identity_graph store") as info:
        IdentityGraph.open(path, read_only=True)
    assert "read_only" in str(info.value)
    assert path.stat().st_size == 0


def test_an_empty_file_opened_for_writing_becomes_a_store(tmp_path: Path) -> None:
    """As a missing file does: ``open`` creates stores, and an empty file is
    what ``mktemp`` or ``touch`` leaves (SQLite takes it for an empty database)."""
    path = tmp_path / "zero.db"
    path.touch()
    with IdentityGraph.open(path) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
    with IdentityGraph.open(path, read_only=True) as g:
        assert g.customers() == ["c1"]
        assert g.verify() == 1
