"""``SQLiteStore``: the embedded default for durable use.

- **WAL** journal mode: readers never block the writer nor the writer them.
- **``BEGIN IMMEDIATE``** for every write: the write lock is taken before
  the graph catches up and decides, so two processes on one file take turns
  instead of one failing halfway; a waiting writer sleeps in SQLite's busy
  handler for up to ``timeout`` seconds (default 60) before giving up with a
  clear error.
- **``synchronous=FULL``** by default: a call that returned survives a power
  cut.  ``synchronous="NORMAL"`` is faster (no fsync of the WAL per commit)
  and still never corrupts the file, but the last commits before a power cut
  (not a process crash) may be lost — see ``docs/stores.md``.
- ``read_only=True`` opens the file with ``mode=ro``: reads work, every
  write raises ``StoreError`` (a reporting process that must never write),
  and a file holding no store (an empty one among them) is refused.
  Without it, a missing or empty file becomes a new store.
- Opening runs ``PRAGMA quick_check`` (every page read once: about 50 ms
  for a 46 MiB store of 100,000 entries and events) and refuses a damaged
  file with ``StoreError`` before anything is written to it;
  :meth:`SQLiteStore.verify` with ``full=True`` runs the slower
  ``PRAGMA integrity_check``, which also compares every index with its table.
- Reads poll ``PRAGMA data_version`` (a counter SQLite bumps when *another*
  connection commits), so a read in a single-process program never queries
  the tables just to learn that nothing changed.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import StoreError
from .schema import LATEST
from .sql import SqlStore

__all__ = ["SQLiteStore"]

_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


class SQLiteStore(SqlStore):
    """A graph in one SQLite file."""

    param = "?"
    types: ClassVar[dict[str, str]] = {
        "bigint": "INTEGER",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "blob": "BLOB",
    }
    driver_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        timeout: float = 60.0,
        read_only: bool = False,
    ) -> None:
        if str(synchronous).upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous={synchronous!r} must be one of {_SYNCHRONOUS}")
        self.path = Path(path)
        self._timeout = timeout
        self.describe = str(self.path)
        try:
            # isolation_level=None: autocommit; transactions are begun by hand
            # so that writes can say IMMEDIATE.
            if read_only:
                # mode=ro: every write fails in SQLite itself (root included).
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, timeout=timeout, isolation_level=None, uri=True)
            else:
                self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite store {self.describe}: {error}") from error
        try:
            # Refuse a newer store before changing anything in it (even its
            # journal mode).
            version = self.schema_version()
            if version > LATEST:
                raise self.too_new(version)
            if read_only and version == 0 and not self._has_relation("ig_journal"):
                # Creating the store would be the first write (the file may
                # be empty: SQLite takes an empty file for an empty database).
                raise StoreError(
                    f"{self.describe} holds no identity_graph store, and read_only=True"
                    " cannot create one"
                )
            self.verify(full=False)
            if not read_only:
                self._use_wal(timeout)
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.open_schema()
        except BaseException as error:
            self._conn.close()
            if isinstance(error, sqlite3.Error):
                raise StoreError(f"cannot open SQLite store {self.describe}: {error}") from error
            raise
        self._data_version = -1
        # secure_delete as it was before an erasure turned it on (None: not on).
        self._secure_delete: int | None = None

    def _use_wal(self, timeout: float) -> None:
        """Switch the file to WAL (once; the mode is kept in the file).

        Changing the journal mode needs the file to itself, and SQLite
        answers "database is locked" at once, without its busy handler, when
        another process is opening or writing the same new file: so wait
        here, as a writer would, up to ``timeout``.
        """
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def verify(self, full: bool = False) -> None:
        """``PRAGMA quick_check`` (``full``: ``integrity_check``); a damaged
        file raises ``StoreError`` quoting SQLite's first findings, with the
        table each damaged b-tree belongs to.  O(file size)."""
        pragma = "integrity_check" if full else "quick_check"
        try:
            found = [str(row[0]) for row in self._conn.execute(f"PRAGMA {pragma}(20)")]
        except sqlite3.DatabaseError as error:
            # The damage can stop the check itself (a garbled first page).
            found = [str(error)]
        if found == ["ok"]:
            return
        raise StoreError(f"{self.describe} is damaged (PRAGMA {pragma}): {self._name_trees(found)}")

    def _name_trees(self, findings: list[str]) -> str:
        """SQLite's first three findings on one line, a b-tree's root page
        ("Tree 5", "tree page 5") followed by its table's or index's name."""
        lines = [
            line.strip()
            for finding in findings
            for line in finding.splitlines()
            if line.strip() and not line.startswith("***")
        ]
        text = "; ".join(lines[:3])
        try:
            roots = dict(self._conn.execute("SELECT rootpage, name FROM sqlite_master"))
        except sqlite3.DatabaseError:
            return text  # the schema itself is damaged: the page numbers must do
        return re.sub(
            r"\b(?:Tree|tree page) (\d+)",
            lambda m: (
                f"{m.group(0)} ({roots[int(m.group(1))]})"
                if int(m.group(1)) in roots
                else m.group(0)
            ),
            text,
        )

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def _has_relation(self, name: str) -> bool:
        return bool(self.fetch("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)))

    def begin(self, write: bool) -> None:
        self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def changed(self) -> bool:
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        changed, self._data_version = version != self._data_version, version
        return changed

    def erasing(self) -> None:
        # Deleted and rewritten content is overwritten with zeros, in the
        # pages written to the WAL and, at the checkpoint, in the file.
        # Some builds have it on by default: scrub() puts back what it was.
        if self._secure_delete is None:
            self._secure_delete = int(self._conn.execute("PRAGMA secure_delete").fetchone()[0])
        self._conn.execute("PRAGMA secure_delete=ON")

    def scrub(self) -> None:
        """After an erasure: ``VACUUM`` rebuilds the file from the live rows
        (no free page or free space inside a page keeps an old byte), then
        the WAL is checkpointed into the file and truncated to zero bytes,
        so neither file keeps a page written before.  O(file size).

        A connection in the middle of a read (an open read transaction,
        in this process or another) still sees the old pages, and SQLite
        keeps them for it: the checkpoint waits for it as a writer waits
        for the lock (up to ``timeout``), then ``StoreError`` says the old
        pages stay until a checkpoint can run.  An open graph between
        calls holds no read, and does not get in the way."""
        conn = self._conn
        try:
            conn.execute("VACUUM")
            # One call: SQLite's busy handler does the waiting (up to timeout).
            busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                raise StoreError(
                    f"{self.describe}: the erasure was committed, but another connection"
                    f" kept reading for {self._timeout:g} s, so the write-ahead log could not"
                    f" be copied into the file and truncated: the old pages stay readable"
                    f" in {self.path.name} and {self.path.name}-wal until a checkpoint"
                    " runs with no read open (at the latest when the last connection"
                    " closes)"
                )
        finally:
            if self._secure_delete is not None:
                conn.execute(f"PRAGMA secure_delete={self._secure_delete:d}")
                self._secure_delete = None

    def close(self) -> None:
        self._conn.close()
