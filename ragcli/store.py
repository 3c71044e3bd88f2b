"""The index on disk: SQLite for documents, chunks, spans, vectors and BM25; FAISS for search.

Layout of an index directory::

    index.sqlite          documents, chunks, spans, vectors (float32 blobs), FTS5 table, meta
    vectors-<gen>.faiss   IndexIDMap2(IndexFlatIP) over chunk ids, for generation <gen>
    .lock                 held (flock) by the one writer

Atomicity: a writer builds the next generation's FAISS file under a temporary name,
fsyncs and renames it, and only then commits the SQLite transaction that inserts the new
rows and sets ``meta.generation``. Killed at any point before the commit, the database still
names the previous generation, whose FAISS file is still there; after the commit the new
one is complete. Readers take a WAL snapshot, read the generation and load its file, so
they always see the last complete index. Files of older generations are removed after the
commit, keeping the previous one for readers that are still loading it.

No pickle anywhere: vectors are raw float32 bytes, FAISS files are FAISS's own format.
This module does not chunk, embed or decide what changed (``pipeline`` does).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from .errors import DamagedIndexError, IndexBusyError, IndexNotFoundError, StorageError
from .types import Chunk, Document, Span

if TYPE_CHECKING:
    import numpy as np

FORMAT_VERSION = 1
DB_NAME = "index.sqlite"

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, vec BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(embed, tokenize='porter unicode61');
"""


@dataclass(frozen=True)
class IndexInfo:
    """What the index remembers about how it was built."""

    embedder: str  # registry name of the embedder
    embedder_id: str  # what identifies its weights (model dir name + sha of config), for mismatch checks
    dim: int
    chunking: dict  # ChunkParams.as_dict()
    format_version: int = FORMAT_VERSION
    generation: int = 0
    last_ingest: float = 0.0  # unix time of the last commit


@dataclass(frozen=True)
class DocRow:
    id: int
    path: str
    root: str
    sha256: str
    kind: str
    encoding: str
    size: int
    mtime: float
    n_pages: int
    ingested_at: float


@dataclass(frozen=True)
class NewDocument:
    """One document to add: its chunks and their vectors, (n_chunks, dim) float32, L2-normalised."""

    doc: Document
    root: str
    chunks: tuple[Chunk, ...]
    vectors: "np.ndarray"


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _faiss_path(index_dir: Path, gen: int) -> Path:
    return index_dir / f"vectors-{gen}.faiss"


def _read_info(con: sqlite3.Connection) -> IndexInfo:
    rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
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
    )


