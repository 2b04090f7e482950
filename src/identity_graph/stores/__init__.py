"""Where a graph lives: in memory, in SQLite, or in PostgreSQL.

``open_store(target)`` picks the store from its argument:

- ``"memory:"`` — :class:`MemoryStore` (the contract in Python lists);
- ``"postgresql://…"`` or ``"postgres://…"`` — :class:`PostgresStore`;
- ``"sqlite:///path"`` or any other string or path — :class:`SQLiteStore`;
- ``None`` — ``$IDENTITY_GRAPH_POSTGRES_URL`` when set, else the SQLite
  file ``identity-graph.db`` in the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import Head, Store
from .memory import MemoryStore
from .schema import LATEST
from .sqlite import SQLiteStore

__all__ = ["LATEST", "Head", "MemoryStore", "SQLiteStore", "Store", "open_store"]

DEFAULT_PATH = "identity-graph.db"
ENVIRONMENT = "IDENTITY_GRAPH_POSTGRES_URL"


def open_store(target: str | os.PathLike[str] | Store | None = None, **options: Any) -> Store:
    """The store ``target`` names (see the module notes); ``options`` go to its class."""
    if isinstance(target, Store):
        return target
    if target is None:
        target = os.environ.get(ENVIRONMENT) or DEFAULT_PATH
    if isinstance(target, os.PathLike):
        return SQLiteStore(Path(target), **options)
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"store {target!r} must be a path, a URL or 'memory:'")
    if target == "memory:":
        return MemoryStore(**options)
    if target.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(target, **options)
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///") :]
    return SQLiteStore(target, **options)
