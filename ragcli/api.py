"""``Index``: the Python API, one handle over an index that keeps its models loaded.

    from ragcli import Index
    with Index("./my-index") as idx:
        idx.ingest(["docs/"])
        for hit in idx.search("context window", k=3).hits:
            print(hit.chunk.source, hit.chunk.line_start)
        answer = idx.ask("How long is Llama 2's context window?")
        for c in answer.citations:
            print(c.quote)

The handle holds settings, the embedder (loaded on first use, then reused) and the LLM
(loaded on the first ``ask``), so a script asking many questions loads each once. It is a
thin layer over ``pipeline``: the CLI and the API do the same thing in the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from . import index, pipeline
from .answer import AnswerParams
from .config import DEFAULT_K, DEFAULT_MODE, Settings, resolve_settings
from .models.embedders import Embedder
from .models.generators import Generator
from .scope import parse_scope
from .types import Answer, IngestReport, SearchResult

Filter = str | Sequence[str] | None  # one pattern or type name, or several (any of them)
Since = str | date | None  # an ISO date or date-time, or a date/datetime


class Index:
    """An index at ``location`` (default: ``RAG_INDEX`` or ``$XDG_DATA_HOME/ragcli``).

    ``embedder`` and ``generator`` replace the registry's models (test doubles, or models
    you built yourself); ``models`` is an extra models.toml, ``model`` the LLM's name.
    """

    def __init__(self, location: str | Path | None = None, *, models: str | Path | None = None,
                 model: str | None = None, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings: Settings = resolve_settings(index=location, models=models, model=model)
        self._embedder = embedder
        self._generator = generator

    @classmethod
    def open(cls, location: str | Path | None = None, **kw) -> Index:
        """Like ``Index(location)``, but fails now (``IndexNotFoundError``) if nothing is there."""
        idx = cls(location, **kw)
        idx.status()
        return idx

    @property
    def location(self) -> str | Path:
        return self.settings.index

    @property
    def store(self) -> index.Store:
        """The index's store (``index.open``): opens nothing until asked."""
        return index.open(self.settings.index)

    def ingest(self, paths: Sequence[str | Path] = (), *, rebuild: bool = False, follow: bool = False,
               progress: Callable[[str, int, int], None] | None = None, **kw) -> IngestReport:
        """``rag ingest``: add, update and remove files; no paths: the recorded directories.
        ``follow``: follow symbolic links met in directories (``--follow``); ``report.skipped``
        lists what the walk met and did not read, with the reason."""
        return pipeline.ingest([str(p) for p in paths], self.settings, embedder=self._embedder,
                               rebuild=rebuild, follow=follow, progress=progress, **kw)

    def watch(self, paths: Sequence[str | Path] = (), on_event: Callable[[object], None] = lambda _e: None,
              **kw) -> None:
        """``rag ingest --watch``: ingest ``paths``, then keep the index in line as files change,
        until a KeyboardInterrupt (or ``changes=``, an iterable of sets of changed paths, ends).
        ``on_event`` hears each ``ragcli.watch`` event (``Synced``, ``Watching``, ``Change``)."""
        pipeline.watch([str(p) for p in paths], self.settings, on_event, embedder=self._embedder, **kw)

    def search(self, query: str, *, k: int = DEFAULT_K, mode: str = DEFAULT_MODE, path: Filter = None, type: Filter = None,
               since: Since = None) -> SearchResult:
        """``rag search``: the ``k`` best passages; ``path``, ``type``, ``since`` as ``--path``,
        ``--type``, ``--since`` (``scope``): only those documents, chosen before ranking.
        ``EmptyScopeError`` when they name no indexed document."""
        return pipeline.search(query, self.settings, k=k, mode=mode, embedder=self._query_embedder(),
                               scope=parse_scope(path, type, since) or None)

    def ask(self, question: str, *, k: int | None = None, mode: str | None = None,
            params: AnswerParams = AnswerParams(), on_text: Callable[[str], None] | None = None,
            path: Filter = None, type: Filter = None, since: Since = None) -> Answer:
        """``rag ask``: an answer with verified citations, or ``status == "no_evidence"`` (also
        when ``path``/``type``/``since``, as in ``search``, name no indexed document)."""
        scope = parse_scope(path, type, since)  # checked before any model is loaded
        emb = self._query_embedder()
        if self._generator is None:
            self._generator = pipeline.load_generator(self.settings)
        return pipeline.ask(question, self.settings, k=k, mode=mode, embedder=emb, generator=self._generator,
                            params=params, on_text=on_text, scope=scope or None)

    def status(self) -> dict:
        """``rag status --json``."""
        return pipeline.status(self.settings)

    def documents(self, *patterns: str) -> list:
        """``rag ls``: the documents (``index.DocRow``) that ``patterns`` name (``manage.matches``); none: all."""
        from . import manage

        return manage.documents(self.store, patterns)

    def unindexed(self, *patterns: str) -> list:
        """``rag ls``, the rest: the files the last ingest failed or skipped (``manage.Unindexed``:
        ``path``, ``status``, ``reason``) that ``patterns`` name; none: all."""
        from . import manage

        return manage.unindexed(self.store, patterns)

    def remove(self, *patterns: str):
        """``rag rm``: remove the documents ``patterns`` name, in one atomic batch (``manage.Removal``)."""
        from . import manage

        return manage.remove(self.store, patterns)

    def close(self) -> None:
        """Drop the loaded models."""
        self._generator = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query_embedder(self) -> Embedder:
        if self._embedder is None:
            with pipeline.open_index(self.settings) as st:
                self._embedder = pipeline.embedder_for_index(st, self.settings, None)
        return self._embedder
