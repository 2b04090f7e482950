"""Several processes on one store: "several processes share one graph
without lost updates or cycles: two concurrent merges or relinks that touch
the same customers are serialised"; SQLite writers "wait instead of failing".

Worker processes (``workers.py contend``) start at the same instant and do a
few hundred calls each on the same customers and links: merges of the same
pairs in opposite orders, relinks of the same links, splits, detaches and
events (own ids, and shared ids with identical content).  Afterwards every
call that returned in any process is in the journal under its own seq (no
seq returned twice), the journal is gap-free, the stored state equals the
replay of the journal, and no customer is in two profiles.

Also: several processes opening a brand-new store at once all succeed.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from identity_graph import IdentityGraph, Link
from identity_graph.stores import LATEST

from .helpers import Reported, check_store, finish, integrity_check, sql_rows, start, wait_for

T0 = datetime(2024, 1, 1, tzinfo=UTC)
WORKERS = 3
OPS = 250
CHECKED_OPS = ("merge", "relink", "link", "split", "detach")


def contend(target: str, tmp_path: Path, seed: int, pause: float) -> Reported:
    with IdentityGraph.open(target) as g:
        for i in range(12):
            g.register(f"c{i}", at=T0)
    procs = [
        start("contend", target, worker, OPS, seed, tmp_path / f"contend-{worker}.txt", pause)
        for worker in range(WORKERS)
    ]
    for proc in procs:
        wait_for(proc, "READY")
    for proc in procs:  # all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        finish(proc)
    reported = Reported()
    owner: dict[int, int] = {}
    for worker in range(WORKERS):
        mine = Reported()
        mine.read(tmp_path / f"contend-{worker}.txt")
        owner.update(dict.fromkeys(mine.seqs, worker))
        reported.read(tmp_path / f"contend-{worker}.txt")  # asserts no seq returned twice
    assert sorted(json.loads(words)["worker"] for words in reported.last_words) == list(
        range(WORKERS)
    )
    # The workers really took turns, rather than running one after another.
    turns = [owner[seq] for seq in sorted(owner)]
    switches = sum(a != b for a, b in itertools.pairwise(turns))
    assert switches > OPS // 4, f"only {switches} switches between workers"
    return reported


def check_contention(target: str, reported: Reported) -> None:
    length = check_store(target, reported, CHECKED_OPS)
    ops = set(reported.seqs.values())
    assert {"merge", "relink", "split"} <= ops, ops
    assert len(reported.seqs) > WORKERS * OPS // 4, (len(reported.seqs), length)
    # Every entry after the 12 registrations was returned to some worker.
    assert set(reported.seqs) == set(range(13, length + 1))
    assert reported.events


@pytest.mark.slow
def test_sqlite_processes_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    # SQLite's busy handler polls with growing sleeps, so a writer in a tight
    # loop keeps re-taking the lock; a short pause between calls (as a real
    # process has) lets the workers interleave.
    reported = contend(str(path), tmp_path, seed=1, pause=0.003)
    integrity_check(path)
    check_contention(str(path), reported)


@pytest.mark.slow
def test_postgres_processes_on_one_schema(tmp_path: Path, postgres_url: str) -> None:
    reported = contend(postgres_url, tmp_path, seed=2, pause=0.0)
    check_contention(postgres_url, reported)


# ------------------------------------------------------------ first open


def open_at_once(target: str, tmp_path: Path, count: int = 6) -> None:
    procs = [
        start("create", target, worker, tmp_path / f"create-{worker}.txt")
        for worker in range(count)
    ]
    for proc in procs:
        wait_for(proc, "IMPORTED")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        finish(proc)
    reported = Reported()
    for worker in range(count):
        reported.read(tmp_path / f"create-{worker}.txt")
    assert sorted(reported.seqs) == list(range(1, count + 1))
    check_store(target, reported, ("link",))
    assert sql_rows(target, "SELECT value FROM ig_meta WHERE key = 'schema_version'") == [
        (str(LATEST),)
    ]
    with IdentityGraph.open(target) as g:
        assert sorted(g.customers()) == sorted(f"new{worker}" for worker in range(count))


@pytest.mark.slow
def test_sqlite_first_open_by_several_processes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_at_once(str(path), tmp_path)
    integrity_check(path)
    assert sql_rows(path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.slow
def test_postgres_first_open_by_several_processes_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    open_at_once(postgres_url, tmp_path)


# ------------------------------------------------- one lock per database


def test_postgres_graphs_in_two_schemas_do_not_wait_for_each_other(
    postgres_server: str, postgres_url: str
) -> None:
    import psycopg

    from .conftest import with_schema

    other_url = with_schema(postgres_server, f"ig_other_{os.getpid()}")
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA ig_other_{os.getpid()}")
    first, second = IdentityGraph.open(postgres_url), IdentityGraph.open(other_url)
    done = threading.Event()

    def write_second() -> None:
        second.link("c2", Link("email", "c2@example.com"), at=T0)
        done.set()

    first.store.begin(True)  # a long write transaction on the first graph
    try:
        thread = threading.Thread(target=write_second)
        thread.start()
        # Held by the lock it would never finish before the rollback below;
        # the wait is long so that a slow machine is not mistaken for a lock.
        blocked = not done.wait(timeout=60)
    finally:
        first.store.rollback()
        thread.join(timeout=30)
        first.close()
        second.close()
    assert done.is_set()
    assert not blocked, "a write to another schema waited for this one's lock"
