"""Writing an SQLite index: one ingest run of atomic batches (the caller holds ``lock.writer_lock``).

A batch commits like this (crash points in brackets, see ``crash``)::

    commit the new segment's paths to loose_files (the intent)   [batch:intent-recorded]
    BEGIN IMMEDIATE; delete replaced documents (their chunk ids become tombstones);
    insert documents, chunks, spans, FTS rows with ids from meta.next_chunk_id;
    write the batch's vectors as a new segment         [batch:vectors-written]
    rename it into place                               [batch:vectors-renamed]
    name the segment, clear its intent, update counts and generation; COMMIT   [batch:db-committed]

Killed before the COMMIT, the database is as it was and the intent names the new segment's
files, which the next writer removes (``repair``: only files recorded there, never by their
names); after it, the batch is complete. Interrupted (Ctrl-C) before the COMMIT, the batch
is rolled back and its files removed; after it, even before the call returns, the batch
stays committed with its files. Merges and the approximate index record their new files
the same way, and the files they replace in the transaction that stops using them. A
document is never split over two batches, and a changed file's old version leaves in the
same batch its new one arrives.
``finish`` then merges small segments, builds or extends the approximate index when the
index is large (``vectors``), and, for a rebuild, switches CURRENT to the new database.

A ``--rebuild`` writes a new database named by STAGING, batch by batch like any ingest
(so it resumes too); readers keep seeing CURRENT until the switch, one atomic rename. The
database it replaces is first recorded in the new one [rebuild:old-db-recorded], so the
next writer deletes it (and its segments) even if this one is killed after the switch.

Opening checks the directory first (``directory``: the marker, owner and modes) and makes
the index's files private (``repair.make_private``).

Write failures (disk full, a file size limit) become a ``StorageError`` saying the index
as last committed is intact. Reading is ``reader``; what to ingest is ``ingest``'s business.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from ...lexical import lexical_text
from .. import crash
from ..base import DocRow, IndexInfo, NewDocument, Run, damaged
from . import directory, repair, schema
from .lock import storage_error
from .migrate import open_db
from .repair import remove_orphans
from .vectors import (
    ANN_MIN_ROWS,
    AnnInfo,
    SegmentRow,
    VectorSet,
    ann_name,
    build_ann,
    new_name,
    open_segment,
    read_blocks,
    seg_dir,
    segment_files,
    segment_paths,
    write_segment,
    write_segment_blocks,
)

MAX_SEGMENTS = 8  # more than this after a run: the small ones are merged
ANN_MIN_NEW = 50_000  # vectors added since the approximate index was built, before extending it


class SqliteWriter:
    """One ingest run into an SQLite index (``IndexWriter``); the caller holds ``writer_lock``."""

    ann_min_rows = ANN_MIN_ROWS  # live vectors from which ``finish`` builds the approximate index

    def __init__(self, index_dir: Path, db: Path, con: sqlite3.Connection, staging: bool) -> None:
        self.index_dir = index_dir
        self.db = db
        self.con = con
        self.staging = staging
        self._meta = schema.read_meta(con)
        self.info = schema.read_info(con, self._meta)
        self.run_id: int | None = None
        self.messages: list[str] = []  # what happened on open (upgrade, discarded rebuild), for the report

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir: Path, wanted: IndexInfo, *, rebuild: bool = False) -> SqliteWriter:
        messages: list[str] = []
        try:
            note = directory.prepare(index_dir, adopt=True)  # (under ``writer_lock``: already done there)
            if note:
                messages.append(note)
            current = schema.current_db(index_dir)
            staging = schema.staging_db(index_dir)
            if staging is not None and staging == current:  # killed right after the switch
                schema.write_pointer(index_dir, schema.STAGING, None)
                staging = None
            if staging is not None and staging.exists() and (
                    repair.is_discarded(staging) or (rebuild and not _same_build(staging, wanted))):
                if rebuild and not repair.is_discarded(staging):
                    messages.append("discarded an unfinished rebuild made with other settings")
                repair.discard_db(index_dir, staging, repair.used_by([current]), mark=True)
                schema.write_pointer(index_dir, schema.STAGING, None)
                staging = None
            if rebuild:
                if staging is not None and staging.exists():
                    messages.append("carrying on with an unfinished rebuild")
                else:
                    staging = index_dir / f"index-{new_name()}.sqlite"
                    schema.write_pointer(index_dir, schema.STAGING, staging.name)
                db = staging
            else:
                db = current
            con = open_db(index_dir, db, wanted, messages)
            keep = [p for p in dict.fromkeys([db, current] + ([staging] if staging is not None else [])) if p.exists()]
            remove_orphans(index_dir, keep)
            repair.make_private(index_dir, keep)
            w = cls(index_dir, db, con, staging=rebuild)
            if not rebuild:
                w._check_segments()
            w.messages = messages
            return w
        except (OSError, sqlite3.DatabaseError) as e:
            err = storage_error(e, index_dir)
            if err is not None:
                raise err from None
            if isinstance(e, OSError):
                raise
            raise damaged(index_dir, f"its database: {e}") from None
        except (KeyError, ValueError) as e:
            raise damaged(index_dir, f"bad metadata: {e}") from None

    def _check_segments(self) -> None:
        for name, rows in self.con.execute("SELECT name, rows FROM segments"):
            vec, ids = segment_files(self.index_dir, name)
            if not vec.is_file() or not ids.is_file() or ids.stat().st_size < rows * 8 \
                    or vec.stat().st_size < rows * self.info.dim * 4:
                raise damaged(self.index_dir, f"segment {name} is missing or truncated", self.roots())

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.con.close()

    # -- what is there -------------------------------------------------------------------
    _DOC = "SELECT id, path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at FROM documents"

    def documents(self) -> dict[str, DocRow]:
        """Every document by path (for tests and small indexes; ``ingest`` looks up by path)."""
        return {r[1]: DocRow(*r) for r in self.con.execute(self._DOC)}

    def document(self, path: str) -> DocRow | None:
        r = self.con.execute(self._DOC + " WHERE path = ?", (path,)).fetchone()
        return DocRow(*r) if r else None

    def documents_with_prefix(self, prefix: str) -> Iterator[DocRow]:
        """Documents whose path starts with ``prefix``, streamed (a range scan of the path index)."""
        for r in self.con.execute(self._DOC + " WHERE path >= ? AND path < ? ORDER BY path",
                                  (prefix, prefix + "\U0010ffff")):
            yield DocRow(*r)

    def roots(self) -> list[str]:
        return [r for (r,) in self.con.execute("SELECT DISTINCT root FROM documents ORDER BY root")]

    def interrupted_run(self) -> Run | None:
        r = self.con.execute("SELECT id, started, finished, pid, paths, rebuild, batches FROM runs "
                             "WHERE finished IS NULL ORDER BY id DESC LIMIT 1").fetchone()
        if r is None:
            return None
        return Run(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), bool(r[5]), r[6])

    # -- writing -------------------------------------------------------------------------
    def begin_run(self, paths: Sequence[str], rebuild: bool) -> None:
        def work() -> None:
            self.con.execute("UPDATE runs SET finished = 0 WHERE finished IS NULL")  # resumed by this one
            self.run_id = self.con.execute(
                "INSERT INTO runs(started, pid, paths, rebuild) VALUES (?, ?, ?, ?)",
                (time.time(), os.getpid(), json.dumps(list(paths)), int(rebuild))).lastrowid
            schema.write_info(self.con, self.info)
        self._transaction(work)
        crash.point("run:started")

    def commit_batch(self, remove_doc_ids: Sequence[int], add: Sequence[NewDocument]) -> None:
        """One atomic batch: ``remove_doc_ids`` leave and ``add`` arrives, or nothing happens."""
        import numpy as np

        gen = self.info.generation + 1
        now = time.time()
        meta = dict(self._meta)
        name = new_name(f"b{gen}-")
        intents = segment_paths(name) if any(nd.chunks for nd in add) else []
        if intents:
            self._intend(intents)
            crash.point("batch:intent-recorded")

        def work() -> None:
            counts = schema.counts(meta)
            if remove_doc_ids:
                removed = self._remove_documents(remove_doc_ids)
                for k in schema.COUNTS:
                    counts[k] -= removed[k]
            next_id = int(meta.get("next_chunk_id", "1"))
            ids: list[int] = []
            vecs = []
            for nd in add:
                next_id = self._insert_document(nd, next_id, now, ids)
                vecs.append(np.asarray(nd.vectors, dtype=np.float32).reshape(-1, self.info.dim))
                counts["documents"] += 1
                counts["chunks"] += len(nd.chunks)
                counts["spans"] += sum(len(c.spans) for c in nd.chunks)
                counts["pages"] += len(nd.doc.pages)
            if ids:
                write_segment(self.index_dir, name, np.asarray(ids, dtype=np.int64), np.concatenate(vecs),
                              stage="batch")
                self.con.execute("INSERT INTO segments(name, rows, first_id, last_id) VALUES (?, ?, ?, ?)",
                                 (name, len(ids), ids[0], ids[-1]))
                repair.unrecord(self.con, intents)
            meta.update({f"n_{k}": str(v) for k, v in counts.items()})
            meta["next_chunk_id"] = str(next_id)
            schema.set_meta(self.con, {k: meta[k] for k in [*(f"n_{c}" for c in schema.COUNTS), "next_chunk_id"]})
            schema.write_info(self.con, replace(self.info, generation=gen, last_ingest=now))
            if self.run_id is not None:
                self.con.execute("UPDATE runs SET batches = batches + 1 WHERE id = ?", (self.run_id,))

        self._transaction(work, intents)
        crash.point("batch:db-committed")
        self._meta = meta
        self.info = replace(self.info, generation=gen, last_ingest=now)
        if self.con.execute("SELECT COUNT(*) FROM segments").fetchone()[0] > 2 * MAX_SEGMENTS:
            self._merge_segments()  # a long run keeps the files a reader opens few

    def finish(self) -> None:
        """Mark the run finished; merge segments, build the approximate index when large;
        for a rebuild, make the new database current; remove what is no longer named."""
        self._merge_segments()
        self._maybe_build_ann()
        if self.info.generation == 0:  # nothing at all was ingested: still a valid, empty index
            self._transaction(lambda: schema.write_info(self.con, replace(self.info, generation=1,
                                                                          last_ingest=time.time())))
            self.info = replace(self.info, generation=1)
        if self.run_id is not None:
            self._transaction(lambda: self.con.execute("UPDATE runs SET finished = ? WHERE id = ?",
                                                       (time.time(), self.run_id)))
        if self.staging:
            old = schema.current_db(self.index_dir)
            if old.exists() and old != self.db:  # recorded here first: deleted after the switch, even after a kill
                self._transaction(lambda: repair.record(self.con, [old.name], kind="db"))
                crash.point("rebuild:old-db-recorded")
            self.con.close()  # last connection: SQLite checkpoints the WAL into the file
            schema.write_pointer(self.index_dir, schema.CURRENT, self.db.name)
            crash.point("rebuild:swapped")
            schema.write_pointer(self.index_dir, schema.STAGING, None)
            self.con = schema.connect(self.db)
        remove_orphans(self.index_dir, [self.db])
        crash.point("run:finished")

    # -- helpers -------------------------------------------------------------------------
    def _transaction(self, work: Callable[[], None], intents: Sequence[str] = ()) -> None:
        """Run ``work`` in one transaction; rolled back, the files of ``intents`` (recorded
        by ``_intend``, written by ``work`` or before it) are removed with their record."""
        try:
            self.con.execute("BEGIN IMMEDIATE")
            work()
            self.con.execute("COMMIT")
        except BaseException as e:
            # A Ctrl-C (KeyboardInterrupt) can land after COMMIT has returned, still inside
            # this try: then the batch is committed and its files are the database's. Only a
            # transaction still open here is rolled back, and only then are its files removed.
            # (A COMMIT that failed and was rolled back by SQLite itself leaves its intents
            # recorded: the next writer's remove_orphans takes their files.)
            rolled_back = self.con.in_transaction
            with contextlib.suppress(sqlite3.Error):
                self.con.execute("ROLLBACK")
            if rolled_back:
                self._drop(intents)
            err = storage_error(e, self.index_dir)
            if err is not None:
                raise err from None
            raise

    def _intend(self, paths: Sequence[str]) -> None:
        """Commit ``paths`` (relative to the index) to ``loose_files`` before their files exist."""
        self._transaction(lambda: repair.record(self.con, paths))

    def _drop(self, paths: Sequence[str]) -> None:
        repair.drop(self.con, self.index_dir, paths)

    def _write_recorded(self, paths: Sequence[str], write: Callable[[], object]):
        """``write()`` files already recorded as ``paths``; if it fails, they go with their record."""
        try:
            return write()
        except BaseException as e:
            self._drop(paths)
            err = storage_error(e, self.index_dir)
            if err is not None:
                raise err from None
            raise

    def _remove_documents(self, doc_ids: Sequence[int]) -> dict[str, int]:
        marks = ",".join("?" * len(doc_ids))
        chunk_ids = [r[0] for r in self.con.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))]
        n_spans = self.con.execute(
            f"SELECT COUNT(*) FROM spans WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id IN ({marks}))",
            list(doc_ids)).fetchone()[0]
        n_docs, n_pages = self.con.execute(
            f"SELECT COUNT(*), COALESCE(SUM(n_pages), 0) FROM documents WHERE id IN ({marks})", list(doc_ids)).fetchone()
        self.con.executemany("INSERT OR IGNORE INTO tombstones(chunk_id) VALUES (?)", [(c,) for c in chunk_ids])
        self.con.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(c,) for c in chunk_ids])
        self.con.executemany("DELETE FROM documents WHERE id = ?", [(d,) for d in doc_ids])  # cascades
        return {"documents": n_docs, "chunks": len(chunk_ids), "spans": n_spans, "pages": n_pages}

    def _insert_document(self, nd: NewDocument, next_id: int, now: float, ids: list[int]) -> int:
        d = nd.doc
        doc_id = self.con.execute(
            "INSERT INTO documents(path, root, sha256, kind, encoding, size, mtime, n_pages, ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d.path, nd.root, d.sha256, d.kind, d.encoding, d.size, d.mtime, len(d.pages), now),
        ).lastrowid
        if len(nd.chunks) != len(nd.vectors):
            raise ValueError(f"{d.path}: {len(nd.chunks)} chunks but {len(nd.vectors)} vectors")
        rows, spans, fts = [], [], []
        for chunk in nd.chunks:
            cid = next_id
            next_id += 1
            rows.append((cid, doc_id, chunk.key, chunk.page, chunk.start, chunk.end, chunk.line_start,
                         chunk.line_end, chunk.text, chunk.heading, chunk.embed, chunk.n_tokens))
            spans.extend((cid, s.page, s.start, s.end, s.line_start, s.line_end, s.text) for s in chunk.spans)
            fts.append((cid, lexical_text(chunk.embed)))
            ids.append(cid)
        self.con.executemany(
            'INSERT INTO chunks(id, doc_id, key, page, start, "end", line_start, line_end, text, heading, embed, '
            "n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.con.executemany(
            'INSERT INTO spans(chunk_id, page, start, "end", line_start, line_end, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
            spans)
        self.con.executemany("INSERT INTO chunks_fts(rowid, embed) VALUES (?, ?)", fts)
        if nd.chunks:
            self.con.execute("INSERT OR REPLACE INTO chunk_ranges(doc_id, first_id, n) VALUES (?, ?, ?)",
                             (doc_id, next_id - len(nd.chunks), len(nd.chunks)))
        return next_id

    def _segments(self) -> list[SegmentRow]:
        return [SegmentRow(*r) for r in self.con.execute(
            "SELECT name, rows, first_id, last_id FROM segments ORDER BY first_id")]

    def _dead(self):
        import numpy as np

        return np.fromiter((r[0] for r in self.con.execute("SELECT chunk_id FROM tombstones ORDER BY chunk_id")),
                           dtype=np.int64)

    def _merge_segments(self) -> None:
        """Merge the small segments at the end (and any half-dead one) into one, dropping
        tombstoned rows: a reader opens a handful of files, whatever the number of batches."""
        import numpy as np

        rows = self._segments()
        dead = self._dead()
        if not rows:
            return
        n_dead = {r.name: int(((dead >= r.first_id) & (dead <= r.last_id)).sum()) for r in rows}
        if len(rows) > MAX_SEGMENTS:
            big = max(r.rows for r in rows)
            tail: list[SegmentRow] = []
            for r in reversed(rows):  # the run of small segments at the end
                if r.rows * 4 > big and tail:
                    break
                tail.insert(0, r)
            group = tail if len(tail) > 1 else rows
        else:
            group = [r for r in rows if n_dead[r.name] * 2 > r.rows][:1]
            if not group:
                return
        first = rows.index(group[0])
        if group != rows[first : first + len(group)]:
            return  # only consecutive segments merge, so segments stay ordered by id
        total = sum(r.rows for r in group) - sum(n_dead[r.name] for r in group)

        def live_blocks():
            for ids, block in read_blocks(self.index_dir, group):
                keep = ~np.isin(ids, dead) if len(dead) else np.ones(len(ids), dtype=bool)
                yield ids[keep], block[keep]

        name = new_name("m-")
        intents = segment_paths(name) if total else []
        if total:
            self._intend(intents)
            self._write_recorded(intents, lambda: write_segment_blocks(self.index_dir, name, live_blocks(), total,
                                                                       self.info.dim))
        gone = [r.name for r in group]
        retired = [p for g in gone for p in segment_paths(g)]
        lo, hi = group[0].first_id, group[-1].last_id

        def work() -> None:
            self.con.executemany("DELETE FROM segments WHERE name = ?", [(g,) for g in gone])
            if total:
                ids = np.load(segment_files(self.index_dir, name)[1], mmap_mode="r")
                self.con.execute("INSERT INTO segments(name, rows, first_id, last_id) VALUES (?, ?, ?, ?)",
                                 (name, total, int(ids[0]), int(ids[-1])))
                repair.unrecord(self.con, intents)
            repair.record(self.con, retired)
            self.con.execute("DELETE FROM tombstones WHERE chunk_id BETWEEN ? AND ? AND chunk_id >= ?",
                             (lo, hi, self._ann_upto()))

        self._transaction(work, intents)
        crash.point("merge:db-committed")
        self._drop(retired)
        crash.point("merge:cleanup-done")

    def _ann_upto(self) -> int:
        """Ids below this are in the approximate index, which skips them by their tombstones:
        those tombstones stay until the approximate index is rebuilt without them."""
        ann = self._meta.get("ann")
        return json.loads(ann)["upto"] if ann else 0

    def _maybe_build_ann(self) -> None:
        n_live = schema.counts(self._meta)["chunks"]
        ann = AnnInfo(**json.loads(self._meta["ann"])) if "ann" in self._meta else None
        if n_live < self.ann_min_rows:
            if ann is not None:  # shrank: exact search again
                retired = [f"{schema.SEGMENTS}/{ann.file}"]

                def drop_ann() -> None:
                    self.con.execute("DELETE FROM meta WHERE key = 'ann'")
                    repair.record(self.con, retired)

                self._transaction(drop_ann)
                self._meta.pop("ann", None)
                self._drop(retired)
            return
        if ann is not None and n_live - ann.rows < max(min(ANN_MIN_NEW, self.ann_min_rows // 2), ann.rows // 4):
            return
        import faiss

        rows = self._segments()
        dead = self._dead()
        vs = VectorSet(self.info.dim, [open_segment(self.index_dir, r, self.info.dim) for r in rows], dead)
        previous = None
        if ann is not None:
            previous = (faiss.read_index(str(seg_dir(self.index_dir) / ann.file)), ann)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        name = ann_name()
        intents = [f"{schema.SEGMENTS}/{name}"]
        retired = [f"{schema.SEGMENTS}/{ann.file}"] if ann is not None else []
        self._intend(intents)
        _path, info = self._write_recorded(intents, lambda vs=vs: build_ann(self.index_dir, rows, self.info.dim,
                                                                            dead, n_live, previous, vs, name))
        del vs
        value = json.dumps(info.__dict__)

        def work() -> None:
            schema.set_meta(self.con, {"ann": value})
            repair.unrecord(self.con, intents)
            repair.record(self.con, retired)
            if previous is None or info.trained_rows != previous[1].trained_rows:  # built afresh, dead rows left out
                self.con.execute("DELETE FROM tombstones WHERE chunk_id NOT IN (SELECT value FROM json_each(?))",
                                 (json.dumps([int(i) for i in vs_dead_present]),))

        vs_dead_present = _present(rows, dead, self.index_dir)
        self._transaction(work, intents)
        self._meta["ann"] = value
        crash.point("merge:db-committed")
        self._drop(retired)
        crash.point("merge:cleanup-done")


def _present(rows: Sequence[SegmentRow], dead, index_dir: Path) -> list[int]:
    """The tombstoned ids whose vectors are still in a segment."""
    import numpy as np

    out: list[int] = []
    for r in rows:
        ids = np.load(segment_files(index_dir, r.name)[1], mmap_mode="r")
        pos = np.searchsorted(ids, dead)
        inside = pos < len(ids)
        out.extend(dead[inside][np.asarray(ids[pos[inside]]) == dead[inside]].tolist())
    return out


def _same_build(db: Path, wanted: IndexInfo) -> bool:
    try:
        con = schema.connect(db)
        try:
            return schema.read_info(con).same_build(wanted)
        finally:
            con.close()
    except (sqlite3.DatabaseError, KeyError, ValueError):
        return False
