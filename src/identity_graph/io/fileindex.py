"""What the customers importer remembers of the file it is reading.

A customers file is the truth for what it says, so it must not contradict
itself: one row per customer, one customer per link value.  Checking that
needs the rows already read, which a streaming importer does not keep; this
index keeps just the keys (link values, customer ids, ``generate()`` counts)
and the rows put off until the end of the file, in a private temporary
SQLite database that spills to a temporary file, so memory stays flat
however long the file is.  It is scratch space for one
import, thrown away at the end — never the graph's storage.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from typing import Any

from .tables import ClosesOnExit

__all__ = ["FileIndex"]

_SCHEMA = (
    "CREATE TABLE link (name TEXT, value TEXT, row INTEGER, PRIMARY KEY (name, value))"
    " WITHOUT ROWID",
    "CREATE TABLE customer (id TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID",
    "CREATE TABLE generate (id TEXT, name TEXT, row INTEGER, cells INTEGER,"
    " PRIMARY KEY (id, name)) WITHOUT ROWID",
    "CREATE TABLE deferred (row INTEGER PRIMARY KEY, cells BLOB)",
    "CREATE TABLE rejected (row INTEGER PRIMARY KEY)",
)


class FileIndex(ClosesOnExit):
    """Which row of the file first gave each link value and each customer,
    and each applied row's ``generate()`` cells.  Every call is O(log n) for
    n keys so far."""

    def __init__(self) -> None:
        # "" is SQLite's private temporary database: pages beyond its cache
        # go to a temporary file, deleted on close.
        self._db = sqlite3.connect("", isolation_level=None)
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.execute("BEGIN")  # one transaction: no sync per insert

    def claim_links(self, links: list[tuple[str, str]], row: int) -> dict[tuple[str, str], int]:
        """Note that ``row`` gives ``links``; return the earlier row of each one
        an earlier row gave already (whatever became of that row: the claim
        is the file's content)."""
        earlier: dict[tuple[str, str], int] = {}
        for name, value in links:
            first = self.row_of_link(name, value)
            if first is None:
                self._db.execute("INSERT INTO link VALUES (?, ?, ?)", (name, value, row))
            elif first != row:
                earlier[(name, value)] = first
        return earlier

    def row_of_link(self, name: str, value: str) -> int | None:
        """The first row that gave the link, or None."""
        found = self._db.execute(
            "SELECT row FROM link WHERE name = ? AND value = ?", (name, value)
        ).fetchone()
        return None if found is None else int(found[0])

    def claim_customer(self, customer: str, row: int) -> int | None:
        """Note that ``row`` is ``customer``'s; return an earlier row of the
        same customer (which keeps it), or None."""
        found = self._db.execute("SELECT row FROM customer WHERE id = ?", (customer,)).fetchone()
        if found is None:
            self._db.execute("INSERT INTO customer VALUES (?, ?)", (customer, row))
            return None
        return None if found[0] == row else int(found[0])

    def note_generate(self, customer: str, name: str, row: int, cells: int) -> None:
        """Note that the applied ``row`` of ``customer`` has ``cells``
        ``generate()`` cells for link ``name``."""
        self._db.execute(
            "INSERT OR REPLACE INTO generate VALUES (?, ?, ?, ?)", (customer, name, row, cells)
        )

    def generate_of(self, customer: str, name: str) -> tuple[int, int] | None:
        """``(row, cells)`` noted for ``customer`` and ``name``, or None."""
        found = self._db.execute(
            "SELECT row, cells FROM generate WHERE id = ? AND name = ?", (customer, name)
        ).fetchone()
        return None if found is None else (int(found[0]), int(found[1]))

    def defer(self, row: int, cells: list[Any]) -> None:
        """Keep ``row``'s cells to try it again at the end of the file."""
        # pickle: the cells are this process's own values (str, numbers,
        # dates, Decimal), read back only by this process.
        self._db.execute("INSERT INTO deferred VALUES (?, ?)", (row, pickle.dumps(cells)))

    def undefer(self, row: int) -> None:
        """Forget a row that was put off."""
        self._db.execute("DELETE FROM deferred WHERE row = ?", (row,))

    def deferred(self) -> Iterator[tuple[int, list[Any]]]:
        """The rows put off, in file order; a row put off or forgotten while
        this runs is seen or skipped as its place in the file says."""
        after = 0
        while True:
            found = self._db.execute(
                "SELECT row, cells FROM deferred WHERE row > ? ORDER BY row LIMIT 1", (after,)
            ).fetchone()
            if found is None:
                return
            after = int(found[0])
            yield after, pickle.loads(found[1])  # our own bytes, see defer

    def reject(self, row: int) -> None:
        """Note that ``row`` was rejected (a later row's message says so)."""
        self._db.execute("INSERT OR IGNORE INTO rejected VALUES (?)", (row,))

    def fate(self, row: int) -> str:
        """What became of ``row`` so far: ``"rejected"``, ``"deferred"`` (put
        off until the end of the file) or ``"applied"``."""
        if self._db.execute("SELECT 1 FROM rejected WHERE row = ?", (row,)).fetchone():
            return "rejected"
        if self._db.execute("SELECT 1 FROM deferred WHERE row = ?", (row,)).fetchone():
            return "deferred"
        return "applied"

    def close(self) -> None:
        self._db.close()
