"""Writing an index: the writer lock, creating the database, and the atomic commit.

Atomicity: a writer builds the next generation's FAISS file under a temporary name,
fsyncs and renames it, and only then commits the SQLite transaction that inserts the new
rows and sets ``meta.generation``. Killed at any point before the commit, the database still
names the previous generation, whose FAISS file is still there; after the commit the new
one is complete. Files of older generations are removed after the commit, keeping the
previous one for readers that are still loading it.

Write failures (disk full, a file size limit) become a ``StorageError`` that says the
previous index is intact. Reading an index is ``store``; deciding what changed is ``pipeline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DamagedIndexError, IndexBusyError, StorageError
from .store import (
    _SCHEMA,
    DB_NAME,
    DocRow,
    IndexInfo,
    NewDocument,
    _connect,
    _faiss_path,
    _read_info,
    rebuild_hint,
)

if TYPE_CHECKING:
    pass

# -- writing ---------------------------------------------------------------------------------


@contextlib.contextmanager
def writer_lock(index_dir: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock (flock: released by the kernel if the process dies)."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StorageError(f"cannot create the index directory {index_dir}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if not wait:
                raise IndexBusyError(
                    f"another ingest (pid {holder}) is writing to {index_dir}; wait for it or run without --no-wait"
                ) from None
            if on_wait:
                on_wait(f"waiting for another ingest (pid {holder}) to finish writing {index_dir} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(e: OSError, index_dir: Path) -> StorageError:
    if e.errno == errno.ENOSPC:
        return StorageError(f"disk full while writing the index at {index_dir}; the previous index is intact. Free some space and run the ingest again")
    return StorageError(f"cannot write the index at {index_dir}: {e.strerror or e}; the previous index is intact")


def _write_failed(what: str, index_dir: Path) -> StorageError:
    """A write that failed below us (SQLite, FAISS), where the errno is not at hand."""
    return StorageError(
        f"cannot write the index at {index_dir} ({what}): the disk may be full, or a file size limit "
        "reached; the previous index is intact. Free some space and run the ingest again"
    )


def _is_io_failure(e: sqlite3.DatabaseError) -> bool:
    msg = str(e).lower()
    return "disk i/o" in msg or "full" in msg or "unable to open" in msg or "readonly" in msg


def open_for_write(index_dir: Path, info: IndexInfo) -> tuple[sqlite3.Connection, IndexInfo]:
    """Open (creating if needed) the database; the caller must hold ``writer_lock``."""
    db = index_dir / DB_NAME
    try:
        con = _connect(db)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        # New, or created by an ingest killed before it wrote meta: create it in one
        # transaction, so a kill now leaves either nothing or a complete empty index.
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() or \
                not con.execute("SELECT 1 FROM meta WHERE key = 'format_version'").fetchone():
            con.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            _write_info(con, info)
            con.execute("COMMIT")
        return con, _read_info(con)
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and _is_io_failure(e):
            raise _write_failed(str(e), index_dir) from None
        raise DamagedIndexError(
            f"the index database {db} is damaged ({e}). Rebuild it: {rebuild_hint(index_dir)}"
        ) from None
    except (KeyError, ValueError) as e:
        raise DamagedIndexError(
            f"the index database {db} is damaged (bad metadata: {e}). Rebuild it: {rebuild_hint(index_dir)}"
        ) from None
    except OSError as e:
        raise _storage_error(e, index_dir) from None


def _write_info(con: sqlite3.Connection, info: IndexInfo) -> None:
    rows = {
        "embedder": info.embedder,
        "embedder_id": info.embedder_id,
        "dim": str(info.dim),
        "chunking": json.dumps(info.chunking, sort_keys=True),
        "format_version": str(info.format_version),
        "generation": str(info.generation),
        "last_ingest": repr(info.last_ingest),
        "embedder_backend": info.embedder_backend,
    }
    con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows.items())


def doc_rows(con: sqlite3.Connection) -> dict[str, DocRow]:
    return {r[1]: DocRow(*r) for r in con.execute(
        "SELECT id, path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at FROM documents")}


def commit(
    index_dir: Path,
    con: sqlite3.Connection,
    info: IndexInfo,
    remove_doc_ids: Sequence[int],
    add: Sequence[NewDocument],
    touch: Sequence[tuple[int, float]] = (),
    before_commit: Callable[[], None] | None = None,
    fresh: bool = False,
) -> IndexInfo:
    """Apply one ingest as one new generation; returns the new ``IndexInfo``.

    ``touch`` updates (doc id, mtime) of unchanged files so later runs skip hashing them.
    ``before_commit`` is a test hook called after the FAISS file is in place.
    ``fresh`` drops everything first (a rebuild, possibly with another embedder).
    """
    import faiss
    import numpy as np

    new_gen = info.generation + 1
    tmp = index_dir / f"vectors-{new_gen}.faiss.tmp"
    try:
        con.execute("BEGIN IMMEDIATE")
        if fresh:
            con.execute("DELETE FROM chunks_fts")
            con.execute("DELETE FROM documents")  # cascades to chunks, spans, vectors
            remove_doc_ids = []
        # Start from the previous generation's vectors: the FAISS file when it is sound,
        # else the database's copy (self-repair of a damaged or missing file).
        removed_chunks = [r[0] for r in con.execute(
            f"SELECT id FROM chunks WHERE doc_id IN ({','.join('?' * len(remove_doc_ids))})",
            list(remove_doc_ids)).fetchall()] if remove_doc_ids else []
        index = _previous_index(index_dir, con, info)
        if removed_chunks:
            index.remove_ids(np.asarray(removed_chunks, dtype=np.int64))
        if remove_doc_ids:
            con.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(c,) for c in removed_chunks])
            con.executemany("DELETE FROM documents WHERE id = ?", [(d,) for d in remove_doc_ids])
        now = time.time()
        for doc_id, mtime in touch:
            con.execute("UPDATE documents SET mtime = ? WHERE id = ?", (mtime, doc_id))
        for nd in add:
            ids = _insert_document(con, nd, now)
            if len(ids):
                vecs = np.ascontiguousarray(nd.vectors, dtype=np.float32)
                index.add_with_ids(vecs, np.asarray(ids, dtype=np.int64))
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, _faiss_path(index_dir, new_gen))
        _fsync_dir(index_dir)
        new_info = dataclasses.replace(info, generation=new_gen, last_ingest=now)
        _write_info(con, new_info)
        if before_commit:
            before_commit()
        con.execute("COMMIT")
    except BaseException as e:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise _storage_error(e, index_dir) from None
        if isinstance(e, sqlite3.OperationalError) and _is_io_failure(e):
            raise _write_failed(str(e), index_dir) from None
        if isinstance(e, RuntimeError) and "write" in str(e).lower():  # faiss.write_index
            reason = re.search(r"\(([^()]+)\)\s*$", str(e))  # "... 99918 != 139264 (File too large)"
            raise _write_failed(reason.group(1) if reason else "FAISS write error", index_dir) from None
        raise
    _cleanup(index_dir, new_gen)
    return new_info


def _previous_index(index_dir: Path, con: sqlite3.Connection, info: IndexInfo):
    import faiss
    import numpy as np

    path = _faiss_path(index_dir, info.generation)
    count = con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    if path.is_file():
        try:
            index = faiss.read_index(str(path))
            if index.ntotal == count and index.d == info.dim:
                return index
        except RuntimeError:
            pass
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(info.dim))
    if count:
        rows = con.execute("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id").fetchall()
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), info.dim)
        index.add_with_ids(np.ascontiguousarray(vecs), ids)
    return index


def _insert_document(con: sqlite3.Connection, nd: NewDocument, now: float) -> list[int]:
    d = nd.doc
    cur = con.execute(
        "INSERT INTO documents(path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d.path, nd.root, d.sha256, d.kind, d.encoding, d.size, d.mtime, len(d.pages), now),
    )
    doc_id = cur.lastrowid
    ids: list[int] = []
    for chunk, vec in zip(nd.chunks, nd.vectors, strict=True):
        cid = con.execute(
            'INSERT INTO chunks(doc_id, key, page, start, "end", line_start, line_end, text, heading, embed, n_tokens) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, chunk.key, chunk.page, chunk.start, chunk.end, chunk.line_start, chunk.line_end,
             chunk.text, chunk.heading, chunk.embed, chunk.n_tokens),
        ).lastrowid
        con.executemany(
            'INSERT INTO spans(chunk_id, page, start, "end", line_start, line_end, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
            [(cid, s.page, s.start, s.end, s.line_start, s.line_end, s.text) for s in chunk.spans],
        )
        con.execute("INSERT INTO vectors(chunk_id, vec) VALUES (?, ?)", (cid, vec.astype("float32").tobytes()))
        con.execute("INSERT INTO chunks_fts(rowid, embed) VALUES (?, ?)", (cid, chunk.embed))
        ids.append(cid)
    return ids


def _cleanup(index_dir: Path, gen: int) -> None:
    """Remove FAISS files older than the previous generation and stray temporary files."""
    for p in index_dir.glob("vectors-*.faiss*"):
        stem = p.name.split(".")[0]
        try:
            g = int(stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if g < gen - 1 or (p.name.endswith(".tmp")) or g > gen:
            with contextlib.suppress(OSError):
                p.unlink()
