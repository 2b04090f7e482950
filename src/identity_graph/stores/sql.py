"""What the SQLite and PostgreSQL stores share: the queries and the migrations.

The dialects differ in their placeholder (``?`` / ``%s``), their types, how
a writer takes the lock and how a driver reports a busy or failed write;
each subclass says those and nothing else.  Long reads go in chunks of
:data:`CHUNK` rows keyed on the primary key, so loading a million events
never holds them all as rows at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ..errors import SchemaVersionError, StoreError
from .base import CheckpointRow, EventRow, Extent, Head, JournalRow, RefusalRow, Store
from .schema import LATEST, META, TRACES, statements

__all__ = ["CHUNK", "SqlStore"]

#: Rows fetched per query when reading a table in order.
CHUNK = 5000

#: What ig_meta may hold as a schema version or a seq: a whole number from 1
#: (0 for a seq), in plain digits; anything else is a damaged row.
_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")


class SqlStore(Store):
    """A store over a DB-API connection in autocommit mode, transactions by hand."""

    param = "?"
    types: ClassVar[dict[str, str]] = {}
    #: SQL that lower-cases the ASCII letters of ``{0}`` (SQLite's lower()).
    lower = "lower({0})"
    #: SQL that is true when column ``{0}`` contains the text ``?``.
    contains = "instr({0}, ?) > 0"

    # --- dialect hooks -----------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _insert_many(
        self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows`` into ``table``: one prepared statement run over
        them all (``executemany``).  PostgreSQL copies a large batch."""
        marks = ", ".join("?" * len(columns))
        self._executemany(
            self._q(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"), rows
        )

    def _q(self, sql: str) -> str:
        return sql if self.param == "?" else sql.replace("?", self.param)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one statement (``?`` placeholders), for the dialects."""
        return list(self._execute(self._q(sql), params).fetchall())

    # --- schema --------------------------------------------------------------

    def open_schema(self) -> None:
        """Check the schema version; migrate under the write lock if it is old.

        A store already at :data:`LATEST` is opened without writing, so a
        read-only file or a read-only database role can still be read.
        """
        version = self.schema_version()
        if version > LATEST:
            raise self.too_new(version)
        if version == LATEST:
            return
        self.begin(True)
        try:
            self._migrate()  # reads the version again: another process may have migrated
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def too_new(self, version: int) -> SchemaVersionError:
        """The error for a store written by a newer version of the library."""
        return SchemaVersionError(
            f"{self.describe} has schema version {version} (ig_meta row schema_version);"
            f" this library knows versions up to {LATEST}; upgrade identity_graph to open it"
        )

    def _meta_number(self, key: str, value: Any, least: int) -> int:
        """An ig_meta value as a number, or ``StoreError`` naming the row."""
        text = str(value)
        if not _NUMBER.fullmatch(text) or int(text) < least:
            raise StoreError(
                f"{self.describe}: ig_meta row {key} holds {text[:40]!r}, not a whole number"
                f" from {least}: the store is damaged"
            )
        return int(text)

    def _migrate(self) -> None:
        """Bring the schema to :data:`LATEST`; the caller holds the write lock
        and rolls back if this raises.  A version row that is missing or
        lower than the tables show is refused before anything runs; a
        statement the database refuses raises ``StoreError`` naming its
        migration."""
        self._execute(META)
        rows = self.fetch("SELECT value FROM ig_meta WHERE key = 'schema_version'")
        version = self._meta_number("schema_version", rows[0][0], 1) if rows else 0
        if version > LATEST:
            raise self.too_new(version)
        self._check_traces(version, bool(rows))
        step = version
        try:
            for step in range(version + 1, LATEST + 1):
                for statement in statements(step, self.types):
                    self._execute(statement)
            step = LATEST  # recording the new version
            if version == 0:
                self._execute(
                    self._q("INSERT INTO ig_meta (key, value) VALUES ('schema_version', ?)"),
                    (str(LATEST),),
                )
            elif version < LATEST:
                self._execute(
                    self._q("UPDATE ig_meta SET value = ? WHERE key = 'schema_version'"),
                    (str(LATEST),),
                )
        except self.driver_errors as error:
            raise StoreError(
                f"{self.describe}: migration {step} of the schema (from version {version}"
                f" to {LATEST}) failed: {error}; the store was left as it was, at version"
                f" {version}"
            ) from error

    def _check_traces(self, version: int, recorded: bool) -> None:
        """``StoreError`` if a migration above ``version`` has left its trace
        (:data:`~.schema.TRACES`): the version row was lowered or deleted.
        Only on the way to a migration; a few catalogue queries."""
        for step in range(LATEST, version, -1):
            kind, name = TRACES[step]
            if kind == "ig_meta row":
                found = self._has_relation("ig_meta") and bool(
                    self.fetch("SELECT 1 FROM ig_meta WHERE key = ?", (name,))
                )
            else:
                found = self._has_relation(name)
            if found:
                said = f"says version {version}" if recorded else "is missing"
                raise StoreError(
                    f"{self.describe}: ig_meta row schema_version {said}, but its tables are"
                    f" version {step}'s ({kind} {name} exists): the store is damaged"
                )

    def schema_version(self) -> int:
        if not self._has_relation("ig_meta"):
            return 0
        rows = self.fetch("SELECT value FROM ig_meta WHERE key = 'schema_version'")
        return self._meta_number("schema_version", rows[0][0], 1) if rows else 0

    def _has_relation(self, name: str) -> bool:
        """Whether a table or index ``name`` exists (where the queries look)."""
        raise NotImplementedError

    def _no_meta(self, key: str, what: str) -> StoreError:
        return StoreError(
            f"{self.describe}: ig_meta row {key} is missing: the store is damaged (every"
            f" store of schema version {LATEST} records there {what})"
        )

    def _no_journal_seq(self) -> StoreError:
        return self._no_meta("journal_seq", "the last journal row it wrote")

    # --- reads -----------------------------------------------------------------

    def head(self) -> Head:
        # One statement, so the count of events written matches the rows.
        (row,) = self.fetch(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM ig_journal),"
            " (SELECT COALESCE(MAX(pos), 0) FROM ig_events),"
            " (SELECT COALESCE(MAX(pos), 0) FROM ig_refusals),"
            " (SELECT value FROM ig_meta WHERE key = 'event_count'),"
            " (SELECT value FROM ig_meta WHERE key = 'erasure_epoch')"
        )
        if row[3] is None:
            raise self._no_meta("event_count", "the number of event rows it wrote")
        if row[4] is None:
            raise self._no_meta("erasure_epoch", "how many erasures it committed")
        written = self._meta_number("event_count", row[3], 0)
        epoch = self._meta_number("erasure_epoch", row[4], 0)
        return Head(int(row[0]), int(row[1]), int(row[2]), written, epoch)

    def extent(self) -> Extent:
        # MIN and MAX come from the primary key's index; COUNT walks it once
        # (about 12 ms for 100,000 rows in SQLite).
        (row,) = self.fetch(
            "SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0),"
            " (SELECT value FROM ig_meta WHERE key = 'journal_seq') FROM ig_journal"
        )
        if row[3] is None:
            raise self._no_journal_seq()
        written = self._meta_number("journal_seq", row[3], 0)
        return Extent(int(row[0]), int(row[1]), int(row[2]), written)

    def _chunks(self, sql: str, since: int, upto: int | None) -> Iterator[Any]:
        # Keyset pagination on the primary key (the first column).
        end = upto if upto is not None else 2**62
        while True:
            rows = self.fetch(sql, (since, end, CHUNK))
            yield from rows
            if len(rows) < CHUNK:
                return
            since = rows[-1][0]

    def journal(self, since: int, upto: int | None = None) -> Iterator[tuple[int, str]]:
        return self._chunks(
            "SELECT seq, record FROM ig_journal WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            since,
            upto,
        )

    def events(self, since: int, upto: int) -> Iterator[tuple[int, str, str]]:
        return self._chunks(
            "SELECT pos, anchor, body FROM ig_events WHERE pos > ? AND pos <= ?"
            " ORDER BY pos LIMIT ?",
            since,
            upto,
        )

    def journal_columns(self) -> Iterator[tuple[int, str, str, str]]:
        return self._chunks(
            "SELECT seq, op, at, record FROM ig_journal WHERE seq > ? AND seq <= ?"
            " ORDER BY seq LIMIT ?",
            0,
            None,
        )

    def event_columns(self) -> Iterator[tuple[int, str, str, str, str]]:
        return self._chunks(
            "SELECT pos, id, type, at, body FROM ig_events WHERE pos > ? AND pos <= ?"
            " ORDER BY pos LIMIT ?",
            0,
            None,
        )

    def refusals(self, since: int, upto: int) -> Iterator[tuple[int, str, str, str, str]]:
        return self._chunks(
            "SELECT pos, at, op, reason, body FROM ig_refusals WHERE pos > ? AND pos <= ?"
            " ORDER BY pos LIMIT ?",
            since,
            upto,
        )

    def checkpoint(self) -> CheckpointRow | None:
        rows = self.fetch("SELECT seq, format, state FROM ig_checkpoints ORDER BY seq DESC LIMIT 1")
        if not rows:
            return None
        seq, fmt, state = rows[0]
        # SQLite keeps whatever type a value was written with.
        for column, value, kinds in (
            ("format", fmt, (int,)),
            ("state", state, (bytes, bytearray, memoryview)),
        ):
            if type(value) not in kinds:
                raise StoreError(
                    f"{self.describe}: ig_checkpoints row {seq} is damaged: it is not a"
                    f" checkpoint this library writes: {column} {repr(value)[:60]}"
                )
        return int(seq), int(fmt), bytes(state)

    # --- erasure ---------------------------------------------------------------

    def journal_mentioning(
        self, needles: Sequence[str], folded: Sequence[str] = ()
    ) -> Iterator[tuple[int, str]]:
        tests = [self.contains.format("record")] * len(needles)
        tests.extend([self.contains.format(self.lower.format("record"))] * len(folded))
        if not tests:
            return
        needles = [*needles, *folded]
        test = " OR ".join(tests)
        sql = f"SELECT seq, record FROM ig_journal WHERE seq > ? AND ({test}) ORDER BY seq LIMIT ?"
        since = 0
        while True:
            rows = self.fetch(sql, (since, *needles, CHUNK))
            yield from rows
            if len(rows) < CHUNK:
                return
            since = rows[-1][0]

    def events_matching(
        self, anchors: Sequence[str], needles: Sequence[str]
    ) -> Iterator[tuple[int, str, str]]:
        # One pass over the table in the database (no index on the anchor:
        # it doubled the cost of every bulk insert); rows come in chunks.
        tests = [f"anchor IN ({', '.join('?' * len(anchors))})"] if anchors else []
        tests.extend([self.contains.format("body")] * len(needles))
        if not tests:
            return
        sql = (
            f"SELECT pos, anchor, body FROM ig_events WHERE pos > ? AND ({' OR '.join(tests)})"
            " ORDER BY pos LIMIT ?"
        )
        since = 0
        while True:
            rows = self.fetch(sql, (since, *anchors, *needles, CHUNK))
            yield from rows
            if len(rows) < CHUNK:
                return
            since = rows[-1][0]

    def rewrite_journal(self, rows: Sequence[tuple[int, str]]) -> None:
        self._executemany(
            self._q("UPDATE ig_journal SET record = ? WHERE seq = ?"),
            [(record, seq) for seq, record in rows],
        )

    def events_by_id(self, ids: Sequence[str]) -> list[tuple[int, str, str]]:
        found: list[tuple[int, str, str]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found.extend(
                (int(pos), event_id, body)
                for pos, event_id, body in self.fetch(
                    f"SELECT pos, id, body FROM ig_events WHERE id IN ({marks})", chunk
                )
            )
        return found

    def replace_events(self, rows: Sequence[tuple[int, EventRow]]) -> None:
        self._executemany(
            self._q(
                "UPDATE ig_events SET id = ?, type = ?, at = ?, anchor = ?, body = ? WHERE pos = ?"
            ),
            [(*row, pos) for pos, row in rows],
        )

    def delete_refusals(self, positions: Sequence[int]) -> None:
        self._executemany(
            self._q("DELETE FROM ig_refusals WHERE pos = ?"), [(pos,) for pos in positions]
        )

    def erasure_key(self) -> bytes | None:
        rows = self.fetch("SELECT value FROM ig_meta WHERE key = 'erasure_key'")
        if not rows:
            return None
        try:
            key = bytes.fromhex(str(rows[0][0]))
        except ValueError:
            key = b""
        if len(key) < 16:
            raise StoreError(
                f"{self.describe}: ig_meta row erasure_key is damaged: it is not a key of at"
                " least 16 bytes in hex digits"
            )
        return key

    def set_erasure_key(self, key: bytes) -> None:
        self._execute(
            self._q("INSERT INTO ig_meta (key, value) VALUES ('erasure_key', ?)"), (key.hex(),)
        )

    def bump_epoch(self) -> int:
        cursor = self._execute(
            "UPDATE ig_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)"
            " WHERE key = 'erasure_epoch'"
        )
        if cursor.rowcount != 1:
            raise self._no_meta("erasure_epoch", "how many erasures it committed")
        rows = self.fetch("SELECT value FROM ig_meta WHERE key = 'erasure_epoch'")
        return self._meta_number("erasure_epoch", rows[0][0], 1)

    # --- writes ----------------------------------------------------------------

    def append_journal(self, rows: Sequence[JournalRow]) -> None:
        self._insert_many("ig_journal", ("seq", "op", "at", "record"), rows)
        if rows:
            # In the same transaction: a journal that ends before this seq
            # has lost its last rows (Extent.written).
            cursor = self._execute(
                self._q("UPDATE ig_meta SET value = ? WHERE key = 'journal_seq'"),
                (str(rows[-1][0]),),
            )
            if cursor.rowcount != 1:
                raise self._no_journal_seq()  # the caller rolls back: nothing is written

    def append_events(self, rows: Sequence[EventRow]) -> None:
        self._insert_many("ig_events", ("id", "type", "at", "anchor", "body"), rows)
        if rows:
            # In the same transaction (and under the write lock): a table
            # with fewer rows has lost some (Head.events_written).
            cursor = self._execute(
                self._q(
                    "UPDATE ig_meta SET value = CAST(CAST(value AS BIGINT) + ? AS TEXT)"
                    " WHERE key = 'event_count'"
                ),
                (len(rows),),
            )
            if cursor.rowcount != 1:
                raise self._no_meta("event_count", "the number of event rows it wrote")

    def append_refusals(self, rows: Sequence[RefusalRow]) -> None:
        self._insert_many("ig_refusals", ("at", "op", "reason", "body"), rows)

    def save_checkpoint(self, row: CheckpointRow) -> None:
        self._execute(self._q("DELETE FROM ig_checkpoints WHERE seq >= ?"), (row[0],))
        self._execute(
            self._q("INSERT INTO ig_checkpoints (seq, format, state) VALUES (?, ?, ?)"), row
        )
        # One checkpoint is enough: the journal holds everything before it.
        self._execute(self._q("DELETE FROM ig_checkpoints WHERE seq < ?"), (row[0],))
