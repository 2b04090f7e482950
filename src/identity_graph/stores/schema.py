"""Schema versions and migrations of the SQL stores.

``ig_meta`` holds ``schema_version``.  Opening a store runs, under the write
lock and in one transaction, every migration above the stored version: a new
file gets them all, an older store is brought up to date, and a store whose
version is *above* :data:`LATEST` was written by a newer library and is
refused with :class:`~identity_graph.errors.SchemaVersionError` (guessing at
a newer layout could corrupt it).  A version row that is missing or lower
than the tables show (:data:`TRACES`) is damage, refused before any
migration runs; a migration the database refuses is rolled back whole and
named in the error.

Migrations are lists of statements with three placeholders filled per
dialect: ``{bigint}``, ``{serial}`` (an auto-numbered primary key) and
``{blob}``.  Never edit a released migration; add the next one.
"""

from __future__ import annotations

__all__ = ["LATEST", "MIGRATIONS", "TRACES", "statements"]

MIGRATIONS: dict[int, list[str]] = {
    # 1: the journal, the ledger, the refusal log and the checkpoints.
    1: [
        "CREATE TABLE ig_journal (seq {bigint} PRIMARY KEY, op TEXT NOT NULL,"
        " at TEXT NOT NULL, record TEXT NOT NULL)",
        "CREATE TABLE ig_events (pos {serial}, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
        " at TEXT NOT NULL, anchor TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE TABLE ig_refusals (pos {serial}, at TEXT NOT NULL, op TEXT NOT NULL,"
        " reason TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE TABLE ig_checkpoints (seq {bigint} PRIMARY KEY, format INTEGER NOT NULL,"
        " state {blob} NOT NULL)",
    ],
    # 2: journal entries by time, for integrators who read the change feed
    #    with SQL ("what changed yesterday").  (An index on events by anchor
    #    was measured and left out: it doubled the cost of every bulk insert.)
    2: ["CREATE INDEX ig_journal_at ON ig_journal (at)"],
    # 3: journal rows written from here on carry their own seq and a checksum
    #    (``{"s":[seq,crc,record]}``, see identity_graph.session), which an
    #    older library would misread; event rows written from here on carry
    #    their number and a checksum the same way (``{"e":[n,crc,event]}``);
    #    and ig_meta keeps ``journal_seq``, the last seq written, and
    #    ``event_count``, the number of event rows written, so rows deleted at
    #    the end of either table are noticed.
    3: [
        "INSERT INTO ig_meta (key, value) SELECT 'journal_seq',"
        " CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM ig_journal",
        "INSERT INTO ig_meta (key, value) SELECT 'event_count',"
        " CAST(COUNT(*) AS TEXT) FROM ig_events",
    ],
    # 4: erasure.  ig_meta keeps ``erasure_epoch``, the number of erasures
    #    committed (a process loaded at another epoch loads again, since an
    #    erasure rewrites rows in place), and, from the first erasure on,
    #    ``erasure_key``, the secret of the keyed hashes.  Event rows may be
    #    an erased event's row (``{"x":[n]}``), which an older library
    #    would misread.
    4: ["INSERT INTO ig_meta (key, value) VALUES ('erasure_epoch', '0')"],
    # 5: checkpoints may be written in format 4 (columnar, restored in
    #    bulk), which an older library would call a damaged row; the version
    #    makes it refuse the store up front as written by a newer library.
    #    ig_meta keeps ``checkpoint_format``, the format written from then on.
    5: ["INSERT INTO ig_meta (key, value) VALUES ('checkpoint_format', '4')"],
}

LATEST = max(MIGRATIONS)

#: What each migration leaves behind: a table or an index (by name), or an
#: ig_meta row.  A store whose ig_meta row ``schema_version`` is missing or
#: says less than these traces show is damaged; migrating it again would
#: fail halfway ("table ig_journal already exists") or write over its rows.
TRACES: dict[int, tuple[str, str]] = {
    1: ("table", "ig_journal"),
    2: ("index", "ig_journal_at"),
    3: ("ig_meta row", "journal_seq"),
    4: ("ig_meta row", "erasure_epoch"),
    5: ("ig_meta row", "checkpoint_format"),
}

META = "CREATE TABLE IF NOT EXISTS ig_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def statements(version: int, types: dict[str, str]) -> list[str]:
    """The statements of migration ``version`` for a dialect's ``types``."""
    return [statement.format(**types) for statement in MIGRATIONS[version]]
