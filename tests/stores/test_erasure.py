"""``forget`` on the stores: the erased bytes are physically gone, the
erasure is one transaction, and other processes catch up to it.

- SQLite: the raw bytes of the ``.db``, ``-wal`` and ``-shm`` files hold
  none of the person's values after ``forget`` (they did before), while
  the other customers' values are still there; with a second graph open on
  the file too; a connection in the middle of a read keeps the old pages
  (``forget`` says so with ``StoreError``, and they go when it ends);
  without the VACUUM (a crash right after the commit) the next close
  still leaves no erased byte.
- PostgreSQL: every ``ig_*`` table read as text holds none of them, and
  the touched tables were vacuumed.  Plain ``VACUUM`` does not promise to
  overwrite the dead rows' bytes in the data files (nor do the statistics'
  dead-tuple counts prove anything: the forgetting session's counts may be
  flushed after the VACUUM's), so the files are not checked.
- SIGKILL at random moments of a ``forget``: the store opens, verifies, and
  holds the person entirely or not at all.
- Two processes on one store, one forgetting while the other writes and
  reads: both converge, neither serves an erased value once it caught up,
  nothing is lost.

The store contract suite (``identity_graph.testing.StoreContract``) checks
the rest on every store: forget equals forget in memory, after reopening
too; the suppression list survives; verify passes.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity_graph import Event, IdentityGraph, Link
from identity_graph.errors import InvalidLink, StoreError
from identity_graph.stores import SQLiteStore
from identity_graph.testing import (
    ERASED_PERSON,
    ERASED_TEXTS,
    KEPT_TEXTS,
    erasure_scenario,
    reachable_strings,
)

from .helpers import (
    Reported,
    check_store,
    eventually,
    finish,
    integrity_check,
    sql_rows,
    start,
    wait_for,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=100)


def keepers(graph: IdentityGraph, count: int) -> None:
    """``count`` customers who stay, with attributes, an email and an event
    each: enough rows that the person's rows share pages with others', and
    that deleting them frees space inside pages."""
    with graph.batch():
        for i in range(count):
            customer = f"keeper-{i:04d}"
            graph.register(customer, {"first_name": f"Keepername{i:04d}", "city": "Oulu"}, at=T0)
            graph.link(customer, Link("email", f"keeper{i:04d}@keep.example"), at=T0)
            graph.record(
                Event(
                    "visit",
                    at=T0 + timedelta(minutes=i),
                    customer_id=customer,
                    data={"note": f"keeper note {i:04d}"},
                    id=f"ev-keeper-{i:04d}",
                )
            )


#: Values of the keepers that must still be in the files after forget.
KEPT = (*KEPT_TEXTS, "Keepername0007", "keeper0123@keep.example", "keeper note 0042")


def file_bytes(path: Path) -> bytes:
    """The raw bytes of a SQLite store: the file, its WAL and shared memory."""
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal", "-shm")
        if Path(f"{path}{suffix}").exists()
    )


def found(data: bytes, texts: tuple[str, ...] = ERASED_TEXTS) -> list[str]:
    return [text for text in texts if text.encode("utf-8") in data]


def sqlite_store(path: Path, count: int = 300, **options: object) -> IdentityGraph:
    graph = IdentityGraph.open(path, **options)
    erasure_scenario(graph)
    keepers(graph, count)
    graph.checkpoint()  # the checkpoint now holds the person too
    return graph


# ------------------------------------------------------------------ SQLite


@pytest.mark.parametrize("second", [False, True], ids=["alone", "second graph open"])
def test_sqlite_forget_leaves_no_byte_of_the_person(tmp_path: Path, second: bool) -> None:
    path = tmp_path / "graph.db"
    graph = sqlite_store(path)
    assert found(file_bytes(path)) == list(ERASED_TEXTS)  # all there before
    other = IdentityGraph.open(path) if second else None
    if other is not None:
        assert other.events(ERASED_PERSON)  # its memory holds the person, events too
    entry = graph.forget(ERASED_PERSON, at=LATER, reason="request 17")
    assert entry is not None
    data = file_bytes(path)
    assert found(data) == []
    assert found(data, KEPT) == list(KEPT)
    # VACUUM ran: no free page is left to hold an old byte.
    assert sql_rows(path, "PRAGMA freelist_count") == [(0,)]
    # secure_delete is back to what this build's connections start with.
    assert sql_rows(path, "PRAGMA secure_delete") == [
        graph.store._conn.execute("PRAGMA secure_delete").fetchone()  # type: ignore[union-attr]
    ]
    if other is not None:
        assert other == graph
        assert other.suppressed(ERASED_PERSON)
        assert found(repr([list(other.journal()), other.refusals()]).encode()) == []
        other.close()
    graph.close()
    assert found(file_bytes(path)) == []
    with IdentityGraph.open(path) as reopened:
        assert ERASED_PERSON not in reopened.customers()
        reopened.verify()


def test_sqlite_an_open_read_keeps_the_old_pages_and_forget_says_so(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    graph = sqlite_store(path, timeout=0.3)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM ig_journal").fetchone()[0] > 0
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"erasure was committed.*kept reading"):
        graph.forget(ERASED_PERSON, at=LATER)
    assert time.monotonic() - started < 10  # waited about timeout, not 50 times it
    # Committed: every graph has forgotten; the reader's snapshot still
    # sees the old rows, so their bytes are still in the files.
    assert ERASED_PERSON not in graph.customers()
    with IdentityGraph.open(path) as fresh:
        assert fresh.suppressed(ERASED_PERSON)
        assert fresh == graph
    old = "SELECT COUNT(*) FROM ig_journal WHERE record LIKE '%Erasmina%'"
    assert reader.execute(old).fetchone()[0] > 0
    assert found(file_bytes(path))
    # The graph keeps working.
    graph.link("keeper-0001", Link("email", "after@keep.example"), at=LATER)
    # Once the read is over and the last connection closes, SQLite copies
    # the log into the file and removes it: the old pages are gone.
    reader.execute("ROLLBACK")
    reader.close()
    graph.close()
    data = file_bytes(path)
    assert found(data) == []
    assert found(data, KEPT) == list(KEPT)


def test_sqlite_without_the_vacuum_the_next_close_still_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after a crash between the commit and VACUUM: the pages the
    erasure changed or freed were zeroed (secure_delete), so once the log
    is copied into the file no erased byte remains."""
    path = tmp_path / "graph.db"
    graph = sqlite_store(path)
    monkeypatch.setattr(SQLiteStore, "scrub", lambda self: None)
    graph.forget(ERASED_PERSON, at=LATER)
    assert found(file_bytes(path))  # the log still holds the old frames
    graph.close()  # the last connection: the log goes into the file
    data = file_bytes(path)
    assert found(data) == []
    assert found(data, KEPT) == list(KEPT)


