"""The store interface: what ragcli needs from an index, whatever holds it.

``Store`` is one index, chosen once from its location (``index.open``): a directory
(``sqlite.SqliteStore``) or a PostgreSQL URL (``postgres.PostgresStore``). It opens readers
and writers, holds the writer lock, and says what is there.

Two protocols. ``IndexReader`` is one consistent snapshot of a built index, used by search,
ask, status and eval. ``IndexWriter`` takes an ingest's batches, each atomic: a reader sees
a batch whole or not at all. Both stores implement both and run the same contract tests
(``tests/test_index_store.py``).

The records passed across the interface are small frozen dataclasses; vectors are numpy
arrays ``(n, dim) float32`` with unit rows. Both stores lay their rows out alike, so the
mapping from rows to records (``DOC_COLUMNS``, ``CHUNK_COLUMNS``, ``chunks_from_rows``) and
the command that rebuilds an index (``rebuild_hint``, ``damaged``, ``stale``) are here, once.
"""

from __future__ import annotations

import contextlib
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import DamagedIndexError, RagError, StaleIndexError
from ..types import Chunk, Document, Origin, Page, Span
from .locations import in_command, password_note, shown

if TYPE_CHECKING:
    import numpy as np

    from ..scope import Scope
    from .scoping import Scoped

FORMAT_VERSION = 2  # 1: vectors in SQLite blobs + one FAISS file rewritten per ingest


@dataclass(frozen=True)
class IndexInfo:
    """What the index remembers about how it was built."""

    embedder: str  # registry name of the embedder
    embedder_id: str  # identifies its weights, for mismatch checks
    dim: int
    chunking: dict  # ChunkParams.as_dict()
    format_version: int = FORMAT_VERSION
    generation: int = 0  # committed batches so far (0: never built)
    last_ingest: float = 0.0  # unix time of the last commit
    embedder_backend: str = ""  # what computed the vectors, e.g. "onnxruntime-int8"; "" = not recorded

    def same_build(self, other: IndexInfo) -> bool:
        """Same embedder, dimension and chunking: vectors and chunks are interchangeable."""
        return (self.embedder, self.embedder_id, self.dim, self.chunking) == (
            other.embedder, other.embedder_id, other.dim, other.chunking)


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

    @property
    def origin(self) -> Origin:
        """What a hit on one of its chunks carries of it."""
        return Origin(self.path, self.sha256, self.kind, self.encoding, self.size)


@dataclass(frozen=True)
class NewDocument:
    """One document to add: its chunks and their vectors, (n_chunks, dim) float32, L2-normalised."""

    doc: Document
    root: str
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray


@dataclass(frozen=True)
class Run:
    """One ``rag ingest`` as the index recorded it."""

    id: int
    started: float
    finished: float | None  # None: interrupted (or still running)
    pid: int
    paths: tuple[str, ...]
    rebuild: bool
    batches: int  # batches it committed


class IndexReader(Protocol):
    """One consistent snapshot of a built index."""

    info: IndexInfo
    location: str  # what the user named: a directory (or, for a server store, a URL)
    open_s: float  # seconds opening the snapshot took (``ask`` and ``search`` report it)

    def counts(self) -> dict[str, int]: ...  # documents, chunks, spans, pages
    def chunks_per_document(self) -> dict[str, int]: ...  # chunks per document path (``rag ls``)

    def documents(self) -> list[DocRow]: ...

    def roots(self) -> list[str]: ...

    def chunks(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, DocRow]]: ...

    # (chunk id, cosine), best first; ``within``: only the chunks of a resolved scope, before ranking
    def dense(self, query_vector: np.ndarray, k: int, *, within: Scoped | None = None) -> list[tuple[int, float]]: ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray: ...  # (len(ids), dim), stored vectors

    # (chunk id, BM25), best first; ``within`` as for ``dense``
    def lexical(self, query: str, k: int, within: Scoped | None = None) -> list[tuple[int, float]]: ...

    def scoped(self, scope: Scope) -> Scoped: ...  # the documents (and chunks) a scope allows

    # (path, page) -> (page, its text's sha256, the document's sha256): the page copies the store
    # keeps for ``verify`` when a file is not here; {} from a store that keeps none (SQLite)
    def pages(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[Page, str, str]]: ...

    def describe(self) -> Mapping[str, object]: ...  # storage facts for `rag status`

    def check(self) -> None: ...  # quick consistency checks; raises the ``damaged`` error

    def damaged(self, what: str) -> Exception: ...  # the error to raise, with the rebuild command

    def close(self) -> None: ...


class IndexWriter(Protocol):
    """Takes one ingest run: batches, each atomic, then ``finish``."""

    info: IndexInfo
    messages: list[str]  # what happened on open (an upgrade, a discarded rebuild), for the report

    def document(self, path: str) -> DocRow | None: ...

    def documents_with_prefix(self, prefix: str) -> Iterator[DocRow]: ...  # streamed, by path

    def roots(self) -> list[str]: ...  # directories (or files) the documents were ingested from

    def interrupted_run(self) -> Run | None: ...  # the last run, if it never finished

    def begin_run(self, paths: Sequence[str], rebuild: bool) -> None: ...

    def commit_batch(self, remove_doc_ids: Sequence[int], add: Sequence[NewDocument]) -> None: ...

    def finish(self) -> None: ...  # mark the run finished, merge, (rebuild) switch over, clean up

    def close(self) -> None: ...


