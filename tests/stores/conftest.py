"""PostgreSQL for the store tests: ``$IDENTITY_GRAPH_POSTGRES_URL`` when set,
else a real server started from the ``pgserver`` wheel (once per session).

Each test gets its own schema, so tests never see each other's tables.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from urllib.parse import quote

import pytest

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    url = os.environ.get("IDENTITY_GRAPH_POSTGRES_URL")
    if url:
        yield url
        return
    pgserver = pytest.importorskip("pgserver", reason="pgserver (dev extra) is not installed")
    directory = tempfile.mkdtemp(prefix="ig-pg-")
    server = pgserver.get_server(directory, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A URL whose search path is a new, empty schema."""
    import psycopg

    schema = f"ig_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_schema(postgres_server, schema)


@pytest.fixture(autouse=True)
def _reap_workers() -> Iterator[None]:
    """Kill the worker processes a test started and left running (a failed test)."""
    yield
    from .helpers import reap

    reap()
