"""``PostgresStore``: an index in a PostgreSQL schema (pgvector), named by a URL.

It only routes: reading is ``reader``, writing ``writer``, connecting and the lock
``server``. Nothing here connects until a method is called, and psycopg is imported then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from ...errors import RagError
from ..base import IndexInfo, Store
from ..locations import split
from . import schema as pg_schema
from . import server
from .reader import PgReader
from .writer import PgWriter


class PostgresStore(Store):
    """The index at the server URL ``location`` (``locations`` says what a URL may hold)."""

    def __init__(self, location: str) -> None:
        self.location: str = location

    def __repr__(self) -> str:
        return f"PostgresStore({self.shown!r})"

    def reader(self) -> PgReader:
        return PgReader.open(self.location)

    def writer(self, wanted: IndexInfo, *, rebuild: bool = False) -> PgWriter:
        return PgWriter.open(self.location, wanted, rebuild=rebuild)

    def lock(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """A session advisory lock, on its own connection (``server.writer_lock``)."""
        return server.writer_lock(self.location, wait, on_wait)

    def exists(self) -> bool:
        _conninfo, schema = split(self.location)
        with contextlib.closing(server.connect(self.location, "status")) as con:
            return pg_schema.version(con, schema) > 0

    def recorded_roots(self) -> list[str]:
        _conninfo, schema = split(self.location)
        try:
            with contextlib.closing(server.connect(self.location, "status")) as con:
                if pg_schema.version(con, schema) == 0:
                    return []
                s = pg_schema.ident(schema)
                return [r for (r,) in con.execute(f"SELECT DISTINCT root FROM {s}.documents ORDER BY root")]
        except Exception:  # unreadable: the caller only wants hints
            return []

    def built_with(self) -> IndexInfo | None:
        """One connection: a server that cannot be reached is said now, an index not there is None."""
        con = server.connect(self.location, "search")
        try:
            with PgReader.open(self.location, con) as st:
                return st.info
        except RagError:
            return None

    @staticmethod
    def summary(described: Mapping[str, object]) -> str:
        v = described
        return (f"{v['vectors']} in PostgreSQL {v['server']}, schema {v['schema']} "
                f"(version {v['schema_version']}), {v['ann'] or 'exact search'}")
