"""Stores under I/O faults (docs/stores.md): "if writing or committing fails
— full disk, read-only file, lost connection — the transaction is rolled back,
memory is reloaded from the store and StoreError is raised: the store is as
it was before the call, and so is the graph object."

- full disk: a child process writes under ``RLIMIT_FSIZE`` (SIGXFSZ ignored,
  so the kernel answers EFBIG as a full disk would answer ENOSPC);
- read-only file: we run as root, which writes any file whatever its mode,
  so a child loads the library as root, then ``setuid``s to ``nobody`` and
  opens a mode-0444 copy in a world-writable (sticky) directory: SQLite
  opens it read-only (it can still create the ``-wal``/``-shm`` files it
  needs to read a WAL database) and every write fails in the database
  engine itself.  ``chattr`` and read-only mounts are not available here;
- PostgreSQL: the server terminates the graph's connection
  (``pg_terminate_backend``) at random moments while it reads and writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from identity_graph import Event, IdentityGraph, Link
from identity_graph.errors import StoreError

from .helpers import WORKERS, Reported, check_store, integrity_check

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOBODY = 65534


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# ---------------------------------------------------------------- full disk


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "limit"),
    [("mixed", 60_000), ("mixed", 500_000), ("events", 300_000), ("mixed", 4_500_000)],
    # 4.5 MB: the WAL reaches its 1000-page auto-checkpoint first, so the
    # main file grows until the limit stops the checkpoint, then the WAL.
    ids=["mixed-60k", "mixed-500k", "record_many-300k", "after-wal-checkpoint-4.5M"],
)
def test_a_full_disk_fails_the_write_cleanly(tmp_path: Path, mode: str, limit: int) -> None:
    path = tmp_path / "full.db"
    proc = subprocess.run(
        [sys.executable, str(WORKERS), "fulldisk", str(path), str(limit), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reported = Reported()
    reported.parse(proc.stdout)
    (last,) = reported.last_words
    result = json.loads(last.split(" ", 1)[1] if last.startswith("X ") else last)

    # The failing write raised StoreError naming the file and what happened.
    assert result["error_type"] == "StoreError", result
    assert result["cause"] == "OperationalError", result
    assert str(path) in result["error"] and "rolled back" in result["error"], result
    # The object that saw the failure still reads, and equals the store.
    assert result["equals_store"] and result["equals_replay"], result

    # After the child: a sound file holding exactly the calls that returned.
    integrity_check(path)
    check_store(path, reported, ("link", "merge"))
    journal = {seq for (seq,) in _rows(path, "SELECT seq FROM ig_journal")}
    assert journal == set(reported.seqs), "a call that raised left an entry, or one is lost"
    assert result["journal"] == len(journal) - (result["late"] == "returned")
    stored = {event_id for (event_id,) in _rows(path, "SELECT id FROM ig_events")}
    extra = stored - reported.events
    # record_many commits per batch of 50: the batches before the failing one
    # of the call that raised are kept (re-running the call is idempotent).
    failed_call = f"f{result['steps']}-"
    assert all(event_id.startswith(failed_call) for event_id in extra), sorted(extra)[:5]
    assert len(extra) % 50 == 0
    if mode == "events":
        assert result["steps"] > 1


def _rows(path: Path, query: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- read-only


@pytest.fixture
def shared_directory() -> Iterator[Path]:
    """A world-writable sticky directory that ``nobody`` can reach (tmp_path
    lives under a root-only directory)."""
    directory = Path(tempfile.mkdtemp(prefix="ig-ro-"))
    directory.chmod(0o1777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("how", ["file-0444-as-nobody", "read_only"])
def test_a_read_only_store_refuses_writes_and_still_reads(shared_directory: Path, how: str) -> None:
    path = shared_directory / "ro.db"
    with IdentityGraph.open(path) as g:
        g.link("c1", Link("email", "c1@example.com"), at=T0)
        g.link("c2", Link("email", "c2@example.com"), at=T0)
        g.record(Event("visit", at=T0, customer_id="c1", id="v1"))
    if how == "read_only":
        uid = -1  # IdentityGraph.open(path, read_only=True), as root: SQLite mode=ro
    else:
        path.chmod(0o444)
        uid = NOBODY if os.geteuid() == 0 else -1
    before = (digest(path), dump(path))

    proc = subprocess.run(
        [sys.executable, str(WORKERS), "readonly", str(path), str(uid), how],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1][2:])
    assert result["uid"] != 0 or how == "read_only"
    assert result["customers"] == ["c1", "c2"]
    for call in ("link", "merge", "record", "record_many", "checkpoint"):
        assert result[call].startswith("StoreError: "), (call, result[call])
        assert str(path) in result[call], result[call]
        assert "readonly database" in result[call], result[call]
    assert result["unchanged"] is True
    assert result["resolve"] == "c2"
    assert result["events"] == 1
    assert (digest(path), dump(path)) == before


# --------------------------------------------------------------- PostgreSQL


def _terminate(admin_url: str, application: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        ).fetchall()
    return len(rows)


@pytest.mark.slow
def test_postgres_connection_terminated_by_the_server(
    postgres_server: str, postgres_url: str
) -> None:
    import psycopg

    rng = random.Random(7)
    reported = Reported()
    with IdentityGraph.open(postgres_url) as g:
        for i in range(40):
            reported.seqs[g.register(f"c{i}", at=T0).seq] = "register"  # type: ignore[union-attr]
    failures = 0
    step = 0
    for round_ in range(6):
        application = f"ig_victim_{os.getpid()}_{round_}"
        url = f"{postgres_url}&application_name={application}"
        g = IdentityGraph.open(url)
        killer = threading.Timer(rng.uniform(0.05, 0.3), _terminate, (postgres_server, application))
        killer.start()
        deadline = time.monotonic() + 60  # the kill lands within a second; a slow machine
        try:
            with pytest.raises(StoreError) as info:
                while time.monotonic() < deadline:
                    step += 1
                    at = T0 + timedelta(minutes=step)
                    customer = f"c{step % 40}"
                    kind = step % 6
                    if kind in (0, 1):
                        entry = g.link(customer, Link("email", f"{step}@example.com"), at=at)
                        if entry is not None:
                            reported.seqs[entry.seq] = "link"
                    elif kind == 2:
                        merge_id = g.merge(customer, f"c{(step + 7) % 40}", at=at)
                        if merge_id is not None:
                            reported.seqs[int(merge_id[1:])] = "merge"
                    elif kind == 3:
                        event = Event("visit", at=at, customer_id=customer, id=f"v{step}")
                        g.record(event)
                        reported.events.add(event.id)
                    elif kind == 4:
                        merge_ids = sorted(g.profile(customer).merge_ids)
                        if merge_ids:
                            entry = g.split(merge_ids[0], at=at)
                            if entry is not None:
                                reported.seqs[entry.seq] = "split"
                    else:
                        g.resolve(customer)
                        g.profile(customer)
                        list(g.changes(max(0, len(reported.seqs) - 3)))
        finally:
            killer.join()
        failures += 1
        error = info.value
        # A StoreError the caller can handle, with the driver's error as cause.
        assert type(error) is StoreError
        assert isinstance(error.__cause__, psycopg.Error)
        assert "postgresql://" in str(error)
        # The object stays a StoreError-raising object: no psycopg traceback
        # from reads or writes, and close() is quiet.
        with pytest.raises(StoreError):
            g.resolve("c1")
        with pytest.raises(StoreError):
            g.link("late", Link("email", "late@example.com"), at=T0)
        g.close()
        check_store(postgres_url, reported, ("link", "merge", "split"))
    assert failures == 6
    assert len(reported.seqs) > 60


def test_postgres_connection_lost_while_iterating_the_journal(
    postgres_server: str, postgres_url: str
) -> None:
    application = f"ig_iterating_{os.getpid()}"
    g = IdentityGraph.open(f"{postgres_url}&application_name={application}")
    for i in range(3):
        g.link(f"c{i}", Link("email", f"c{i}@example.com"), at=T0)
    entries = g.journal()
    assert _terminate(postgres_server, application) == 1
    try:
        with pytest.raises(StoreError):
            next(entries)
    finally:
        with contextlib.suppress(Exception):
            g.close()


def test_postgres_idle_connection_terminated(postgres_server: str, postgres_url: str) -> None:
    """After the server drops its connection, the graph object does not
    reconnect: every later call raises StoreError until the caller reopens."""
    application = f"ig_idle_{os.getpid()}"
    g = IdentityGraph.open(f"{postgres_url}&application_name={application}")
    g.link("c1", Link("email", "c1@example.com"), at=T0)
    assert _terminate(postgres_server, application) == 1
    with pytest.raises(StoreError):
        g.link("c2", Link("email", "c2@example.com"), at=T0)
    with contextlib.suppress(StoreError):
        g.close()
    with IdentityGraph.open(postgres_url) as again:
        assert again.customers() == ["c1"]


# ---------------------------------------------- PostgreSQL: retried writes


def _fail_next_insert(url: str, table: str, sqlstate: str) -> None:
    """Make the server fail the next insert into ``table`` with ``sqlstate``, once.

    A sequence counts the attempts: ``nextval`` is not rolled back with the
    failed transaction, so the retry goes through."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS ig_fault_attempts")
        conn.execute(
            "CREATE OR REPLACE FUNCTION ig_fault_once() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN"
            "   IF nextval('ig_fault_attempts') = 1 THEN"
            f"    RAISE EXCEPTION 'injected by the test' USING ERRCODE = '{sqlstate}';"
            "   END IF;"
            "   RETURN NEW;"
            " END $$"
        )
        conn.execute(
            f"CREATE TRIGGER ig_fault_once BEFORE INSERT ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION ig_fault_once()"
        )


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization", "deadlock"])
def test_postgres_serialisation_failure_and_deadlock_are_retried(
    postgres_url: str, sqlstate: str
) -> None:
    with IdentityGraph.open(postgres_url) as g:
        g.link("c1", Link("email", "c1@example.com"), at=T0)
        _fail_next_insert(postgres_url, "ig_journal", sqlstate)
        entry = g.link("c2", Link("email", "c2@example.com"), at=T0)  # no error surfaces
        assert entry is not None and entry.seq == 2
        merge_id = g.merge("c1", "c2", at=T0)
        assert merge_id == "m3"
        with IdentityGraph.open(postgres_url) as again:
            assert again == g
    reported = Reported(seqs={1: "link", 2: "link", 3: "merge"})
    assert check_store(postgres_url, reported, ("link", "merge")) == 3


