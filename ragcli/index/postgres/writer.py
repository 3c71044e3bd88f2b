"""Writing a PostgreSQL index: one ingest run of batches, each one transaction.

A batch: delete the replaced documents (their chunks, spans and pages go by ON DELETE
CASCADE), insert the new documents, then COPY their pages, chunks (vectors included) and
spans, update the counts in ``meta`` and the run's batch count, COMMIT. Killed before the
COMMIT, the server rolls the whole batch back; there is nothing to clean up. The caller
holds the writer lock (``server.writer_lock``), so batches of two machines never interleave.

Where it writes: ``pg_schema.claim`` first makes sure the schema is ragcli's (created and
marked, an empty one adopted, an earlier ragcli's index marked; anything else refused), so
a write never lands among, or drops, tables ragcli did not create. The ``vector`` extension
is created (if missing, and allowed) in ``public``, never in an index schema.

A ``--rebuild`` writes into ``<schema>__staging`` (claimed the same way) batch by batch,
resumable like any ingest; ``finish`` then, in one transaction, drops the index's old tables
by name and moves the new ones in (``pg_schema.replace_tables``: it waits for searches still
reading the old tables), and drops the staging schema if ragcli created it. The index's
schema is never renamed or dropped, so its grants and whatever else a DBA put in it stay.
A server that closes the connection mid-run is reported as such (``server.closed``); the
batches committed before it are intact and the next run carries on.

PostgreSQL's text cannot hold NUL characters: a NUL in a page is stored as U+FFFD (same
length, so offsets hold; such a quote verifies against the index copy, not the file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from ...errors import StorageError
from ...lexical import changes, lexical_text
from .. import crash
from ..base import DocRow, IndexInfo, NewDocument, Run, damaged
from ..locations import shown, split
from . import schema as pg_schema
from . import server

STAGING = "__staging"
OLD = "__old"  # where an earlier ragcli's rebuild left the replaced index when readers held it


def _text(s: str) -> str:
    return s.replace("\x00", "\ufffd") if "\x00" in s else s


class PgWriter:
    """One ingest run into a PostgreSQL index (``IndexWriter``); the caller holds ``writer_lock``."""

    def __init__(self, url: str, schema: str, target: str, con: Any, staging: bool) -> None:
        self.url = url
        self.schema = schema  # the index's schema, where readers look
        self.target = target  # where this run writes: ``schema``, or its staging schema for a rebuild
        self.con = con
        self.staging = staging
        self._meta = pg_schema.read_meta(con)
        self.info = pg_schema.read_info(self._meta)
        self.run_id: int | None = None
        self.messages: list[str] = []

    @classmethod
    def open(cls, url: str, wanted: IndexInfo, *, rebuild: bool = False) -> PgWriter:
        _conninfo, schema = split(url)
        con = server.connect(url, "ingest")
        try:
            with server.closed(url):
                home = _extension(con, url)
                server.register_vector(con, url)
                messages = []
                pg_schema.claim(con, schema, "index", url)
                with con.transaction():  # an earlier ragcli's switch-over whose drop waited too long
                    if _drop_legacy(con, schema + OLD):
                        messages.append(f"dropped {schema + OLD}, the index an earlier rebuild replaced")
                target = schema + STAGING if rebuild else schema
                if rebuild:
                    layout = pg_schema.claim(con, target, "staging", url)
                    if layout.tables:
                        con.execute(f"SET search_path TO {pg_schema.ident(target)}, {pg_schema.ident(home)}")
                        old = pg_schema.read_info(pg_schema.read_meta(con)) if pg_schema.version(con, target) \
                            else None
                        if old is None or not old.same_build(wanted):
                            messages.append("discarded an unfinished rebuild made with other settings")
                            with con.transaction():
                                pg_schema.drop_tables(con, target, layout.tables)
                        else:
                            messages.append("carrying on with an unfinished rebuild")
                applied = pg_schema.migrate(con, target, wanted)
                if applied and applied[0] > 1:
                    messages.append(f"upgraded the index's tables in place (schema version {applied[-1]})")
                con.execute(f"SET search_path TO {pg_schema.ident(target)}, {pg_schema.ident(home)}")
                w = cls(url, schema, target, con, staging=rebuild)
            w.messages = messages
            return w
        except BaseException:
            con.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()

    # -- what is there -------------------------------------------------------------------
    _DOC = "SELECT id, path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at FROM documents"

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """A query's rows; a server that went away says so (``server.closed``)."""
        with server.closed(self.url):
            return self.con.execute(sql, params).fetchall()

    def documents(self) -> dict[str, DocRow]:
        """Every document by path (tests, small indexes; ``ingest`` looks up by path)."""
        return {r[1]: DocRow(*r) for r in self._rows(self._DOC)}

    def document(self, path: str) -> DocRow | None:
        rows = self._rows(self._DOC + " WHERE path = %s", (path,))
        return DocRow(*rows[0]) if rows else None

    def documents_with_prefix(self, prefix: str) -> Iterator[DocRow]:
        """Documents whose path starts with ``prefix`` (a scan: the path index's collation is
        not byte order, so it cannot serve a prefix range)."""
        for r in self._rows(self._DOC + " WHERE starts_with(path, %s) ORDER BY path", (prefix,)):
            yield DocRow(*r)

    def roots(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT root FROM documents ORDER BY root")]

    def interrupted_run(self) -> Run | None:
        rows = self._rows("SELECT id, started, finished, pid, paths, rebuild, batches FROM runs "
                          "WHERE finished IS NULL ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        r = rows[0]
        paths = r[4] if isinstance(r[4], list) else json.loads(r[4])
        return Run(r[0], r[1], r[2], r[3], tuple(paths), bool(r[5]), r[6])

    # -- writing -------------------------------------------------------------------------
    def begin_run(self, paths: Sequence[str], rebuild: bool) -> None:
        with self._transaction():
            self.con.execute("UPDATE runs SET finished = 0 WHERE finished IS NULL")  # resumed by this one
            self.run_id = self.con.execute(
                "INSERT INTO runs(started, host, pid, paths, rebuild) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (time.time(), socket.gethostname(), os.getpid(), json.dumps(list(paths)), rebuild)).fetchone()[0]
            pg_schema.write_info(self.con, self.info)
        crash.point("run:started")

    def commit_batch(self, remove_doc_ids: Sequence[int], add: Sequence[NewDocument]) -> None:
        """One transaction: ``remove_doc_ids`` leave and ``add`` arrives, or nothing happens."""
        import numpy as np

        gen = self.info.generation + 1
        now = time.time()
        meta = dict(self._meta)
        with self._transaction():
            counts = pg_schema.counts(meta)
            if remove_doc_ids:
                gone = self.con.execute(
                    "SELECT (SELECT count(*) FROM documents WHERE id = ANY(%(d)s)), "
                    "(SELECT count(*) FROM chunks WHERE doc_id = ANY(%(d)s)), "
                    "(SELECT count(*) FROM spans s JOIN chunks c ON c.id = s.chunk_id WHERE c.doc_id = ANY(%(d)s)), "
                    "(SELECT count(*) FROM pages WHERE doc_id = ANY(%(d)s))", {"d": list(remove_doc_ids)}).fetchone()
                for k, n in zip(pg_schema.COUNTS, gone, strict=True):
                    counts[k] -= n
                self.con.execute("DELETE FROM documents WHERE id = ANY(%s)", (list(remove_doc_ids),))
            n_chunks = sum(len(nd.chunks) for nd in add)
            ids = iter([r[0] for r in self.con.execute(
                "SELECT nextval('chunks_id_seq') FROM generate_series(1, %s)", (n_chunks,))] if n_chunks else [])
            with self.con.cursor() as cur:
                doc_ids = []
                for nd in add:
                    d = nd.doc
                    doc_ids.append(cur.execute(
                        "INSERT INTO documents(path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                        (d.path, nd.root, d.sha256, d.kind, d.encoding, d.size, d.mtime, len(d.pages), now),
                    ).fetchone()[0])
                chunk_rows, span_rows = [], []
                for nd, doc_id in zip(add, doc_ids, strict=True):
                    vecs = np.asarray(nd.vectors, dtype=np.float32).reshape(-1, self.info.dim)
                    for c, v in zip(nd.chunks, vecs, strict=True):
                        cid = next(ids)
                        chunk_rows.append((cid, doc_id, c.key, c.page, c.start, c.end, c.line_start, c.line_end,
                                           _text(c.text), _text(c.heading), _text(c.embed), c.n_tokens, v,
                                           _text(lexical_text(c.embed)) if changes(c.embed) else None))
                        span_rows += [(cid, s.page, s.start, s.end, s.line_start, s.line_end, _text(s.text))
                                      for s in c.spans]
                with cur.copy("COPY pages (doc_id, number, text, sha256, extraction, title, blocks, block_name) "
                              "FROM STDIN") as copy:
                    for nd, doc_id in zip(add, doc_ids, strict=True):
                        for p in nd.doc.pages:
                            text = _text(p.text)
                            copy.write_row((doc_id, p.number, text, hashlib.sha256(text.encode()).hexdigest(),
                                            p.extraction, p.title, list(p.blocks), p.block_name))
                with cur.copy('COPY chunks (id, doc_id, key, page, start, "end", line_start, line_end, text, '
                              "heading, embed, n_tokens, embedding, lex) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "int8", "text", "int4", "int4", "int4", "int4", "int4", "text", "text",
                                    "text", "int4", "vector", "text"])
                    for row in chunk_rows:
                        copy.write_row(row)
                with cur.copy('COPY spans (chunk_id, page, start, "end", line_start, line_end, text) '
                              "FROM STDIN") as copy:
                    for row in span_rows:
                        copy.write_row(row)
            counts["documents"] += len(add)
            counts["chunks"] += n_chunks
            counts["spans"] += len(span_rows)
            counts["pages"] += sum(len(nd.doc.pages) for nd in add)
            meta.update({f"n_{k}": str(v) for k, v in counts.items()})
            pg_schema.set_meta(self.con, {f"n_{k}": meta[f"n_{k}"] for k in pg_schema.COUNTS})
            pg_schema.write_info(self.con, replace(self.info, generation=gen, last_ingest=now))
            if self.run_id is not None:
                self.con.execute("UPDATE runs SET batches = batches + 1 WHERE id = %s", (self.run_id,))
            crash.point("batch:vectors-written")  # rows and vectors sent, not committed
        crash.point("batch:db-committed")
        self._meta = meta
        self.info = replace(self.info, generation=gen, last_ingest=now)

    def finish(self) -> None:
        """Mark the run finished and refresh the planner's statistics; for a rebuild, switch the
        staging schema into place and drop the old tables."""
        with self._transaction():
            if self.info.generation == 0:  # nothing ingested: still a valid, empty index
                self.info = replace(self.info, generation=1, last_ingest=time.time())
                pg_schema.write_info(self.con, self.info)
            if self.run_id is not None:
                self.con.execute("UPDATE runs SET finished = %s WHERE id = %s", (time.time(), self.run_id))
        with server.closed(self.url):
            self.con.execute("ANALYZE chunks")
        if self.staging:
            with self._transaction():
                pg_schema.replace_tables(self.con, self.target, self.schema)
                pg_schema.drop_if_created(self.con, self.target)
            crash.point("rebuild:swapped")
            self.target = self.schema
            self.con.execute(f"SET search_path TO {pg_schema.ident(self.schema)}, "
                             f"{pg_schema.ident(pg_schema.extension_schema(self.con) or 'public')}")
        crash.point("run:finished")

    # -- helpers -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self):
        psycopg, _ = server.driver()
        try:
            with server.closed(self.url), self.con.transaction():
                yield
        except psycopg.errors.DiskFull:
            raise StorageError(f"the server holding {shown(self.url)} is out of disk space; the index as last "
                               "committed is intact. Free some space and run the ingest again") from None
        except psycopg.errors.DependentObjectsStillExist as e:
            raise StorageError(f"the rebuild of {shown(self.url)} cannot replace the old tables: {e.diag.message_detail or e} "
                               "depends on them (ragcli drops nothing but its own tables). Drop or move that "
                               "object and run the rebuild again; the old index is intact") from None
        except (psycopg.errors.DataCorrupted, psycopg.errors.UndefinedTable) as e:
            raise damaged(self.url, e) from None


def _extension(con: Any, url: str) -> str:
    """The schema of the ``vector`` extension, created in ``public`` if the database has none
    (never in an index schema, which a rebuild could otherwise take it away with)."""
    psycopg, _ = server.driver()
    home = pg_schema.extension_schema(con)
    if home is None:
        try:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName):
            raise StorageError(f"the database at {shown(url)} has no pgvector extension and this user may not "
                               "create it. Have the database's owner run: CREATE EXTENSION vector;") from None
        home = pg_schema.extension_schema(con) or "public"
    return home


def _drop_legacy(con: Any, schema: str) -> bool:
    """Drop an earlier ragcli's leftover ``<schema>__old`` (no marker) if ragcli's tables are all
    it holds and this user owns it; whether it did. Anything else in it keeps it."""
    layout = pg_schema.inspect(con, schema)
    if not (layout.legacy and layout.owned):
        return False
    pg_schema.drop_tables(con, schema, layout.tables)
    with contextlib.suppress(server.driver()[0].errors.DependentObjectsStillExist), con.transaction():
        con.execute(f"DROP SCHEMA {pg_schema.ident(schema)} RESTRICT")
    return True
