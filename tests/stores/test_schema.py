"""Schema versions: "A store records its schema version; opening an older
store migrates it, and opening a newer one is a clear error" — and leaves it
untouched (docs/stores.md), on SQLite and on PostgreSQL.

A version-1 store is built by hand from ``schema.statements(1, …)`` and
``ig_meta``, then filled with the rows of a graph written by the library
(migration 2 only adds an index, so version-1 rows are current rows)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from identity_graph import Event, IdentityGraph, Link
from identity_graph.errors import SchemaVersionError, StoreError
from identity_graph.stores import LATEST, SQLiteStore
from identity_graph.stores.schema import META, MIGRATIONS, statements

from .helpers import eventually

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TABLES = ("ig_journal", "ig_events", "ig_refusals", "ig_checkpoints")
COLUMNS = {
    "ig_journal": "seq, op, at, record",
    "ig_events": "pos, id, type, at, anchor, body",
    "ig_refusals": "pos, at, op, reason, body",
    "ig_checkpoints": "seq, format, state",
}


def created_after_1() -> set[str]:
    """The indexes and tables the migrations after version 1 create."""
    pattern = re.compile(r"CREATE (?:UNIQUE )?(?:INDEX|TABLE) (?:IF NOT EXISTS )?(\w+)", re.I)
    names = {
        match.group(1)
        for version in MIGRATIONS
        if version > 1
        for statement in MIGRATIONS[version]
        for match in pattern.finditer(statement)
    }
    assert names, "no migration after 1 creates a table or an index"
    return names


def fill(target: str) -> dict[str, Any]:
    """Write a small graph with every kind of row; return its snapshot."""
    with IdentityGraph.open(target) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
        g.link("c2", Link("loyalty_card", "7001"), at=T0)
        merge_id = g.merge("c1", "c2", reason="same person", at=T0)
        g.record(Event("visit", at=T0, customer_id="c1", id="v1"))
        g.checkpoint()
        assert merge_id is not None
        g.split(merge_id, at=T0 + timedelta(days=1))
        with pytest.raises(ValueError):
            g.link("c3", Link("email", "n/a"), at=T0)  # a refusal row
        return snapshot(g)


def snapshot(g: IdentityGraph) -> dict[str, Any]:
    return {
        "state": g._state(),
        "events": [(e.id, e.at) for e in g.events("c1")],
        "refusals": [(r.op, r.reason) for r in g.refusals()],
    }


def _new_sqlite_v1(path: Path, source: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in statements(1, SQLiteStore.types):
            conn.execute(statement)
        conn.execute(META)
        conn.execute("INSERT INTO ig_meta (key, value) VALUES ('schema_version', '1')")
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        for table in TABLES:
            columns = COLUMNS[table]
            conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM source.{table}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE source")
    finally:
        conn.close()


def _sqlite_objects(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def _sqlite_version(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        (value,) = conn.execute("SELECT value FROM ig_meta WHERE key = 'schema_version'").fetchone()
        return str(value)
    finally:
        conn.close()


# ------------------------------------------------------------------ SQLite


def test_sqlite_version_1_is_migrated_on_open(tmp_path: Path) -> None:
    source, old = tmp_path / "source.db", tmp_path / "v1.db"
    expected = fill(str(source))
    _new_sqlite_v1(old, source)
    assert not created_after_1() & _sqlite_objects(old)

    with IdentityGraph.open(old) as g:
        assert snapshot(g) == expected
        assert g.store.schema_version() == LATEST
    assert created_after_1() <= _sqlite_objects(old)
    assert _sqlite_version(old) == str(LATEST)
    with IdentityGraph.open(old) as g:  # a second open migrates nothing
        assert snapshot(g) == expected
        g.link("c4", Link("email", "cy@example.com"), at=T0)  # and the store takes writes


def _sqlite_future(path: Path, journal_mode: str) -> None:
    with IdentityGraph.open(path) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute(
            "UPDATE ig_meta SET value = ? WHERE key = 'schema_version'", (str(LATEST + 1),)
        )
        conn.execute("CREATE TABLE ig_future (x TEXT)")  # a layout this library does not know
    finally:
        conn.close()


def test_sqlite_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    _sqlite_future(path, "wal")
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), _dump(path))
    with pytest.raises(SchemaVersionError) as info:
        IdentityGraph.open(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema version {LATEST + 1}" in message
    assert f"up to {LATEST}" in message and "upgrade identity_graph" in message
    assert isinstance(info.value, StoreError)
    del info
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), _dump(path)) == before


def test_sqlite_newer_version_in_rollback_journal_mode_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    _sqlite_future(path, "delete")
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError):
        IdentityGraph.open(path)
    assert path.read_bytes() == before


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# -------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def _pg_objects(conn: Any) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema()"
    ).fetchall()
    return {row[0] for row in rows}


def _pg_dump(conn: Any) -> dict[str, Any]:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
    ]
    return {
        "tables": tables,
        "objects": sorted(_pg_objects(conn)),
        **{table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables},
    }


def test_postgres_version_1_is_migrated_on_open(
    postgres_server: str, postgres_url: str, pg: Any, tmp_path: Path
) -> None:
    from identity_graph.stores.postgres import PostgresStore

    source = tmp_path / "source.db"
    expected = fill(str(source))
    with pg.transaction():
        for statement in statements(1, PostgresStore.types):
            pg.execute(statement)
        pg.execute(META)
        pg.execute("INSERT INTO ig_meta (key, value) VALUES ('schema_version', '1')")
        rows = sqlite3.connect(source)
        try:
            for table in TABLES:
                columns = COLUMNS[table]
                data = rows.execute(f"SELECT {columns} FROM {table}").fetchall()
                marks = ", ".join(["%s"] * len(columns.split(",")))
                with pg.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
        finally:
            rows.close()
        # Rows inserted with explicit positions leave the sequences behind.
        for table in ("ig_events", "ig_refusals"):
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'pos'),"
                f" (SELECT MAX(pos) FROM {table}))"
            )
    assert not created_after_1() & _pg_objects(pg)

    with IdentityGraph.open(postgres_url) as g:
        assert snapshot(g) == expected
        assert g.store.schema_version() == LATEST
    assert created_after_1() <= _pg_objects(pg)
    with IdentityGraph.open(postgres_url) as g:
        assert snapshot(g) == expected
        g.record(Event("visit", at=T0, customer_id="c2", id="v2"))


def test_postgres_newer_version_is_refused_and_left_untouched(postgres_url: str, pg: Any) -> None:
    with IdentityGraph.open(postgres_url) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
    pg.execute("UPDATE ig_meta SET value = %s WHERE key = 'schema_version'", (str(LATEST + 1),))
    pg.execute("CREATE TABLE ig_future (x TEXT)")
    before = _pg_dump(pg)
    with pytest.raises(SchemaVersionError) as info:
        IdentityGraph.open(postgres_url)
    message = str(info.value)
    assert f"schema version {LATEST + 1}" in message and f"up to {LATEST}" in message
    assert "***" in message or "@" not in message  # no password in the message
    del info
    assert _pg_dump(pg) == before


def test_postgres_failed_open_closes_its_connection(
    postgres_server: str, postgres_url: str, pg: Any
) -> None:
    with IdentityGraph.open(postgres_url) as g:
        g.link("c1", Link("email", "ann@example.com"), at=T0)
    pg.execute("UPDATE ig_meta SET value = %s WHERE key = 'schema_version'", (str(LATEST + 1),))
    application = "ig_failed_open"
    with pytest.raises(SchemaVersionError) as info:
        IdentityGraph.open(f"{postgres_url}&application_name={application}")
    assert info.value is not None  # the caller still holds the error (a log record, say)

    def closed() -> bool:
        (count,) = pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
        return bool(count == 0)

    # The server lists a closed connection until its backend has exited.
    eventually(closed, f"no connection named {application} in pg_stat_activity")


def test_opening_waits_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it to itself; SQLite says "locked" at
    once, so the store must wait for the other writer (found by the store
    benchmark: two processes opening one new file)."""
    import threading

    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE elsewhere (x INTEGER)")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        store = SQLiteStore(path, timeout=10)
    finally:
        timer.join()
        other.close()
    assert store.schema_version() == LATEST
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