class Store(ABC):
    """One index, where it lives; opening a ``Store`` touches nothing, each method opens what
    it needs. The one place the index's kind decides anything is ``index.open``."""

    location: str | Path  # what the user named: a directory, or a server URL

    @property
    def shown(self) -> str:
        """The location as ragcli prints it (a URL's secrets hidden: ``locations.shown``)."""
        return shown(self.location)

    @property
    def directory(self) -> Path | None:
        """The folder on this machine that holds the index (never ingested or watched); None for a server."""
        return None

    @abstractmethod
    def reader(self) -> IndexReader:
        """The last committed state of the index."""

    @abstractmethod
    def writer(self, wanted: IndexInfo, *, rebuild: bool = False) -> IndexWriter:
        """A writer for one ingest run; the caller holds ``lock()``."""

    @abstractmethod
    def lock(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """The index's one-writer lock. ``on_wait`` hears that another ingest holds it (and, for a
        directory, that an index an earlier ragcli wrote was adopted)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether anything (even an unfinished first ingest) was written there."""

    @abstractmethod
    def recorded_roots(self) -> list[str]:
        """The directories the index records, even when the rest is damaged ([] if unreadable)."""

    def set_aside_if_damaged(self, on_message: Callable[[str], None] | None = None) -> None:
        """Before a rebuild: move a damaged database aside (a server keeps its own: nothing to do)."""
        return None

    def built_with(self) -> IndexInfo | None:
        """How the index was built; None when there is none yet or it cannot be read."""
        if not self.exists():
            return None
        try:
            with contextlib.closing(self.reader()) as st:
                return st.info
        except RagError:
            return None

    @staticmethod
    @abstractmethod
    def summary(described: Mapping[str, object]) -> str:
        """``rag status``'s line about the vectors, from a reader's ``describe()``."""


def rebuild_hint(location: str | Path, roots: Sequence[str] = ()) -> str:
    """The command that rebuilds the index at ``location`` (a URL's secrets left out: ``locations``).

    >>> rebuild_hint("/tmp/my idx", ["/docs"])
    "rag ingest --rebuild --index '/tmp/my idx' /docs"
    """
    paths = " ".join(shlex.quote(r) for r in roots) if roots else "PATH..."
    return f"rag ingest --rebuild --index {in_command(location)} {paths}{password_note(location)}"


def damaged(location: str | Path, what: object, roots: Sequence[str] = ()) -> DamagedIndexError:
    """The error for an index that cannot be read as it is, with the command that rebuilds it.

    >>> str(damaged("/tmp/idx", "segment s1 is truncated", ["/docs"]))
    'the index at /tmp/idx is damaged: segment s1 is truncated. Rebuild it: rag ingest --rebuild --index /tmp/idx /docs'
    """
    return DamagedIndexError(f"the index at {shown(location)} is damaged: {what}. {_rebuild_it(location, roots)}")


def stale(location: str | Path, why: str, roots: Sequence[str] = ()) -> StaleIndexError:
    """The error for an index built differently from what this run needs (``why``: "was chunked with ...")."""
    return StaleIndexError(f"the index at {shown(location)} {why}. {_rebuild_it(location, roots)}")


def _rebuild_it(location: str | Path, roots: Sequence[str]) -> str:
    return f"Rebuild it: {rebuild_hint(location, roots)}"  # the one place this sentence is written


# the columns both stores read a document and a chunk by (documents ``d``, chunks ``c``)
DOC_COLUMNS = "d.id, d.path, d.root, d.sha256, d.kind, d.encoding, d.size, d.mtime, d.n_pages, d.ingested_at"
CHUNK_COLUMNS = ('c.id, c.key, c.page, c.start, c."end", c.line_start, c.line_end, c.text, c.heading, '
                 f"c.embed, c.n_tokens, {DOC_COLUMNS}")
SPAN_COLUMNS = 'chunk_id, page, start, "end", line_start, line_end, text'  # ordered by chunk_id, start


def chunks_from_rows(rows: Iterable[Sequence], spans: Iterable[Sequence]) -> dict[int, tuple[Chunk, DocRow]]:
    """Chunks with their spans and documents, by chunk id, from ``CHUNK_COLUMNS`` and ``SPAN_COLUMNS`` rows."""
    by_chunk: dict[int, list[Span]] = {}
    for cid, page, a, b, la, lb, text in spans:
        by_chunk.setdefault(cid, []).append(Span(page, a, b, la, lb, text))
    out: dict[int, tuple[Chunk, DocRow]] = {}
    for r in rows:
        doc = DocRow(*r[11:])
        out[r[0]] = (Chunk(key=r[1], source=doc.path, sha256=doc.sha256, page=r[2], start=r[3], end=r[4],
                           line_start=r[5], line_end=r[6], text=r[7], spans=tuple(by_chunk.get(r[0], ())),
                           heading=r[8], embed=r[9], n_tokens=r[10]), doc)
    return out
