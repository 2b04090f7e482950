"""``PostgresStore``: one graph shared by many processes on many machines.

Writers are serialised by one transaction-scoped **advisory lock** per
schema (``pg_advisory_xact_lock``) taken at the start of every write transaction:
a process then applies every entry other processes committed, decides its
own operation against that state, appends it and commits, all while
holding the lock.  Two merges or relinks that touch the same customers can
therefore never interleave, no update is lost and no profile can form a
cycle; the lock is released by the commit or the rollback, even when a
process dies.  A whole-graph lock is the honest price of a gap-free
journal: every entry is decided against all the entries before it.

Serialisation failures and deadlocks (SQLSTATE ``40001`` / ``40P01``) are
retried by the graph, never surfaced.  First-time schema creation takes
the same lock, so two processes opening a new database at once are safe.
The connection string comes from the argument or from
``IDENTITY_GRAPH_POSTGRES_URL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..errors import StoreError
from .sql import SqlStore

__all__ = ["COPY_ABOVE", "LOCK_KEY", "PostgresStore"]

#: The first half of every identity_graph writer's advisory lock key ("idgr");
#: the second half is a hash of the schema, so graphs kept in different
#: schemas of one database never wait for each other.
LOCK_KEY = 0x69646772

_RETRYABLE = {"40001", "40P01"}

#: Row batches larger than this are written with ``COPY`` (below it, the
#: statement's set-up costs less than the copy's).
COPY_ABOVE = 100


def _redact(url: str) -> str:
    """The URL without any password (in the user part or the query), for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class PostgresStore(SqlStore):
    """A graph in a PostgreSQL database (tables ``ig_*`` in the search path)."""

    param = "%s"
    contains = "strpos({0}, ?) > 0"
    # lower() follows the database's locale; translate() is ASCII everywhere.
    lower = "translate({0}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
    types: ClassVar[dict[str, str]] = {
        "bigint": "BIGINT",
        "serial": "BIGSERIAL PRIMARY KEY",
        "blob": "BYTEA",
    }

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        try:
            import psycopg
        except ImportError as error:  # the [postgres] extra
            raise StoreError(
                "PostgreSQL stores need psycopg 3: pip install 'identity-graph[postgres]'"
            ) from error
        self._psycopg = psycopg
        self.driver_errors = (psycopg.Error,)
        self.describe = _redact(url)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as error:
            raise StoreError(f"cannot open PostgreSQL store {self.describe}: {error}") from error
        try:
            self.open_schema()
        except BaseException as error:
            self._conn.close()
            if isinstance(error, psycopg.Error):
                raise StoreError(
                    f"cannot open PostgreSQL store {self.describe}: {error}"
                ) from error
            raise

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _insert_many(
        self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        """A batch of more than :data:`COPY_ABOVE` rows goes in with one
        ``COPY ... FROM STDIN`` (the rows stream in one round trip, and the
        server parses no statement per row); a smaller one, through
        ``executemany`` (psycopg pipelines it).  Both in the open
        transaction, with the same effect."""
        if len(rows) <= COPY_ABOVE:
            super()._insert_many(table, columns, rows)
            return
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            for row in rows:
                write(row)

    def _has_relation(self, name: str) -> bool:
        # to_regclass follows the search path, as the unqualified queries do.
        return bool(self.fetch("SELECT to_regclass(CAST(? AS text)) IS NOT NULL", (name,))[0][0])

    def begin(self, write: bool) -> None:
        if write:
            # One round trip for both: a query without parameters may hold
            # several statements (LOCK_KEY is our own integer constant).
            self._conn.execute(
                f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY:d}, hashtext(current_schema()))"
            )
        else:
            # One snapshot for the head and the rows read after it.
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")

    def scrub(self) -> None:
        """``VACUUM`` the tables an erasure touched: their dead row versions
        go.  What PostgreSQL keeps beyond that (WAL segments, archives,
        backups, replicas) is the operator's: see ``docs/erasure.md``."""
        self._conn.execute("VACUUM ig_journal, ig_events, ig_refusals, ig_checkpoints, ig_meta")

    def retryable(self, error: BaseException) -> bool:
        return getattr(error, "sqlstate", None) in _RETRYABLE

    def close(self) -> None:
        self._conn.close()