# -------------------------------------------------------------- PostgreSQL


TOUCHED = ("ig_journal", "ig_events", "ig_refusals", "ig_checkpoints", "ig_meta")


def table_text(url: str) -> str:
    """Every row of every ig_* table of the graph's schema, as text."""
    tables = [
        name
        for (name,) in sql_rows(
            url,
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'ig\\_%'",
        )
    ]
    assert set(TOUCHED) <= set(tables), tables
    return "\n".join(
        row[0] for table in tables for row in sql_rows(url, f"SELECT t::text FROM {table} t")
    )


def test_postgres_forget_leaves_no_row_text_and_vacuums(postgres_url: str) -> None:
    graph = IdentityGraph.open(postgres_url)
    erasure_scenario(graph)
    keepers(graph, 150)
    graph.checkpoint()
    assert found(table_text(postgres_url).encode()) == list(ERASED_TEXTS)
    stats = (
        "SELECT relname, last_vacuum, n_dead_tup FROM pg_stat_user_tables"
        " WHERE schemaname = current_schema()"
    )
    assert all(row[1] is None for row in sql_rows(postgres_url, stats))

    graph.forget(ERASED_PERSON, at=LATER, reason="request 17")

    text = table_text(postgres_url).encode()
    assert found(text) == []
    assert found(text, KEPT) == list(KEPT)

    def vacuumed() -> bool:
        # Only that VACUUM ran: n_dead_tup may count the forgetting session's
        # dead rows again, its statistics being flushed after the VACUUM's.
        rows = {name: last for name, last, _dead in sql_rows(postgres_url, stats)}
        return all(rows[name] is not None for name in TOUCHED)

    eventually(vacuumed, "VACUUM ran on every table forget touched")
    graph.verify()
    graph.close()


