"""The index: the one owner of its on-disk format.

    base        the store interface (Store, IndexReader, IndexWriter), its records, the rows both stores map
    locations   what a location names: a directory, or a PostgreSQL URL; how one is shown
    fts         the words of a query for full-text search (both stores)
    scoping     what a scope (``--path``, ``--type``, ``--since``) allows, as SQL for both stores
    crash       named crash points for the crash tests
    sqlite/     the SQLite store: a directory of SQLite + memory-mapped vector segments (the default)
    postgres/   the PostgreSQL store: pgvector, an advisory writer lock

Everything outside this package opens a ``Store`` once, ``open(location)``, and calls its
methods: a ``postgresql://`` URL (a ``str``) is a PostgreSQL store (its package, and psycopg,
imported then, never before), anything else a directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import DamagedIndexError, IndexNotFoundError, StaleIndexError
from .base import (
    FORMAT_VERSION,
    DocRow,
    IndexInfo,
    IndexReader,
    IndexWriter,
    NewDocument,
    Run,
    Store,
    damaged,
    rebuild_hint,
    stale,
)
from .fts import fts_terms
from .locations import is_server
from .sqlite import SqliteStore

Location = str | Path  # a directory, or a postgresql:// URL (``locations``)

__all__ = [
    "FORMAT_VERSION",
    "DamagedIndexError",
    "IndexNotFoundError",
    "StaleIndexError",
    "DocRow",
    "IndexInfo",
    "IndexReader",
    "IndexWriter",
    "Location",
    "NewDocument",
    "Run",
    "SqliteStore",
    "Store",
    "fts_terms",
    "open",
    "damaged",
    "rebuild_hint",
    "stale",
    "summary",
]


def open(location: Location) -> Store:  # (``index.open``, as ``io.open``: the builtin is not used here)
    """The store at ``location``; nothing is read or connected to until a method asks.

    >>> open("/tmp/idx")
    SqliteStore('/tmp/idx')
    """
    if is_server(location):
        from .postgres import PostgresStore

        return PostgresStore(str(location))
    return SqliteStore(location)


def summary(described: Mapping[str, object]) -> str:
    """``rag status``'s line about the vectors, from a reader's ``describe()``."""
    if described.get("store") == "postgresql":
        from .postgres import PostgresStore

        return PostgresStore.summary(described)
    return SqliteStore.summary(described)
