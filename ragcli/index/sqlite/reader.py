"""Reading an SQLite index: one consistent snapshot of a committed state.

``SqliteReader.open`` reads CURRENT, opens that database in a WAL snapshot (a read
transaction held until ``close``), and memory-maps the vector segments the snapshot names.
A writer that merges segments or switches to a rebuilt database may delete files a reader
has not opened yet: the open is then retried on a fresh snapshot. Files already open stay
readable after they are deleted. Damage (bad metadata, truncated or missing segments,
counts that disagree) is reported with the command that rebuilds the index.

An index the user may read but not write (another user's, shared read-only, or on a
read-only mount) is read too: SQLite cannot create the ``-shm`` file a WAL database needs
there, so when none is there and no ``-wal`` holds uncheckpointed changes the database file
is opened ``immutable`` (it is complete: a writer's changes reach that file only at a
checkpoint). A ``-wal`` with changes in it cannot be read that way; that is said plainly
(``StorageError``), never called damage. Readers check nothing about the directory: no
scans, no chmod; only on a failure path do they look at what ``--index`` names.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ... import lexical
from ...errors import DamagedIndexError, IndexNotFoundError, StaleIndexError, StorageError
from ...types import Chunk, Page
from ..base import (
    CHUNK_COLUMNS,
    DOC_COLUMNS,
    FORMAT_VERSION,
    SPAN_COLUMNS,
    DocRow,
    IndexInfo,
    chunks_from_rows,
    damaged,
    rebuild_hint,
)
from ..fts import fts_terms
from ..scoping import Scoped, chunk_ids_from_ranges, id_spans, near_misses, where
from . import directory, schema
from .vectors import AnnInfo, SegmentFiles, SegmentRow, VectorFileError, VectorSet, seg_dir

if TYPE_CHECKING:
    from ...scope import Scope

_OPEN_TRIES = 5
QUICK_CHECK_BYTES = 64 << 20  # `rag status` checks every page of a database up to this size
FTS_SPANS = 16  # a scope whose chunk ids make at most this many runs: one FTS5 rowid range query each


def _checked(method):
    """SQLite errors met while reading (a page damaged after open) become ``DamagedIndexError``."""

    @functools.wraps(method)
    def wrapper(self: SqliteReader, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise self.damaged(f"cannot read {self.db.name} ({e})") from None

    return wrapper


class SqliteReader:
    """A read-only view of one committed state of the index (``IndexReader``)."""

    def __init__(self, index_dir: Path, db: Path, con: sqlite3.Connection, info: IndexInfo,
                 meta: dict[str, str], files: list[SegmentFiles], ann: tuple[AnnInfo, int] | None) -> None:
        self.index_dir = index_dir
        self.location = str(index_dir)
        self.db = db
        self.con = con
        self.info = info
        self._meta = meta
        self._files = files  # open and checked; memory-mapped on the first search
        self._ann = ann  # (info, open fd) of the approximate index, if any
        self._vectors: VectorSet | None = None
        self.open_s = 0.0  # seconds ``open`` took (snapshot + memory-mapping the segments)

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir: Path) -> SqliteReader:
        missing = ""
        t0 = time.perf_counter()
        for _ in range(_OPEN_TRIES):  # a writer may have replaced files between our reads
            try:
                reader = cls._open_once(index_dir)
                reader.open_s = time.perf_counter() - t0
                return reader
            except FileNotFoundError as e:
                missing = Path(e.filename or "?").name
        raise damaged(index_dir, f"{missing} is missing", recorded_roots(index_dir))

    @classmethod
    def _open_once(cls, index_dir: Path) -> SqliteReader:
        try:
            db = schema.current_db(index_dir)
        except NotADirectoryError:
            raise directory.is_file_not_dir(index_dir) or IndexNotFoundError(
                f"no index at {index_dir}: part of that path is a file") from None
        except (ValueError, OSError) as e:
            raise damaged(index_dir, e) from None
        if not db.is_file():
            if db.name != schema.DEFAULT_DB:
                raise FileNotFoundError(2, "missing", str(db))
            raise IndexNotFoundError(
                f"no index at {index_dir}. Build one first: rag ingest PATH --index {_q(index_dir)}")
        try:
            con = schema.connect(db)
            try:
                con.execute("BEGIN")  # snapshot: everything below sees one committed state
                meta = schema.read_meta(con)
            except sqlite3.OperationalError as e:
                con.close()
                if not _cannot_write(e, index_dir, db):
                    raise
                con = _connect_read_only(index_dir, db)
                con.execute("BEGIN")
                meta = schema.read_meta(con)
            info = schema.read_info(con, meta)
        except (sqlite3.DatabaseError, KeyError, ValueError) as e:
            raise damaged(index_dir, f"its database {db.name}: {e}") from None
        if info.format_version < FORMAT_VERSION:
            con.close()
            raise StaleIndexError(
                f"the index at {index_dir} was written by an older ragcli (format {info.format_version}). "
                f"Upgrade it in place, without re-embedding anything: {schema.upgrade_hint(index_dir)}")
        if info.format_version > FORMAT_VERSION:
            con.close()
            raise StaleIndexError(
                f"the index at {index_dir} has format {info.format_version}, newer than this ragcli reads "
                f"({FORMAT_VERSION}); upgrade ragcli, or rebuild the index: {rebuild_hint(index_dir)}")
        if info.generation == 0:  # created, but no batch ever committed
            con.close()
            raise IndexNotFoundError(
                f"the index at {index_dir} has not been built yet (the first ingest did not finish). "
                f"Run: rag ingest PATH --index {_q(index_dir)}")
        files: list[SegmentFiles] = []
        ann: tuple[AnnInfo, int] | None = None
        try:
            rows = [SegmentRow(*r) for r in con.execute(
                "SELECT name, rows, first_id, last_id FROM segments ORDER BY first_id")]
            for r in rows:
                files.append(SegmentFiles.open(index_dir, r, info.dim))
            if "ann" in meta:  # checked by size; read (FAISS imported) on the first search
                a = AnnInfo(**json.loads(meta["ann"]))
                ann = (a, os.open(seg_dir(index_dir) / a.file, os.O_RDONLY))
                if os.fstat(ann[1]).st_size < a.rows:
                    raise VectorFileError(f"{a.file} is truncated")
        except FileNotFoundError:
            _close_all(files, ann)
            con.close()
            raise
        except (VectorFileError, sqlite3.DatabaseError, KeyError, ValueError, OSError) as e:
            _close_all(files, ann)
            roots = _roots(con)
            con.close()
            raise damaged(index_dir, e, roots) from None
        return cls(index_dir, db, con, info, meta, files, ann)

    @property
    def vector_set(self) -> VectorSet:
        """The vectors, memory-mapped on first use (numpy imported then, not for `rag status`)."""
        if self._vectors is None:
            try:
                self._vectors = self._load_vectors()
            except (VectorFileError, ValueError, OSError) as e:
                raise self.damaged(str(e)) from None
        return self._vectors

    def _load_vectors(self) -> VectorSet:
        import numpy as np

        dead = np.fromiter((r[0] for r in self.con.execute("SELECT chunk_id FROM tombstones ORDER BY chunk_id")),
                           dtype=np.int64)
        vs = VectorSet(self.info.dim, [f.load(self.info.dim) for f in self._files], dead)
        n_chunks = schema.counts(self._meta)["chunks"]
        if vs.live != n_chunks:
            raise VectorFileError(f"the vector segments hold {vs.live} live vectors, the database {n_chunks} chunks")
        if self._ann is not None:
            vs.ann_info, vs.ann_path = self._ann[0], Path(f"/proc/self/fd/{self._ann[1]}")
        return vs

    def pages(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[Page, str, str]]:
        """{}: this store keeps no page text (quotes are checked against the files)."""
        return {}

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.con.close()
        _close_all(self._files, self._ann)
        self._files, self._ann = [], None

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def roots(self) -> list[str]:
        return _roots(self.con)

    def damaged(self, what: str) -> DamagedIndexError:
        return damaged(self.index_dir, what, self.roots())

    # -- vectors -------------------------------------------------------------------------
    def dense(self, query_vector, k: int, within: Scoped | None = None) -> list[tuple[int, float]]:
        if within is None:
            return self.vector_set.search(query_vector, k)
        if within.empty or within.chunk_ids is None:
            return []
        return self.vector_set.search(query_vector, k, allowed=within.chunk_ids)

    @_checked
    def scoped(self, scope: Scope) -> Scoped:
        """The documents ``scope`` allows and their chunk ids (``scoping``), from this snapshot:
        one scan of ``documents`` joined with ``chunk_ranges``; a document without its row
        (a database an older ragcli wrote and a reader may not upgrade) costs three seeks."""
        import numpy as np

        cond, params = where(scope, "?")
        sql = (f"SELECT d.id, COALESCE(r.first_id, -1), COALESCE(r.n, -1) FROM documents d LEFT JOIN chunk_ranges r "
               f"ON r.doc_id = d.id WHERE {cond}" if self._has_ranges else
               f"SELECT d.id, -1, -1 FROM documents d WHERE {cond}")
        rows = np.array(self.con.execute(sql, params).fetchall(), dtype=np.int64).reshape(-1, 3)  # (doc, first, n)
        if not len(rows):
            sql, args = near_misses(scope, "?")
            near = tuple(r[0] for r in self.con.execute(sql, args)) if sql else ()
            return Scoped(scope, (), 0, None, self.counts()["documents"], near)
        known = rows[rows[:, 2] > 0]
        ranges = np.stack([known[:, 1], known[:, 1] + known[:, 2] - 1], axis=1)
        unranged = rows[rows[:, 1] < 0, 0].tolist()
        if unranged:
            ranges = np.concatenate([ranges, np.asarray(self._ranges_of(unranged), dtype=np.int64).reshape(-1, 2)])
        ids = chunk_ids_from_ranges(ranges)
        return Scoped(scope, tuple(rows[:, 0].tolist()), len(ids), ids, self.counts()["documents"])

    @functools.cached_property
    def _has_ranges(self) -> bool:
        return self.con.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_ranges'").fetchone() is not None

    def _ranges_of(self, doc_ids: list[int]) -> list[tuple[int, int]]:
        """Chunk id ranges of documents read from ``chunks_doc`` (a document's ids not one range: one each)."""
        if not doc_ids:
            return []
        out: list[tuple[int, int]] = []
        loose: list[int] = []
        for doc_id, lo, hi, n in self.con.execute(
                "SELECT j.value, (SELECT min(id) FROM chunks WHERE doc_id = j.value), (SELECT max(id) FROM chunks "
                "WHERE doc_id = j.value), (SELECT count(*) FROM chunks WHERE doc_id = j.value) FROM json_each(?) j",
                (json.dumps(doc_ids),)):
            if n and hi - lo + 1 == n:
                out.append((lo, hi))
            elif n:
                loose.append(doc_id)
        out += [(i, i) for (i,) in self.con.execute(
            "SELECT id FROM chunks WHERE doc_id IN (SELECT value FROM json_each(?))", (json.dumps(loose),))] \
            if loose else []
        return out

    def vectors(self, ids: Sequence[int]):
        try:
            return self.vector_set.get(ids)
        except KeyError as e:
            raise self.damaged(f"chunk {e.args[0]} has no stored vector") from None

    # -- reading rows --------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return schema.counts(self._meta)

    def chunks_per_document(self) -> dict[str, int]:
        """Chunks of each document, by path (``rag ls``)."""
        return dict(self.con.execute("SELECT d.path, count(c.id) FROM documents d LEFT JOIN chunks c "
                                     "ON c.doc_id = d.id GROUP BY d.path").fetchall())

    @_checked
    def check(self) -> None:
        """The checks ``rag status`` runs: row counts against the recorded ones and, for a
        database up to ``QUICK_CHECK_BYTES``, SQLite's page-level ``quick_check`` (larger ones
        are read page by page only where a search goes, and report damage there)."""
        counts = self.counts()
        n_docs = self.con.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        n_chunks = self.con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if (n_docs, n_chunks) != (counts["documents"], counts["chunks"]):
            raise self.damaged(f"{self.db.name} holds {n_docs} documents and {n_chunks} chunks, "
                               f"its metadata says {counts['documents']} and {counts['chunks']}")
        if self.db.stat().st_size <= QUICK_CHECK_BYTES:
            result = self.con.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise self.damaged(f"{self.db.name} fails SQLite's check ({result})")

    def describe(self) -> dict:
        """Storage facts from the database and file headers (nothing memory-mapped)."""
        n_rows = sum(f.row.rows for f in self._files)
        d: dict = {"segments": len(self._files), "vectors": self.counts()["chunks"], "stored_rows": n_rows,
                   "database": self.db.name}
        if self._ann is None:
            d["search"] = "exact"
        else:
            a = self._ann[0]
            d.update(search="approximate", ann=f"IVF{a.nlist},SQ8", ann_vectors=a.rows, nprobe=a.nprobe,
                     ann_recall_at_10=round(a.recall, 4))
        return d

    @_checked
    def documents(self) -> list[DocRow]:
        return [DocRow(*r) for r in self.con.execute(f"SELECT {DOC_COLUMNS} FROM documents d ORDER BY d.path")]

    def size_bytes(self) -> int:
        total = 0
        for p in [self.db, Path(f"{self.db}-wal")]:
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        fds = [fd for f in self._files for fd in (f.vec_fd, f.ids_fd)] + ([self._ann[1]] if self._ann else [])
        for fd in fds:
            with contextlib.suppress(OSError):
                total += os.fstat(fd).st_size
        return total

    @_checked
    def chunks(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, DocRow]]:
        """Chunk rows (with their spans) and their documents, by chunk id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.con.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                f"WHERE c.id IN ({marks})", list(ids)).fetchall()
        spans = self.con.execute(f"SELECT {SPAN_COLUMNS} FROM spans WHERE chunk_id IN ({marks}) "
                                 "ORDER BY chunk_id, start", list(ids))
        return chunks_from_rows(rows, spans)

    def lexical(self, query: str, k: int, within: Scoped | None = None) -> list[tuple[int, float]]:
        """BM25 over chunk text (SQLite FTS5): [(chunk id, score)], best first, score > 0;
        ``within``: only the chunks of those documents, filtered before the LIMIT."""
        # an index from before ``lexical`` (read-only, never re-opened by a writer) has its old words
        terms = fts_terms(query, segmented=self._meta.get("lexical_text") == lexical.VERSION)
        if not terms or (within is not None and within.empty):
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        try:
            if within is None:
                rows = self.con.execute(
                    "SELECT rowid, -bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                    "ORDER BY s DESC LIMIT ?",
                    (match, k),
                ).fetchall()
            elif within.chunk_ids is not None and len(spans := id_spans(within.chunk_ids)) <= FTS_SPANS:
                rows = []  # a document or a folder ingested together: FTS5 reads only those rowids
                for lo, hi in spans:
                    rows += self.con.execute(
                        "SELECT rowid, -bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                        "AND rowid BETWEEN ? AND ? ORDER BY s DESC LIMIT ?", (match, lo, hi, k)).fetchall()
                rows = sorted(rows, key=lambda r: -r[1])[:k]  # BM25 has index-wide statistics: comparable
            else:  # FTS5 first (CROSS JOIN keeps that order), each match's document checked by rowid
                rows = self.con.execute(
                    "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f CROSS JOIN chunks c "
                    "ON c.id = f.rowid WHERE chunks_fts MATCH ? AND c.doc_id IN "
                    "(SELECT value FROM json_each(?)) ORDER BY s DESC LIMIT ?",
                    (match, json.dumps(within.doc_ids), k),
                ).fetchall()
        except sqlite3.OperationalError as e:
            if _is_damage(e):
                raise self.damaged(f"cannot read {self.db.name} ({e})") from None
            return []  # a query FTS5 cannot parse: no lexical hits
        except sqlite3.DatabaseError as e:
            raise self.damaged(f"cannot read {self.db.name} ({e})") from None
        return [(int(r[0]), float(r[1])) for r in rows]


def _cannot_write(e: sqlite3.OperationalError, index_dir: Path, db: Path) -> bool:
    """Whether SQLite failed because it may not write next to the database (read-only to us)."""
    msg = str(e).lower()
    return ("readonly" in msg or "unable to open" in msg) and not (
        os.access(index_dir, os.W_OK) and os.access(db, os.W_OK))


def _connect_read_only(index_dir: Path, db: Path) -> sqlite3.Connection:
    """The database file itself, read-only and ``immutable`` (see the module docstring)."""
    wal = Path(f"{db}-wal")
    with contextlib.suppress(OSError):
        if wal.stat().st_size > 0:
            raise StorageError(
                f"cannot read the index at {index_dir}: it is read-only to you, and its last writer left changes "
                f"in {wal.name} that SQLite reads only with write access there. Its owner can fold them in "
                f"(any `rag status --index {_q(index_dir)}` they run does), or copy the directory somewhere "
                f"you can write and use that copy")
    return sqlite3.connect(f"file:{quote(str(db))}?mode=ro&immutable=1", uri=True, isolation_level=None,
                           check_same_thread=False)


def _close_all(files: list[SegmentFiles], ann: tuple[AnnInfo, int] | None) -> None:
    for f in files:
        f.close()
    if ann is not None:
        with contextlib.suppress(OSError):
            os.close(ann[1])


def _roots(con: sqlite3.Connection) -> list[str]:
    try:
        return [r for (r,) in con.execute("SELECT DISTINCT root FROM documents ORDER BY root")]
    except sqlite3.DatabaseError:
        return []


def recorded_roots(index_dir: Path) -> list[str]:
    """The directories the current database records, even when the rest is damaged ([] if unreadable)."""
    try:
        con = schema.connect(schema.current_db(index_dir))
    except (sqlite3.Error, ValueError, OSError):
        return []
    try:
        return _roots(con)
    finally:
        con.close()


def _q(p: Path) -> str:
    import shlex

    return shlex.quote(str(p))


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    msg = str(e).lower()
    return "malformed" in msg or "not a database" in msg or "no such table" in msg
