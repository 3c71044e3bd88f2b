"""The three things ragcli does, as plain functions: ``ingest``, ``search``, ``ask``;
plus ``status`` and ``list_models`` for the rest of the CLI. Models come from ``models``
(``models_for`` turns the settings into its ``Models``); nothing here knows a backend.

Each takes a ``Settings`` and optional collaborators (embedder, generator, progress
callbacks) so tests can pass doubles through the front door. Nothing here prints; callers
get frozen results back and ``cli`` decides how to show them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import index, language
from .config import DEFAULT_K, DEFAULT_MODE, Settings
from .errors import EmptyScopeError, RagError, StaleIndexError, UsageError
from .types import Answer, IngestReport, SearchResult

if TYPE_CHECKING:  # imported where used: `rag status` needs none of them, `rag search` few
    from .answer import AnswerParams
    from .chunking import ChunkParams
    from .evaluate import Gold, Scored
    from .ingest import Tally
    from .models.embedders import Embedder
    from .models.generators import Generator
    from .models.loading import Models
    from .scope import Scope

Progress = Callable[[str, int, int], None]  # (phase, done, total)
MAX_QUESTION_CHARS = 4000


# -- models -------------------------------------------------------------------------------


def models_for(settings: Settings) -> Models:
    """The models the settings' models.toml files name, built from their cache (``models``)."""
    from .models.loading import Models

    return Models.load(settings.models_files, settings.cache_dir, settings.n_threads)


def load_embedder(settings: Settings, name: str | None = None, models: Models | None = None) -> Embedder:
    """The embedder called ``name`` (default: the settings' choice, else the registry's)."""
    return (models or models_for(settings)).embedder(name or settings.embedder)


def load_generator(settings: Settings, models: Models | None = None) -> Generator:
    """The LLM the settings choose (else the registry's default)."""
    return (models or models_for(settings)).generator(settings.model)


def list_models(settings: Settings) -> list[dict]:
    return models_for(settings).listing()


def fetch_models(settings: Settings) -> list[tuple[str, Path]]:
    """``rag models --fetch``: the chosen (or default) LLM and the default embedder, ready offline
    (``models.loading.Models.fetch``)."""
    return models_for(settings).fetch(settings.model, settings.embedder)


# -- ingest -------------------------------------------------------------------------------


def ingest(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    params: ChunkParams | None = None,
    excludes: Sequence[str] = (),
    include_hidden: bool = False,
    follow: bool = False,
    rebuild: bool = False,
    max_file_size: int | None = None,
    max_text_size: int | None = None,
    file_timeout: float | None = None,
    max_parse_memory: int | None = None,
    wait: bool = True,
    progress: Progress | None = None,
    on_message: Callable[[str], None] | None = None,
    batch_chunks: int | None = None,
    workers: int | None = None,
    ray: str | None = None,
    tally: Callable[[Tally], None] | None = None,
    retry_failed: bool = False,
    only: Sequence[str] | None = None,
) -> IngestReport:
    """Bring the index in line with ``paths``: add new files, re-chunk changed ones, drop
    files deleted from ingested directories; streaming, in atomic batches (``ingest``).
    ``ray``: read, chunk and embed on the Ray cluster at this address ("local": one started
    for the run; ``ingest_ray``), with ``workers`` actors; else locally, ``workers`` processes
    (at most this machine's CPUs).
    ``follow``: follow symbolic links met in directories (links named in ``paths`` always are).

    What one file may cost, past which it fails alone (None: the default, ``parsing.ReadLimits``):
    ``max_file_size`` bytes on disk, ``max_text_size`` characters of text, ``file_timeout``
    seconds to read, ``max_parse_memory`` bytes of memory in its worker process.
    A file that failed before and has not changed is reported as failing without being read
    (``known_failures``), unless ``retry_failed``. ``only``: just the paths that changed (``watch``)."""
    from .ingest import BATCH_CHUNKS
    from .ingest_local import check_workers
    from .known_failures import store_for
    from .parsing import ReadLimits

    store = index.open(settings.index)
    defaults = ReadLimits()
    limits = ReadLimits(
        max_file_size=max(1, int(_positive("max_file_size", max_file_size, defaults.max_file_size, "bytes"))),
        max_text=max(1, int(_positive("max_text_size", max_text_size, defaults.max_text, "characters"))),
        file_timeout=_positive("file_timeout", file_timeout, defaults.file_timeout, "seconds"),
        max_memory=max(1, int(_positive("max_parse_memory", max_parse_memory, defaults.max_memory, "bytes"))))
    run_files = None
    if ray is not None:
        from .ingest_ray import executor

        run_files = executor(ray, workers)  # fails now if Ray is missing or the address is not one
    else:
        check_workers(workers)
    def loader() -> Embedder:  # called under the writer lock
        if embedder is not None:
            return embedder
        return _embedder_for_ingest(settings, store, rebuild, [str(p) for p in paths], on_message,
                                    (tuple(excludes), include_hidden, follow))

    from .ingest import ingest as run_ingest  # (``from . import ingest`` would find ragcli's own ``ingest``)

    return run_ingest(
        paths, store, loader, params=params, excludes=excludes, include_hidden=include_hidden,
        follow=follow, rebuild=rebuild, limits=limits, wait=wait, progress=progress,
        on_message=on_message, batch_chunks=batch_chunks or BATCH_CHUNKS, workers=workers, executor=run_files,
        tally=tally, failures_file=store_for(store.shown), retry_failed=retry_failed, only=only)


