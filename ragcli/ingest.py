"""``rag ingest``: bring an index in line with files on disk, streaming, in atomic batches.

The plan comes first and holds only paths: walk the inputs, hash each file, and sort it
into unchanged (same sha256 as indexed), new, changed, or gone (indexed under an ingested
directory, no longer there). Then the files to read stream through three stages that
overlap: worker processes read and chunk them (``_parse``; pypdf is slow and
single-threaded), the main process embeds, and every ``batch_chunks`` chunks (or
``batch_seconds``) a batch commits atomically (``index.IndexWriter.commit_batch``). Memory
holds one batch and a few parsed files ahead of it, whatever the corpus size.

Interrupted (Ctrl-C, kill, a laptop going to sleep for good), an ingest keeps every batch
it committed; running it again skips those files as unchanged and reports them as resumed.
A changed file's old version leaves in the batch that brings the new one, so a search
finds one version or the other, never neither, never both.

This module decides what to do; the index package decides how it is stored.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import index, loaders
from .chunking import ChunkParams, chunk_document
from .embedders import Embedder, embed_batched
from .errors import SourceError, StaleIndexError, UsageError
from .types import Chunk, Document

Progress = Callable[[str, int, int], None]  # (phase, done, total)

BATCH_CHUNKS = 1000  # chunks per atomic batch: a kill loses at most this much embedding work
BATCH_SECONDS = 60.0  # ... or this much time, whichever comes first
PARALLEL_MIN_FILES = 8  # fewer files to read than this (and little data): read them in-process
PARALLEL_MIN_BYTES = 4 << 20


@dataclass(frozen=True)
class IngestReport:
    index: str
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (path, reason)
    chunks: int  # chunks embedded in this run
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    resumed: tuple[str, ...] = ()  # unchanged files an interrupted earlier run had committed
    batches: int = 0  # batches committed by this run
    notes: tuple[str, ...] = ()  # what else happened (upgrade, rebuild carried on, ...)

    @property
    def exit_code(self) -> int:
        return 3 if self.failed else 0

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "added": list(self.added),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "removed": list(self.removed),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "resumed": list(self.resumed),
            "chunks": self.chunks,
            "batches": self.batches,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def index_info(embedder: Embedder, params: ChunkParams) -> index.IndexInfo:
    return index.IndexInfo(embedder.name, embedder.id, embedder.dim, params.as_dict(),
                           embedder_backend=getattr(embedder, "backend", ""))


@dataclass(frozen=True)
class _Todo:
    path: str
    root: str
    replaces: int | None  # doc id of the indexed version, if the file changed


@dataclass(frozen=True)
class _Parsed:
    """One file read and chunked: its documents (an .eml: the mail and its attachments)."""

    todo: _Todo
    docs: tuple[tuple[Document, tuple[Chunk, ...]], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (path, reason): the file, or one attachment

    @property
    def n_chunks(self) -> int:
        return sum(len(cs) for _, cs in self.docs)


# -- parsing, in worker processes -------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(embedder: Embedder, params: ChunkParams, max_file_size: int, in_process: bool = False) -> None:
    if not in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _WORKER.update(count=embedder.count_tokens, params=params, max_file_size=max_file_size)


def _parse(todo: _Todo) -> _Parsed:
    """Read and chunk one file (in a worker process, or in-process for small ingests)."""
    path = Path(todo.path)
    try:
        data = loaders.read_bytes(path, _WORKER["max_file_size"])
        docs, errors = loaders.load_all(path, data)
    except SourceError as e:
        return _Parsed(todo, failed=((e.path, e.reason),))
    out, failed = [], [(e.path, e.reason) for e in errors]
    for doc in docs:
        chunks = chunk_document(doc, _WORKER["count"], _WORKER["params"])
        if chunks:
            out.append((doc, tuple(chunks)))
        else:
            failed.append((doc.path, "no text to index after cleaning"))
    return _Parsed(todo, tuple(out), tuple(failed))


def _parsed_stream(todos: Sequence[_Todo], embedder: Embedder, params: ChunkParams, max_file_size: int,
                   workers: int) -> Iterator[_Parsed]:
    """Parsed files in plan order; with ``workers`` > 0, parsed ahead by a process pool with a
    bounded window (memory stays flat when parsing outruns embedding)."""
    if workers <= 0:
        _init_worker(embedder, params, max_file_size, in_process=True)
        for t in todos:
            yield _parse(t)
        return
    ctx = multiprocessing.get_context("spawn")  # no inherited lock or model; safe after threads
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(embedder, params, max_file_size))
    try:
        window: deque = deque()
        it = iter(todos)
        for t in it:
            window.append(pool.apply_async(_parse, (t,)))
            if len(window) >= 2 * workers + 2:
                break
        while window:
            res = window.popleft().get()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.apply_async(_parse, (nxt,)))
            yield res
        pool.close()
        pool.join()
    finally:
        pool.terminate()


def default_workers(n_files: int, n_bytes: int) -> int:
    """Worker processes for reading: none for small ingests, else all cores but the embedder's one."""
    if n_files < PARALLEL_MIN_FILES and n_bytes < PARALLEL_MIN_BYTES:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1, n_files))