def rebuild_hint(index_dir: Path, roots: Sequence[str] = ()) -> str:
    paths = " ".join(_shell_quote(r) for r in roots) if roots else "PATH..."
    return f"rag ingest --rebuild --index {_shell_quote(str(index_dir))} {paths}"


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _checked(method):
    """Turn SQLite errors met while reading (a page damaged after open) into ``DamagedIndexError``."""

    @functools.wraps(method)
    def wrapper(self: Store, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise self.damaged(f"cannot read {DB_NAME} ({e})") from None

    return wrapper


class Store:
    """A read-only view of one complete generation of the index (a WAL snapshot)."""

    def __init__(self, index_dir: Path, con: sqlite3.Connection, info: IndexInfo) -> None:
        self.index_dir = index_dir
        self.con = con
        self.info = info
        self._faiss = None

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir: Path) -> "Store":
        db = index_dir / DB_NAME
        if not db.is_file():
            raise IndexNotFoundError(
                f"no index at {index_dir}. Build one first: rag ingest PATH --index {_shell_quote(str(index_dir))}"
            )
        try:
            con = _connect(db)
            con.execute("BEGIN")  # snapshot: everything below sees one generation
            info = _read_info(con)
        except (sqlite3.DatabaseError, KeyError, ValueError) as e:
            raise DamagedIndexError(
                f"the index database {db} is damaged ({e}). Rebuild it: {rebuild_hint(index_dir)}"
            ) from None
        if info.generation == 0:  # created, but the first ingest never committed
            con.close()
            raise IndexNotFoundError(
                f"the index at {index_dir} has not been built yet (the first ingest did not finish). "
                f"Run: rag ingest PATH --index {_shell_quote(str(index_dir))}"
            )
        return cls(index_dir, con, info)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def roots(self) -> list[str]:
        try:
            return [r for (r,) in self.con.execute("SELECT DISTINCT root FROM documents ORDER BY root")]
        except sqlite3.DatabaseError:
            return []

    def damaged(self, what: str) -> DamagedIndexError:
        return DamagedIndexError(
            f"the index at {self.index_dir} is damaged: {what}. Rebuild it: {rebuild_hint(self.index_dir, self.roots())}"
        )

    # -- vectors -------------------------------------------------------------------------
    def vector_index(self):  # -> faiss.Index
        """The FAISS index of this generation, checked against the database."""
        if self._faiss is None:
            self._faiss = self._load_faiss()
        return self._faiss

    def _load_faiss(self):
        import faiss

        path = _faiss_path(self.index_dir, self.info.generation)
        try:
            count = self.con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise self.damaged(f"cannot read vectors ({e})") from None
        if not path.is_file():
            raise self.damaged(f"{path.name} is missing")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError:
            raise self.damaged(f"{path.name} is unreadable (truncated or corrupt)") from None
        if index.ntotal != count or index.d != self.info.dim:
            raise self.damaged(
                f"{path.name} holds {index.ntotal} vectors of dimension {index.d}, "
                f"the database {count} of dimension {self.info.dim}"
            )
        return index

    @_checked
    def all_vectors(self) -> tuple["np.ndarray", "np.ndarray"]:
        """(ids (n,) int64, vectors (n, dim) float32) straight from the database."""
        import numpy as np

        rows = self.con.execute("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.info.dim)
        return ids, vecs

    # -- reading rows --------------------------------------------------------------------
    @_checked
    def documents(self) -> list[DocRow]:
        return [DocRow(*r) for r in self.con.execute(
            "SELECT id, path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at "
            "FROM documents ORDER BY path")]

    @_checked
    def counts(self) -> dict[str, int]:
        q = lambda sql: self.con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "documents": q("SELECT COUNT(*) FROM documents"),
            "chunks": q("SELECT COUNT(*) FROM chunks"),
            "spans": q("SELECT COUNT(*) FROM spans"),
            "pages": q("SELECT COALESCE(SUM(n_pages), 0) FROM documents"),
        }

    def size_bytes(self) -> int:
        total = 0
        for p in self.index_dir.iterdir():
            if p.name.startswith(DB_NAME) or p.name == _faiss_path(self.index_dir, self.info.generation).name:
                total += p.stat().st_size
        return total

    @_checked
    def chunks(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, DocRow]]:
        """Chunk rows (with their spans) and their documents, by chunk id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.con.execute(
            f'SELECT c.id, c.key, c.page, c.start, c."end", c.line_start, c.line_end, c.text, c.heading, '
            f"c.embed, c.n_tokens, d.id, d.path, d.root, d.sha256, d.kind, d.encoding, d.size, d.mtime, "
            f"d.n_pages, d.ingested_at FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            list(ids),
        ).fetchall()
        spans: dict[int, list[Span]] = {}
        for cid, page, a, b, la, lb, text in self.con.execute(
            f'SELECT chunk_id, page, start, "end", line_start, line_end, text FROM spans '
            f"WHERE chunk_id IN ({marks}) ORDER BY chunk_id, start",
            list(ids),
        ):
            spans.setdefault(cid, []).append(Span(page, a, b, la, lb, text))
        out: dict[int, tuple[Chunk, DocRow]] = {}
        for r in rows:
            doc = DocRow(*r[11:])
            chunk = Chunk(
                key=r[1], source=doc.path, sha256=doc.sha256, page=r[2], start=r[3], end=r[4],
                line_start=r[5], line_end=r[6], text=r[7], spans=tuple(spans.get(r[0], ())),
                heading=r[8], embed=r[9], n_tokens=r[10],
            )
            out[r[0]] = (chunk, doc)
        return out

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        """BM25 over chunk text (SQLite FTS5): [(chunk id, score)], best first, score > 0."""
        terms = fts_terms(query)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        try:
            rows = self.con.execute(
                "SELECT rowid, -bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY s DESC LIMIT ?",
                (match, k),
            ).fetchall()
        except sqlite3.OperationalError as e:
            if _is_damage(e):
                raise self.damaged(f"cannot read {DB_NAME} ({e})") from None
            return []  # a query FTS5 cannot parse: no lexical hits
        except sqlite3.DatabaseError as e:
            raise self.damaged(f"cannot read {DB_NAME} ({e})") from None
        return [(int(r[0]), float(r[1])) for r in rows]


_STOP = frozenset(
    "a an and are as at be by can do does for from how i in is it its of on or that the this "
    "to was what when where which who why will with you your".split()
)


def fts_terms(query: str) -> list[str]:
    """Query words for FTS5, quoted later, stop words dropped.

    >>> fts_terms('What is "GGUF" used for?')
    ['gguf', 'used']
    """
    words = re.findall(r"\w+", query.lower())
    seen: dict[str, None] = {}
    for w in words:
        if w not in _STOP and w not in seen:
            seen[w] = None
    return list(seen) or [w for w in words][:32]


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


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    msg = str(e).lower()
    return "malformed" in msg or "not a database" in msg or "no such table" in msg


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
        new_info = IndexInfo(info.embedder, info.embedder_id, info.dim, info.chunking,
                             info.format_version, new_gen, now)
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
    for chunk, vec in zip(nd.chunks, nd.vectors):
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