def watch(paths: Sequence[str | Path], settings: Settings, on_event: Callable[[object], None], *,
          excludes: Sequence[str] = (), include_hidden: bool = False, rebuild: bool = False,
          embedder: Embedder | None = None, changes: Iterable[set[str]] | None = None, **options: object) -> None:
    """``rag ingest --watch``: ingest ``paths`` (none: the index's recorded ones), then keep
    the index in line as their files change (``watch``), until Ctrl-C. ``on_event`` hears
    each ``watch.Event``; ``options`` are ``ingest``'s. The embedder is loaded once."""
    import os

    from . import watch as watching

    store = index.open(settings.index)
    if options.get("ray") is not None:
        raise UsageError("--watch reads files on this machine; leave out --ray")
    roots = [os.path.abspath(os.path.expanduser(str(p))) for p in paths] or _recorded_roots(store)
    emb = embedder if embedder is not None else _embedder_for_ingest(settings, store, rebuild)

    def sync(only: Sequence[str] | None) -> IngestReport:
        return ingest(roots, settings, embedder=emb, excludes=excludes, include_hidden=include_hidden,
                      rebuild=rebuild and only is None, only=only, **options)  # type: ignore[arg-type]

    never = watching.never_watched(store.directory)
    if changes is None:
        changes = watching.file_events(roots, lambda p: watching.relevant(p, roots, excludes, include_hidden, never))
    watching.watch(roots, sync, on_event, changes)


def _recorded_roots(store: index.Store) -> list[str]:
    """The files and folders an index was built from; none: a usage error."""
    roots = set(store.recorded_roots())
    if store.exists():
        try:
            with store.reader() as st:
                roots |= set(st.roots())
        except RagError:
            pass
    if not roots:
        raise UsageError("the index is empty; give the files or directories to watch")
    return sorted(roots)


def _positive(name: str, value: float | None, default: float, unit: str) -> float:
    """``value`` if it is a finite number above 0, ``default`` if None; else a usage error."""
    import math

    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name} must be a number of {unit} above 0, not {value!r}")
    return value


def _embedder_for_ingest(settings: Settings, store: index.Store, rebuild: bool, paths: Sequence[str] = (),
                         on_message: Callable[[str], None] | None = None, walk: tuple = ((), False, False)) -> Embedder:
    """An existing index keeps its embedder unless asked otherwise (then it must be rebuilt); a
    new one (or a rebuild) not told which gets one for the language of a sample of ``paths``."""
    name = settings.embedder
    built = store.built_with() if name is None and not rebuild else None  # (a server: one connection)
    if built is not None:
        return load_embedder(settings, built.embedder)
    models = models_for(settings)
    if name is None and paths and models.registry.default_embedder != language.MULTILINGUAL:
        name = _embedder_by_language(settings, models, paths, on_message or (lambda _m: None), walk)
    return load_embedder(settings, name, models)


def _embedder_by_language(settings: Settings, models: Models, paths: Sequence[str], say: Callable[[str], None],
                          walk: tuple) -> str | None:
    """The multilingual embedder for a folder mostly not in English where it can run; else None
    (the default), with a note saying how to get it when the folder needed it."""
    import shlex

    from .loaders import sample_texts

    texts = sample_texts(paths, language.SAMPLE_FILES, language.SAMPLE_CHARS, *walk)
    share = language.english_share(texts)
    if share >= 0.5:
        return None
    why = _unavailable(settings, models, language.MULTILINGUAL)
    choice = language.choose(share, why, " ".join(shlex.quote(p) for p in paths))
    say(choice.note)
    return choice.embedder


def _unavailable(settings: Settings, models: Models, name: str) -> str:
    """"" when the embedder ``name`` loads here, else why not (the message of the error)."""
    try:
        load_embedder(settings, name, models)
    except RagError as e:
        return str(e)
    return ""


# -- search and ask -----------------------------------------------------------------------


def open_index(settings: Settings) -> index.IndexReader:
    return index.open(settings.index).reader()