# -- the ingest -------------------------------------------------------------------------------


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def ingest(
    paths: Sequence[str | Path],
    location: Path,
    embedder: Embedder | Callable[[], Embedder],
    *,
    params: ChunkParams = ChunkParams(),
    excludes: Sequence[str] = (),
    include_hidden: bool = False,
    rebuild: bool = False,
    max_file_size: int = loaders.DEFAULT_MAX_FILE_SIZE,
    wait: bool = True,
    progress: Progress | None = None,
    on_message: Callable[[str], None] | None = None,
    batch_chunks: int = BATCH_CHUNKS,
    batch_seconds: float = BATCH_SECONDS,
    workers: int | None = None,
) -> IngestReport:
    """Bring the index at ``location`` in line with ``paths`` (no paths: the directories it
    recorded). ``embedder`` may be a function that loads it, called under the writer lock."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    say = on_message or (lambda _m: None)
    with index.writer_lock(location, wait=wait, on_wait=on_message):
        recorded = index.recorded_roots(location)
        if rebuild:
            index.set_aside_if_damaged(location, on_message)
        emb = embedder() if callable(embedder) and not hasattr(embedder, "embed") else embedder
        wanted = index_info(emb, params)
        w = index.open_writer(location, wanted, rebuild=rebuild)
        try:
            notes = list(getattr(w, "messages", []))
            for m in notes:
                say(m)
            existing = w.documents()
            if not paths:
                paths = sorted({r.root for r in existing.values()} | set(recorded))
                if not paths:
                    raise UsageError("the index is empty; give the files or directories to ingest")
            if not rebuild:
                _check_compatible(w.info, wanted, location, existing)
            interrupted = w.interrupted_run()
            w.begin_run([str(p) for p in paths], rebuild)

            # 1. the plan: paths only
            t0 = time.perf_counter()
            found, walk_errors = loaders.walk(paths, excludes, include_hidden)
            failed = [(e.path, e.reason) for e in walk_errors]
            unchanged, resumed, todos = [], [], []
            n_bytes = 0
            for n, f in enumerate(found, start=1):
                if progress:
                    progress("reading", n, len(found))
                path = str(f.path)
                try:
                    data = loaders.read_bytes(f.path, max_file_size)
                except SourceError as e:
                    failed.append((e.path, e.reason))
                    continue
                row = existing.get(path)
                if row and row.sha256 == loaders.file_sha256(data):
                    unchanged.append(path)
                    if interrupted and row.ingested_at >= interrupted.started:
                        resumed.append(path)
                    continue
                n_bytes += len(data)
                todos.append(_Todo(path, str(f.root), row.id if row else None))
            seen = {str(f.path) for f in found} | {p for p, _ in failed}
            dir_roots = [str(Path(p).expanduser().absolute()) for p in paths if Path(p).is_dir()]
            gone = {path: row.id for path, row in existing.items()  # an attachment goes with its mail
                    if loaders.container_of(path) not in seen
                    and (rebuild or any(_under(path, r) for r in dir_roots))}
            timings["read_s"] = time.perf_counter() - t0
            if resumed:
                say(f"resuming an interrupted ingest: {len(resumed)} files it committed are kept")

            # 2. stream: parse (workers) -> embed -> commit in batches
            n_workers = default_workers(len(todos), n_bytes) if workers is None else workers
            added, updated = [], []
            batch: list[_Parsed] = []
            state = {"chunks": 0, "batches": 0, "embed_s": 0.0, "commit_s": 0.0, "wait_s": 0.0,
                     "load_s": 0.0, "last": time.perf_counter(), "removals": list(gone.values())}

            def flush() -> None:
                add_chunks = [c for p in batch for _, cs in p.docs for c in cs]
                t1 = time.perf_counter()
                load_before = getattr(emb, "load_s", 0.0)
                vecs = embed_batched(emb, [c.embed for c in add_chunks])
                state["load_s"] += getattr(emb, "load_s", 0.0) - load_before
                state["embed_s"] += time.perf_counter() - t1 - (getattr(emb, "load_s", 0.0) - load_before)
                t1 = time.perf_counter()
                add, pos, removals = [], 0, list(state["removals"])
                for p in batch:
                    for doc, chunks in p.docs:
                        add.append(index.NewDocument(doc, p.todo.root, chunks, vecs[pos : pos + len(chunks)]))
                        pos += len(chunks)
                    if p.todo.replaces is not None:  # the file's old version and its old attachments
                        removals += [row.id for path, row in existing.items()
                                     if loaders.container_of(path) == p.todo.path]
                w.commit_batch(removals, add)
                state["commit_s"] += time.perf_counter() - t1
                for p in batch:
                    for doc, _ in p.docs:
                        (updated if doc.path in existing and not rebuild else added).append(doc.path)
                state["chunks"] += len(add_chunks)
                state["batches"] += 1
                state["removals"] = []
                state["last"] = time.perf_counter()
                batch.clear()

            pending = 0
            t_wait = time.perf_counter()
            for n, parsed in enumerate(_parsed_stream(todos, emb, params, max_file_size, n_workers), start=1):
                state["wait_s"] += time.perf_counter() - t_wait
                if progress:
                    progress("ingesting", n, len(todos))
                failed.extend(parsed.failed)
                if parsed.docs:
                    batch.append(parsed)
                    pending += parsed.n_chunks
                    if pending >= batch_chunks or time.perf_counter() - state["last"] >= batch_seconds:
                        flush()
                        pending = 0
                t_wait = time.perf_counter()
            if batch or state["removals"]:
                flush()
            t0 = time.perf_counter()
            w.finish()
            timings.update(parse_wait_s=state["wait_s"], embedder_load_s=state["load_s"],
                           embed_s=state["embed_s"], commit_s=state["commit_s"],
                           finish_s=time.perf_counter() - t0)
            timings["workers"] = float(n_workers)
        finally:
            w.close()
    if rebuild:  # everything in the new index is new to it
        added, updated = sorted(added + updated), []
    return IngestReport(index.shown(str(location)), tuple(added), tuple(updated), tuple(unchanged), tuple(sorted(gone)),
                        tuple(failed), state["chunks"], time.perf_counter() - t_start, timings,
                        tuple(resumed), state["batches"], tuple(notes))


def _check_compatible(info: index.IndexInfo, wanted: index.IndexInfo, location: Path, existing: dict) -> None:
    roots = sorted({r.root for r in existing.values()})
    hint = index.rebuild_hint(location, roots)
    if (info.embedder, info.embedder_id, info.dim) != (wanted.embedder, wanted.embedder_id, wanted.dim):
        raise StaleIndexError(f"the index at {location} was built with embedder '{info.embedder}' "
                              f"({info.embedder_id}), not '{wanted.embedder}' ({wanted.embedder_id}). "
                              f"Rebuild it with the new embedder: {hint}")
    if info.chunking != wanted.chunking:
        raise StaleIndexError(f"the index at {location} was chunked with {info.chunking}, this run uses "
                              f"{wanted.chunking}. Rebuild it: {hint}")
