"""Opening a database for writing: creating it, or upgrading it from an older format.

Format 1 (ragcli 0.1) kept the vectors twice, as SQLite blobs and in one FAISS file rewritten
by every ingest (``vectors-<generation>.faiss``), and counted rows on every ``rag status``.
``_upgrade_from_1`` moves the blobs into one vector segment and records the counts, in one
transaction: no re-embedding. The new segment's paths are committed to ``loose_files``
first, and the old FAISS file is entered there by the upgrade's transaction, so a kill at
any moment leaves nothing the next writer cannot prove it wrote.

A database ragcli creates is created here first, mode 0600 and never through a link; SQLite
gives its -wal and -shm the database's mode. ``loose_files`` is added to a database an
earlier ragcli wrote (``CREATE TABLE IF NOT EXISTS``: the format stays 2), and BM25's text is
rewritten for the chunks in scripts beyond English (``upgrade_lexical``: the format stays 2).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

from ... import lexical
from ..base import FORMAT_VERSION, IndexInfo
from . import private, repair, schema
from .vectors import new_name, segment_paths, write_segment


def open_db(index_dir: Path, db: Path, wanted: IndexInfo, messages: list[str]) -> sqlite3.Connection:
    """Open (creating, or upgrading from format 1) the database ``db``."""
    for p in schema.db_files(db):
        if p.is_symlink():
            raise private.link_error(p)
    with contextlib.suppress(FileExistsError):
        os.close(private.create(db))  # an empty file is an empty database; SQLite fills it
    for p in schema.db_files(db):
        private.tighten(p)  # an earlier ragcli made them 0644
    con = schema.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        con.execute(schema.LOOSE_FILES)
    # New, or created by an ingest killed before it wrote meta: create it in one
    # transaction, so a kill leaves either nothing or a complete empty index.
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() or \
            not con.execute("SELECT 1 FROM meta WHERE key = 'format_version'").fetchone():
        con.execute("BEGIN IMMEDIATE")
        for stmt in schema.statements():
            con.execute(stmt)
        schema.write_info(con, replace(wanted, generation=0, last_ingest=0.0))
        schema.set_meta(con, {"next_chunk_id": "1", "lexical_text": lexical.VERSION,
                              **{f"n_{k}": "0" for k in schema.COUNTS}})
        con.execute("COMMIT")
    info = schema.read_info(con)
    if info.format_version == 1:
        upgrade_from_1(index_dir, con, info)
        messages.append(f"upgraded the index from format 1 to {FORMAT_VERSION} (no re-embedding)")
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_ranges'").fetchone():
        con.execute("BEGIN IMMEDIATE")  # an index an earlier ragcli wrote: one pass over chunks_doc
        con.execute(schema.CHUNK_RANGES)
        con.execute(schema.FILL_CHUNK_RANGES)
        con.execute("COMMIT")
    n = upgrade_lexical(con)
    if n:
        messages.append(f"re-indexed {n} chunks for BM25 in scripts beyond English (no re-embedding)")
    return con


def upgrade_lexical(con: sqlite3.Connection) -> int:
    """Write BM25's text of an index built before ``lexical`` (CJK as character pairs, non-Latin
    marks dropped) for the chunks whose text it changes: one transaction, no re-embedding. The
    number of chunks re-indexed; 0 when the index is up to date (``meta.lexical_text``)."""
    if schema.read_meta(con).get("lexical_text") == lexical.VERSION:
        return 0
    con.execute("BEGIN IMMEDIATE")
    try:
        rows = [(cid, lexical.lexical_text(embed))
                for cid, embed in con.execute("SELECT id, embed FROM chunks") if lexical.changes(embed)]
        con.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(cid,) for cid, _ in rows])
        con.executemany("INSERT INTO chunks_fts(rowid, embed) VALUES (?, ?)", rows)
        schema.set_meta(con, {"lexical_text": lexical.VERSION})
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        raise
    return len(rows)


def upgrade_from_1(index_dir: Path, con: sqlite3.Connection, info: IndexInfo) -> None:
    """Format 1 kept vectors as SQLite blobs (and again in a FAISS file): move them into one
    segment, count the rows into meta, drop the blobs. One transaction; the segment's paths
    are in ``loose_files`` until it commits, so the next writer removes them after a kill."""
    import numpy as np

    written: list[Path] = []
    name = new_name("v1-")
    old_faiss = f"vectors-{info.generation}.faiss"  # the one file format 1 named (by generation)
    con.execute("BEGIN IMMEDIATE")  # the intent, committed before the segment is written
    con.execute(schema.LOOSE_FILES)
    repair.record(con, segment_paths(name))
    con.execute("COMMIT")
    try:
        con.execute("BEGIN IMMEDIATE")
        for stmt in schema.statements():
            con.execute(stmt)
        rows = con.execute("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id").fetchall()
        if rows:
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), info.dim)
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
        repair.unrecord(con, segment_paths(name))
        repair.record(con, [old_faiss, f"vectors-{info.generation + 1}.faiss"])  # and a killed run's, with .tmp
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
    # the old FAISS file goes with the writer's next ``repair.remove_orphans`` (straight after this)