def embedder_for_index(st: index.IndexReader, settings: Settings, embedder: Embedder | None) -> Embedder:
    """The index's own embedder; a different one (flag or env) is refused."""
    if embedder is None:
        if settings.embedder and settings.embedder != st.info.embedder:
            raise StaleIndexError(
                f"the index at {st.location} was built with embedder '{st.info.embedder}', not "
                f"'{settings.embedder}'. To use '{settings.embedder}', rebuild it: "
                f"RAG_EMBEDDER={settings.embedder} {index.rebuild_hint(st.location, st.roots())}")
        embedder = load_embedder(settings, st.info.embedder)
    if (embedder.name, embedder.id, embedder.dim) != (st.info.embedder, st.info.embedder_id, st.info.dim):
        raise index.stale(st.location, f"was built with embedder '{st.info.embedder}' ({st.info.embedder_id}), "
                                       f"but '{embedder.name}' ({embedder.id}) is loaded", st.roots())
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


def _search(st: index.IndexReader, emb: Embedder, query: str, k: int, mode: str, scope: Scope | None = None):
    """(SearchResult, query vector): the part of search that ask shares. A ``scope`` is
    resolved in the store first; the store then ranks only its documents' chunks."""
    timings: dict[str, float] = {"index_load_s": st.open_s}
    t0 = time.perf_counter()
    qv = emb.embed_query([query])[0]
    timings["embedder_load_s"] = emb.load_s
    timings["embed_query_s"] = time.perf_counter() - t0 - timings["embedder_load_s"]
    t0 = time.perf_counter()
    from .retrieval import search as retrieve

    within = st.scoped(scope) if scope else None
    if within is not None and within.empty:
        why = scope.nothing_matches(within.n_documents, within.near)
        return SearchResult(query, (), mode, emb.name, timings, scope, why), qv
    hits = retrieve(st, emb, query, k, mode, query_vector=qv, within=within)
    timings["retrieve_s"] = time.perf_counter() - t0
    return SearchResult(query, tuple(hits), mode, emb.name, timings, scope or None), qv


def search(query: str, settings: Settings, *, k: int | None = None, mode: str | None = None,
           embedder: Embedder | None = None, scope: Scope | None = None) -> SearchResult:
    """Retrieval only: the best chunks for ``query``; ``scope``: only from the documents it
    names (``EmptyScopeError``, exit 4, when it names none)."""
    query = check_question(query)
    with open_index(settings) as st:
        emb = embedder_for_index(st, settings, embedder)
        res = _search(st, emb, query, k or DEFAULT_K, mode or DEFAULT_MODE, scope)[0]
    if res.empty_scope:
        raise EmptyScopeError(res.empty_scope)
    return res


def ask(question: str, settings: Settings, *, k: int | None = None, mode: str | None = None,
        embedder: Embedder | None = None, generator: Generator | None = None,
        params: AnswerParams | None = None, on_text: Callable[[str], None] | None = None,
        on_status: Callable[[str], None] | None = None, scope: Scope | None = None) -> Answer:
    """Retrieve, let the model pick evidence under a grammar, verify quotes, answer.
    ``on_status`` hears what the wait is for (``answer.answer_question``); ``scope``: only
    from the documents it names (``no_evidence``, saying so, when it names none)."""
    import dataclasses

    from .answer import AnswerParams, answer_question, no_evidence
    from .verify import Verifier, recorded_sizes, stored_pages

    params = params or AnswerParams()
    t_all = time.perf_counter()
    question = check_question(question)
    with open_index(settings) as st:
        emb = embedder_for_index(st, settings, embedder)
        res, qv = _search(st, emb, question, k or params.k, mode or DEFAULT_MODE, scope)
        verifier = Verifier(stored_pages(st, [(h.chunk.source, h.chunk.page) for h in res.hits]),
                            recorded_sizes(res.hits))
    if generator is not None:
        model_name, gen = generator.name, lambda: generator
    else:
        models = models_for(settings)
        model_name = models.registry.get(settings.model, "llm").name
        gen = lambda: models.generator(settings.model)  # noqa: E731  (loaded only if needed)
    if res.empty_scope:
        answer = no_evidence(question, model_name, emb.name, res.timings, res.empty_scope)
    else:
        answer = answer_question(question, res.hits, qv, emb, gen, params, res.timings, on_text, model_name,
                                 verifier, on_status=on_status)
    if scope:
        answer = dataclasses.replace(answer, filters=scope.to_json())
    answer.timings["total_s"] = time.perf_counter() - t_all
    return answer


def evaluate(golds: Sequence[Gold], settings: Settings, *, k: int | None = None, mode: str | None = None,
             embedder: Embedder | None = None, generator: Generator | None = None,
             on_result: Callable[[Scored], None] | None = None) -> tuple[list[Scored], dict]:
    from .evaluate import score, summarize

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
    with open_index(settings) as st:  # opening checks the vector segments against the database
        st.check()
        info = st.info
        return {
            "index": st.location,
            **st.counts(),
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
            "vectors": dict(st.describe()),
        }
