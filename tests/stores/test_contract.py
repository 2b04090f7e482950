"""The store contract suite (identity_graph.testing) on all three stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity_graph.stores import MemoryStore, SQLiteStore, Store
from identity_graph.testing import StoreContract


class TestMemoryStore(StoreContract):
    def new_store(self) -> Store:
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.path = tmp_path / "graph.db"

    def new_store(self) -> Store:
        return SQLiteStore(self.path)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def new_store(self) -> Store:
        from identity_graph.stores.postgres import PostgresStore

        return PostgresStore(self.url)

    def reopen(self, store: Store) -> Store:
        from identity_graph.stores.postgres import PostgresStore

        return PostgresStore(self.url)
