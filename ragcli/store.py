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
This module reads; ``writer`` holds the lock and commits. Neither chunks, embeds or decides
what changed (``pipeline`` does).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DamagedIndexError, IndexNotFoundError
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
    embedder_backend: str = ""  # what computed the vectors, e.g. "onnxruntime-int8"; "" = not recorded (older indexes)


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
    vectors: np.ndarray


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
        embedder_backend=rows.get("embedder_backend", ""),
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
    def open(cls, index_dir: Path) -> Store:
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

    def __enter__(self) -> Store:
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
    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
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


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    msg = str(e).lower()
    return "malformed" in msg or "not a database" in msg or "no such table" in msg
