"""Opening a database for writing: creating it, or upgrading it from an older format.

Format 1 (ragcli 0.1) kept the vectors twice, as SQLite blobs and in one FAISS file rewritten
by every ingest, and counted rows on every ``rag status``. ``_upgrade_from_1`` moves the
blobs into one vector segment and records the counts, in one transaction: no re-embedding.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from pathlib import Path

from . import schema
from .base import FORMAT_VERSION, IndexInfo
from .vectors import new_name, write_segment


def open_db(index_dir: Path, db: Path, wanted: IndexInfo, messages: list[str]) -> sqlite3.Connection:
    """Open (creating, or upgrading from format 1) the database ``db``."""
    con = schema.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    # New, or created by an ingest killed before it wrote meta: create it in one
    # transaction, so a kill leaves either nothing or a complete empty index.
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() or \
            not con.execute("SELECT 1 FROM meta WHERE key = 'format_version'").fetchone():
        con.execute("BEGIN IMMEDIATE")
        for stmt in schema.statements():
            con.execute(stmt)
        schema.write_info(con, replace(wanted, generation=0, last_ingest=0.0))
        schema.set_meta(con, {"next_chunk_id": "1", **{f"n_{k}": "0" for k in schema.COUNTS}})
        con.execute("COMMIT")
    info = schema.read_info(con)
    if info.format_version == 1:
        upgrade_from_1(index_dir, con, info)
        messages.append(f"upgraded the index from format 1 to {FORMAT_VERSION} (no re-embedding)")
    return con


def upgrade_from_1(index_dir: Path, con: sqlite3.Connection, info: IndexInfo) -> None:
    """Format 1 kept vectors as SQLite blobs (and again in a FAISS file): move them into one
    segment, count the rows into meta, drop the blobs. One transaction; the segment is an
    orphan until it commits."""
    import numpy as np

    written: list[Path] = []
    try:
        con.execute("BEGIN IMMEDIATE")
        for stmt in schema.statements():
            con.execute(stmt)
        rows = con.execute("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id").fetchall()
        if rows:
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), info.dim)
            name = new_name("v1-")
            written = write_segment(index_dir, name, ids, vecs, stage="upgrade")
            con.execute("INSERT INTO segments(name, rows, first_id, last_id) VALUES (?, ?, ?, ?)",
                        (name, len(rows), int(ids[0]), int(ids[-1])))
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        schema.set_meta(con, {
            "n_documents": str(q("SELECT COUNT(*) FROM documents")),
            "n_chunks": str(q("SELECT COUNT(*) FROM chunks")),
            "n_spans": str(q("SELECT COUNT(*) FROM spans")),
            "n_pages": str(q("SELECT COALESCE(SUM(n_pages), 0) FROM documents")),
            "next_chunk_id": str(q("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks")),
        })
        con.execute("DROP TABLE vectors")
        schema.write_info(con, replace(info, format_version=FORMAT_VERSION))
        con.execute("COMMIT")
    except BaseException:
        rolled_back = con.in_transaction  # False: a Ctrl-C landed after COMMIT; the files are named
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        for p in written if rolled_back else ():
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    for p in index_dir.glob("vectors-*.faiss*"):
        with contextlib.suppress(OSError):
            p.unlink()
