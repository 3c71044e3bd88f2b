"""The index: the one owner of its on-disk format.

    base        the store interface (IndexReader, IndexWriter) and its records
    schema      SQLite layout: paths, tables, metadata
    vectors     vector segments (memory-mapped) and the approximate index
    reader      SqliteReader: one committed snapshot
    lock        the writer lock; what a failed write tells the user
    writer      SqliteWriter: atomic batches, merges, the approximate index, rebuild switch-over
    migrate     creating a database, upgrading one from format 1
    repair      orphan files, damaged databases
    crash       named crash points for the crash tests

Everything outside this package goes through the names below.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DamagedIndexError, IndexNotFoundError, StaleIndexError
from .base import FORMAT_VERSION, DocRow, IndexInfo, IndexReader, IndexWriter, NewDocument, Run
from .lock import writer_lock
from .reader import SqliteReader, fts_terms, recorded_roots
from .repair import set_aside_if_damaged
from .schema import current_db, rebuild_hint
from .writer import SqliteWriter

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
    "fts_terms",
    "open_reader",
    "open_writer",
    "rebuild_hint",
    "recorded_roots",
    "set_aside_if_damaged",
    "writer_lock",
]


def open_reader(location: Path) -> IndexReader:
    """The last committed state of the index at ``location``."""
    return SqliteReader.open(Path(location))


def open_writer(location: Path, wanted: IndexInfo, *, rebuild: bool = False) -> IndexWriter:
    """A writer for one ingest run; the caller holds ``writer_lock(location)``."""
    return SqliteWriter.open(Path(location), wanted, rebuild=rebuild)


def exists(location: Path) -> bool:
    """Whether anything (even an unfinished first ingest) was written at ``location``."""
    try:
        return current_db(Path(location)).exists()
    except (ValueError, OSError):
        return True
