"""Shared by the crash, I/O-fault and concurrency tests: starting the worker
processes of ``workers.py``, reading what they report, and checking a store
against it with the library's own invariants and with plain SQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identity_graph import IdentityGraph

WORKERS = Path(__file__).with_name("workers.py")


#: Every worker started, so a failing test leaves none behind (see conftest).
STARTED: list[subprocess.Popen[str]] = []


def start(*args: object, **popen: Any) -> subprocess.Popen[str]:
    """``python workers.py *args`` with pipes on stdin, stdout and stderr."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKERS), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    STARTED.append(proc)
    return proc


def reap() -> None:
    """Kill and wait for every worker still running."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_for(proc: subprocess.Popen[str], word: str, timeout: float = 30.0) -> None:
    """Wait until the worker prints ``word``; fail with its stderr if it dies first."""
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        while line := proc.stdout.readline():
            if line.strip() == word:
                return
    finally:
        watchdog.cancel()
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"worker did not print {word} (exit {proc.returncode}):\n{err}")


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout``.

    For facts a server makes true a little after the call that causes them
    (a closed connection leaves ``pg_stat_activity`` after the backend has
    noticed it): reading once races the server, on a loaded machine most of all.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g} s still not true: {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Wait for a worker that should exit cleanly; fail with its stderr if not."""
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed (exit {proc.returncode}):\n{err}"


@dataclass
class Reported:
    """What workers reported as returned (complete lines only)."""

    seqs: dict[int, str] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    checkpoints: list[int] = field(default_factory=list)
    last_words: list[str] = field(default_factory=list)
    lines: int = 0

    def read(self, path: Path) -> None:
        self.parse(path.read_text() if path.exists() else "")

    def parse(self, text: str) -> None:
        complete = text.split("\n")[:-1]  # a last piece without "\n" was cut by a kill
        for line in complete:
            kind, _, rest = line.partition(" ")
            self.lines += 1
            if kind == "J":
                seq_text, _, op = rest.partition(" ")
                seq = int(seq_text)
                assert seq not in self.seqs, f"entry {seq} returned to two calls"
                self.seqs[seq] = op
            elif kind == "E":
                self.events.add(rest)
            elif kind == "C":
                self.checkpoints.append(int(rest))
            elif kind == "S":
                pass  # a checkpoint started
            elif kind == "X":
                self.last_words.append(rest)
            else:
                raise AssertionError(f"bad report line {line!r}")


def sql_rows(target: str | Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` over a plain connection, bypassing the library."""
    if str(target).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(target), autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(query).fetchall()]
    conn = sqlite3.connect(target)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def integrity_check(path: Path) -> None:
    assert sql_rows(path, "PRAGMA integrity_check") == [("ok",)]


def check_store(target: str | Path, reported: Reported, ops: Sequence[str] = ()) -> int:
    """Everything a store must satisfy after crashes or concurrent writers:

    - the journal's seqs are exactly 1..n (in SQL and through the library);
    - every entry a call returned is in the journal with that call's op;
    - every event a call recorded is in the ledger, once;
    - the state the store opens to equals the replay of its journal, and
      every internal invariant holds (no customer in two profiles…).

    Returns the journal's length."""
    rows = sql_rows(target, "SELECT seq, op FROM ig_journal ORDER BY seq")
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), "journal has a gap"
    journal_ops = dict(rows)
    for seq, op in reported.seqs.items():
        assert seq in journal_ops, f"returned entry {seq} ({op}) is not in the journal"
        if op in ops:
            assert journal_ops[seq] == op, f"entry {seq} is a {journal_ops[seq]}, not a {op}"
    ids = [event_id for (event_id,) in sql_rows(target, "SELECT id FROM ig_events")]
    assert len(ids) == len(set(ids))
    missing = reported.events - set(ids)
    assert not missing, f"{len(missing)} recorded events not in the ledger: {sorted(missing)[:5]}"

    graph = IdentityGraph.open(target, checkpoint_every=10**9)  # reads only
    try:
        entries = list(graph.journal())
        assert [entry.seq for entry in entries] == list(range(1, len(rows) + 1))
        replayed = IdentityGraph.from_journal(entries)
        assert graph._state() == replayed._state()
        graph._check()
        seen: dict[str, str] = {}
        for profile in graph.profiles():
            for customer in profile.customer_ids:
                assert customer not in seen, f"{customer} in {seen[customer]} and {profile.id}"
                seen[customer] = profile.id
        assert sorted(seen) == sorted(graph.customers())
    finally:
        graph.close()
    return len(rows)