# ------------------------------------------------------------------- crash


def picture(graph: IdentityGraph) -> tuple[object, ...]:
    """The graph's state, its event ids and its refusals (cheaper than
    ``snapshot``, which also computes indicators).  ``_check`` loads the
    events first (a graph that only forgot never read them)."""
    graph._check()
    return (graph._state(), sorted(graph._ledger.by_id()), graph.refusals())


KILLS = 22
SEED = 20240615


@pytest.mark.slow
def test_sigkill_during_forget_leaves_the_person_whole_or_gone(tmp_path: Path) -> None:
    """A child opens a copy of one store and forgets the person; it is
    killed at a random moment (the forget takes about 0.05 s: the journal
    search and rewrite, the new checkpoint, VACUUM, the WAL truncation).
    Each copy must open, verify, and equal either the store before or the
    store after a forget that completed."""
    base = tmp_path / "base.db"
    graph = sqlite_store(base, count=1500)
    graph.forget("keeper-1499", at=T0 + timedelta(days=50))  # the key is stored
    before = picture(graph)
    graph.close()
    done = tmp_path / "done.db"
    shutil.copyfile(base, done)
    with IdentityGraph.open(done) as reference:
        started = time.monotonic()
        reference.forget(ERASED_PERSON, at=T0 + timedelta(days=400), reason="crash test")
        took = time.monotonic() - started
        after = picture(reference)
    assert before != after

    rng = random.Random(SEED)
    outcomes = []
    copies = [tmp_path / f"kill-{kill}.db" for kill in range(KILLS)]
    shutil.copyfile(base, copies[0])
    upcoming = start("forget", copies[0], ERASED_PERSON)
    for kill, path in enumerate(copies):
        child = upcoming
        wait_for(child, "IMPORTED")
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        wait_for(child, "READY")
        time.sleep(rng.uniform(0, took * 1.6))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"the child died by itself:\n{err}"
        if kill + 1 < KILLS:
            shutil.copyfile(base, copies[kill + 1])
            upcoming = start("forget", copies[kill + 1], ERASED_PERSON)

        integrity_check(path)
        with IdentityGraph.open(path) as opened:
            opened.verify()
            now = picture(opened)
        assert now in (before, after), f"kill {kill}: the person is half erased"
        outcomes.append("gone" if now == after else "whole")
        if now == after:
            # The last connection closed: the log is in the file and removed,
            # and the pages the erasure freed were zeroed (secure_delete),
            # even when the kill came before VACUUM.
            assert found(file_bytes(path)) == [], f"kill {kill}"
    # The kills landed on both sides of the commit.
    assert outcomes.count("whole") >= 3 and outcomes.count("gone") >= 3, outcomes


# -------------------------------------------------------------- two writers

PEOPLE = [f"p-erase-{k}" for k in range(5)]


