"""The on-disk layout of an SQLite index, and nothing else: paths, tables, metadata.

An index directory (0700; every file in it 0600, see ``private``)::

    RAGCLI_INDEX          the marker: this directory is a ragcli index (``directory``)
    CURRENT               the name of the current database (absent: index.sqlite)
    STAGING               the database of an unfinished ``--rebuild`` (absent: none)
    index*.sqlite         documents, chunks, sentence spans, FTS5 (BM25), segment list, meta,
                          loose_files (+ SQLite's -wal and -shm next to it)
    segments/             vector segments: <name>.vec.npy (n, dim) float32 and
                          <name>.ids.npy (n,) int64 chunk ids, sorted; ann-<name>.faiss
    .lock                 held (flock) by the one writer

Vectors live only in the segment files (stored once); the database names the segments of
each committed state, so a segment written by a batch that never committed is invisible to
readers. Counts are kept in ``meta`` and updated in each batch's transaction, so ``rag
status`` reads them without scanning.

``loose_files`` is how ragcli proves which files it wrote: before a file is created its path
is committed there (an intent), and the transaction that names the file in ``segments`` or
``meta`` clears it; a file the committed state stops using (a segment merged away, an old
approximate index, the database a rebuild replaced) is entered there in the same transaction.
The next writer deletes exactly those paths (``repair``), and nothing it has no record of.

Chunk ids only grow (``meta.next_chunk_id``): the id of a deleted chunk is never reused,
so a "tombstone" (deleted chunk whose vector is still in a segment) can never hide a new one.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
from pathlib import Path

from ..base import IndexInfo
from . import private

DEFAULT_DB = "index.sqlite"
CURRENT = "CURRENT"
STAGING = "STAGING"
SEGMENTS = "segments"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, root TEXT NOT NULL, sha256 TEXT NOT NULL,
    kind TEXT NOT NULL, encoding TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,
    n_pages INTEGER NOT NULL, ingested_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key TEXT NOT NULL, page INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, text TEXT NOT NULL,
    heading TEXT NOT NULL, embed TEXT NOT NULL, n_tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY, chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    page INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_chunk ON spans(chunk_id);
CREATE TABLE IF NOT EXISTS segments (
    name TEXT PRIMARY KEY, rows INTEGER NOT NULL, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones (chunk_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, pid INTEGER NOT NULL,
    paths TEXT NOT NULL, rebuild INTEGER NOT NULL, batches INTEGER NOT NULL DEFAULT 0);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(embed, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS loose_files (path TEXT PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunk_ranges (
    doc_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE, first_id INTEGER NOT NULL,
    n INTEGER NOT NULL);
"""
# chunk_ranges: a document's chunks have the consecutive ids first_id .. first_id + n - 1; what a
# scoped search reads (``scoping``) instead of three seeks in chunks_doc a document. Not a format
# change either: a writer adds it to an older database (``migrate``), filled from ``chunks``, and a
# reader of a database without it, or a document without its row, takes the seeks.
CHUNK_RANGES = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS chunk_ranges"):].split(";")[0]
FILL_CHUNK_RANGES = ("INSERT OR REPLACE INTO chunk_ranges(doc_id, first_id, n) SELECT doc_id, min(id), count(*) "
                     "FROM chunks GROUP BY doc_id HAVING max(id) - min(id) + 1 = count(*)")
# loose_files: path relative to the index directory ("segments/b3-1a2b.vec.npy", "index.sqlite");
# kind 'file' (the file and its .tmp) or 'db' (a database, its -wal, -shm, -journal and its files).
# Not a format change: readers never look at it, and a writer adds it to an older database.
LOOSE_FILES = "CREATE TABLE IF NOT EXISTS loose_files (path TEXT PRIMARY KEY, kind TEXT NOT NULL)"
# Temporary files ragcli writes under these exact names (``write_pointer``); the next writer removes them.
TEMP_FILES = (".CURRENT.tmp", ".STAGING.tmp")

COUNTS = ("documents", "chunks", "spans", "pages")


def statements(sql: str = SCHEMA) -> list[str]:
    return [s for s in sql.split(";") if s.strip()]


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _pointer(index_dir: Path, name: str) -> str | None:
    try:
        value = (index_dir / name).read_text().strip()
    except FileNotFoundError:
        return None
    if not value or "/" in value or not value.endswith(".sqlite"):
        raise ValueError(f"{name} holds {value!r}, not a database name")
    return value


def current_db(index_dir: Path) -> Path:
    """The database readers open: named by CURRENT, else index.sqlite."""
    return index_dir / (_pointer(index_dir, CURRENT) or DEFAULT_DB)


def staging_db(index_dir: Path) -> Path | None:
    name = _pointer(index_dir, STAGING)
    return index_dir / name if name else None


def write_pointer(index_dir: Path, name: str, value: str | None) -> None:
    """Atomically set (or, with None, remove) the pointer file ``name``."""
    target = index_dir / name
    if value is None:
        target.unlink(missing_ok=True)
    else:
        tmp = index_dir / f".{name}.tmp"
        tmp.unlink(missing_ok=True)  # left by a killed writer (a link there: the link goes, not its target)
        private.write_new(tmp, (value + "\n").encode())
        os.replace(tmp, target)  # a link at ``target`` is replaced, not followed
    fsync_dir(index_dir)


def db_files(db: Path) -> list[Path]:
    """A database and the files SQLite keeps next to it."""
    return [db, *(Path(f"{db}{s}") for s in ("-wal", "-shm", "-journal"))]


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(con: sqlite3.Connection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def read_info(con: sqlite3.Connection, rows: dict[str, str] | None = None) -> IndexInfo:
    rows = read_meta(con) if rows is None else rows
    if "format_version" not in rows:
        raise KeyError("meta.format_version")
    return IndexInfo(
        embedder=rows["embedder"],
        embedder_id=rows.get("embedder_id", ""),
        dim=int(rows["dim"]),
        chunking=json.loads(rows["chunking"]),
        format_version=int(rows["format_version"]),
        generation=int(rows.get("generation", "0")),
        last_ingest=float(rows.get("last_ingest", "0")),
        embedder_backend=rows.get("embedder_backend", ""),
    )


def write_info(con: sqlite3.Connection, info: IndexInfo) -> None:
    set_meta(con, {
        "embedder": info.embedder,
        "embedder_id": info.embedder_id,
        "dim": str(info.dim),
        "chunking": json.dumps(info.chunking, sort_keys=True),
        "format_version": str(info.format_version),
        "generation": str(info.generation),
        "last_ingest": repr(info.last_ingest),
        "embedder_backend": info.embedder_backend,
    })


def set_meta(con: sqlite3.Connection, rows: dict[str, str]) -> None:
    con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows.items())


def counts(rows: dict[str, str]) -> dict[str, int]:
    return {k: int(rows.get(f"n_{k}", "0")) for k in COUNTS}


def upgrade_hint(location: str | Path) -> str:
    return f"rag ingest --index {shlex.quote(str(location))}"