def test_postgres_retried_record_does_not_count_its_event_twice(postgres_url: str) -> None:
    with IdentityGraph.open(postgres_url) as g:
        g.register("c1", at=T0)
        g.record(Event("visit", at=T0, customer_id="c1", id="e1"))
        _fail_next_insert(postgres_url, "ig_events", "40001")
        assert g.record(Event("visit", at=T0 + timedelta(hours=1), customer_id="c1", id="e2"))
        with IdentityGraph.open(postgres_url) as again:
            assert [e.id for e in again.events("c1")] == ["e1", "e2"]
        assert [e.id for e in g.events("c1")] == ["e1", "e2"]


# ---------------------------------------------------- PostgreSQL: messages

REFUSED = "127.0.0.1:1"  # nothing listens there: connecting fails at once


def _open_error(url: str) -> str:
    with pytest.raises(StoreError) as info:
        IdentityGraph.open(url)
    return str(info.value)


def test_postgres_messages_hide_the_password_of_the_url() -> None:
    pytest.importorskip("psycopg")
    message = _open_error(f"postgresql://app:hunter2@{REFUSED}/crm")
    assert "hunter2" not in message and "app:***@" in message


@pytest.mark.parametrize(
    "url",
    [f"postgresql://app@{REFUSED}/crm?password=hunter2", f"postgresql://:hunter2@{REFUSED}/crm"],
    ids=["query-parameter", "empty-user"],
)
def test_postgres_messages_hide_every_form_of_password(url: str) -> None:
    pytest.importorskip("psycopg")
    assert "hunter2" not in _open_error(url)