def two_writers(target: str, tmp_path: Path) -> None:
    """``eraser`` forgets PEOPLE while ``busy`` links, records and reads;
    then both must serve the same graph, the store's, and nothing returned
    to either is lost."""
    from .workers import add_gone_person, digest, gone_texts

    with IdentityGraph.open(target) as graph:
        for person in PEOPLE:
            add_gone_person(graph, person, T0)
        for i in range(10):
            graph.register(f"b{i}", at=T0)
    people = ",".join(PEOPLE)
    procs = [
        start("eraser", target, people, tmp_path / "eraser.txt"),
        start("busy", target, 300, 7, people, tmp_path / "busy.txt"),
    ]
    for proc in procs:
        wait_for(proc, "READY", timeout=60)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        wait_for(proc, "DONE", timeout=120)
    for proc in procs:  # both are done writing: catch up and report
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        finish(proc)

    eraser_lines = (tmp_path / "eraser.txt").read_text().splitlines()
    assert [line[2:] for line in eraser_lines if line.startswith("F ")] == PEOPLE
    busy = Reported()
    busy.read(tmp_path / "busy.txt")
    last = [line[2:] for line in eraser_lines if line.startswith("X ")] + busy.last_words
    words = {word["worker"]: word for word in map(json.loads, last)}
    assert words["busy"]["checks"] >= 30

    # Nothing busy was told is lost; the store opens to the replay of its journal.
    check_store(target, busy, ("link", "relink"))
    assert len(busy.seqs) > 50 and len(busy.events) > 30
    with IdentityGraph.open(target) as fresh, IdentityGraph.open(target) as again:
        assert fresh == again
        assert words["eraser"]["digest"] == words["busy"]["digest"] == digest(fresh)
        fresh.verify()
        served = repr([list(fresh.journal()), fresh.refusals(), fresh.events("b0")])
        for person in PEOPLE:
            assert fresh.suppressed(person)
            assert [text for text in gone_texts(person) if text in served] == []
        # The interleaving was real: busy's entries come before and after erasures.
        forgets = [entry.seq for entry in fresh.journal() if entry.op == "forget"]
        assert min(busy.seqs) < forgets[0] and max(busy.seqs) > forgets[-1]


@pytest.mark.slow
def test_sqlite_two_writers_one_forgetting(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    two_writers(str(path), tmp_path)
    integrity_check(path)
    assert found(file_bytes(path), tuple(text for p in PEOPLE for text in _gone(p))) == []


@pytest.mark.slow
def test_postgres_two_writers_one_forgetting(tmp_path: Path, postgres_url: str) -> None:
    two_writers(postgres_url, tmp_path)
    text = table_text(postgres_url).encode()
    assert found(text, tuple(text for p in PEOPLE for text in _gone(p))) == []


def _gone(person: str) -> list[str]:
    from .workers import gone_texts

    return gone_texts(person)


def test_postgres_forget_command_says_the_tables_were_vacuumed(postgres_url: str) -> None:
    """Regression: the command's summary said "the store was vacuumed" on
    every store; on PostgreSQL its tables are vacuumed, and an id erased
    already is named by its keyed hash."""
    from click.testing import CliRunner

    from identity_graph.cli import cli

    with IdentityGraph.open(postgres_url) as graph:
        graph.link("qx-7", Link("email", "qx7@example.org"), at=LATER)
    runner = CliRunner()
    first = runner.invoke(cli, ["forget", "qx-7", "--db", postgres_url])
    assert first.exit_code == 0, first.output
    assert first.output.endswith("; the store's tables were vacuumed\n"), first.output
    again = runner.invoke(cli, ["forget", "qx-7", "--db", postgres_url])
    assert again.exit_code == 0, again.output
    hashed = first.output.split(" ")[4]
    assert hashed.startswith("erased:")
    assert again.output == f"customer {hashed} was erased already; nothing to do\n"
    assert "qx-7" not in first.output + again.output


# -------------------------------------------------------------- the review's findings


def _small(path: Path) -> IdentityGraph:
    g = IdentityGraph.open(path)
    g.register("ann", {"first_name": "Annqx"}, at=T0)
    g.link("ann", Link("email", "ann.qx@example.com"), at=T0)
    g.link("bob", Link("email", "bob@example.com"), at=T0)
    g.record(Event("purchase", at=LATER, customer_id="ann", id="T-ANN-1", data={"amount": "77.31"}))
    with pytest.raises(InvalidLink):
        g.link("bob", Link("email", "null"), at=LATER)
    return g


def test_a_failed_erasure_writes_nothing(tmp_path: Path) -> None:
    """A damaged refusal row, found after the journal and event rows had
    been rewritten, was a StoreError the write path committed like a
    refusal: half an erasure (rows hashed, no forget entry) was kept."""
    path = tmp_path / "graph.db"
    g = _small(path)

    def rows() -> dict[str, list[tuple[object, ...]]]:
        return {
            table: sql_rows(path, f"SELECT * FROM {table}")
            for table in ("ig_journal", "ig_events", "ig_meta")
        }

    before = rows()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ig_refusals SET body = 'garbage'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="ig_refusals row 1 is damaged"):
        g.forget("ann", at=LATER)
    g.close()
    assert rows() == before


