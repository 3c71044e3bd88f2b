"""The index: the one owner of its on-disk format.

    base        the store interface (IndexReader, IndexWriter) and its records
    schema      SQLite layout: paths, tables, metadata
    vectors     vector segments (memory-mapped) and the approximate index
    reader      SqliteReader: one committed snapshot
    directory   whether a directory may hold an index: the RAGCLI_INDEX marker, owner, modes
    private     files written 0600 (directories 0700), never through a symbolic link
    lock        the writer lock; what a failed write tells the user
    writer      SqliteWriter: atomic batches, merges, the approximate index, rebuild switch-over
    migrate     creating a database, upgrading one from format 1
    repair      removing the files ragcli recorded as no longer used, damaged databases
    crash       named crash points for the crash tests
    locations   what a location names: a directory, or a PostgreSQL URL
    postgres    the PostgreSQL store: connection, advisory writer lock (pg_reader, pg_writer, pg_schema)

Everything outside this package goes through the names below; each dispatches on the
location: a ``postgresql://`` URL (a ``str``) opens the PostgreSQL store (psycopg imported
then, never before), anything else is a directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DamagedIndexError, IndexNotFoundError, StaleIndexError
from . import lock as _lock
from . import reader as _sqlite_reader
from . import repair as _repair
from .base import FORMAT_VERSION, DocRow, IndexInfo, IndexReader, IndexWriter, NewDocument, Run
from .locations import is_server, shown
from .reader import SqliteReader, fts_terms
from .schema import current_db, rebuild_hint
from .writer import SqliteWriter

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
    "NewDocument",
    "Run",
    "SqliteReader",
    "SqliteWriter",
    "current_db",
    "exists",
    "is_server",
    "fts_terms",
    "open_reader",
    "open_writer",
    "rebuild_hint",
    "recorded_roots",
    "set_aside_if_damaged",
    "shown",
    "writer_lock",
]


def open_reader(location: Location) -> IndexReader:
    """The last committed state of the index at ``location``."""
    if is_server(location):
        from .pg_reader import PgReader

        return PgReader.open(str(location))
    return SqliteReader.open(Path(location))


def open_writer(location: Location, wanted: IndexInfo, *, rebuild: bool = False) -> IndexWriter:
    """A writer for one ingest run; the caller holds ``writer_lock(location)``."""
    if is_server(location):
        from .pg_writer import PgWriter

        return PgWriter.open(str(location), wanted, rebuild=rebuild)
    return SqliteWriter.open(Path(location), wanted, rebuild=rebuild)


@contextlib.contextmanager
def writer_lock(location: Location, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's one-writer lock: flock on a directory, an advisory lock on a server.
    ``on_wait`` hears that another ingest holds it, and (a directory) that an index an earlier
    ragcli wrote was adopted; a directory ragcli may not write is refused first (``directory``)."""
    if is_server(location):
        from . import postgres

        lock = postgres.writer_lock(str(location), wait, on_wait)
    else:
        lock = _lock.writer_lock(Path(location), wait, on_wait)
    with lock:
        yield


def recorded_roots(location: Location) -> list[str]:
    """The directories the index records, even when the rest is damaged ([] if unreadable)."""
    if is_server(location):
        from . import postgres

        return postgres.recorded_roots(str(location))
    return _sqlite_reader.recorded_roots(Path(location))


def set_aside_if_damaged(location: Location, on_message: Callable[[str], None] | None = None) -> None:
    """Before a rebuild: move a damaged database aside (a server keeps its own; nothing to do)."""
    if not is_server(location):
        _repair.set_aside_if_damaged(Path(location), on_message)


def exists(location: Location) -> bool:
    """Whether anything (even an unfinished first ingest) was written at ``location``."""
    if is_server(location):
        from . import postgres

        return postgres.exists(str(location))
    try:
        return current_db(Path(location)).exists()
    except (ValueError, OSError):
        return True