def test_forgets_in_one_batch_write_one_checkpoint(tmp_path: Path) -> None:
    """Each forget of a batch wrote a checkpoint and moved the epoch."""
    g = IdentityGraph.open(tmp_path / "graph.db")
    for i in range(5):
        g.link(f"c{i}", Link("email", f"u{i}@example.com"), at=T0)
    store = g.store
    assert store is not None
    saved: list[int] = []
    original = store.save_checkpoint
    store.save_checkpoint = lambda row: (saved.append(row[0]), original(row))[1]  # type: ignore[method-assign]
    with g.batch():
        for i in range(4):
            g.forget(f"c{i}", at=LATER)
    assert saved == [len(list(g.journal()))]
    store.begin(False)
    try:
        assert store.head().epoch == 1
    finally:
        store.rollback()
    g.close()


def test_another_graph_drops_the_erased_spelling_from_its_cache(tmp_path: Path) -> None:
    """A second graph that had resolved the person's email kept its
    spelling in its link cache after catching up to the erasure."""
    path = tmp_path / "graph.db"
    first = _small(path)
    second = IdentityGraph.open(path)
    assert second.resolve(Link("email", "Ann.QX@Example.com")) == "ann"
    first.forget("ann", at=LATER)
    assert second.customers() == ["bob"]
    strings = [text for text in reachable_strings(second) if "ann.qx" in text.lower()]
    assert strings == []
    first.close()
    second.close()


def test_another_graph_drops_the_erased_words_of_its_last_merge_reason(tmp_path: Path) -> None:
    """A graph that had merged with a reason naming the person kept that
    reason (remembered to skip checking it again) after another graph
    erased the person: only its own forget cleared it."""
    path = tmp_path / "graph.db"
    first = _small(path)
    second = IdentityGraph.open(path)
    second.merge("ann", "bob", reason="ann.qx@example.com called", at=LATER)
    first.forget("ann", at=LATER)
    assert second.customers() == ["bob"]
    strings = [text for text in reachable_strings(second) if "ann.qx" in text.lower()]
    assert strings == []
    first.close()
    second.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_others_free_text_in_other_capitals_is_found_in_the_store(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """The store searched its journal rows for the exact stored value only:
    another customer's attribute spelling the email in capitals stayed."""
    target: str | Path = tmp_path / "graph.db"
    if kind == "postgres":
        target = request.getfixturevalue("postgres_url")
    g = IdentityGraph.open(target)
    g.link("ann", Link("email", "ann.qx@example.com"), at=T0)
    g.register("bob", {"spouse": "Ann.QX@Example.COM", "city": "Oulu"}, at=T0)
    g.forget("ann", at=LATER)
    assert g.attributes("bob")["spouse"].startswith("erased:")
    assert IdentityGraph.from_journal(g.journal(), secret=g.state.suppression.secret) == g
    g.close()
    rows = sql_rows(target, "SELECT record FROM ig_journal")
    assert not any("ann.qx" in str(row).lower() for row in rows)
