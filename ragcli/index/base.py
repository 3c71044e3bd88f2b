"""The store interface: what ragcli needs from an index, whatever holds it.

Two protocols. ``IndexReader`` is one consistent snapshot of a built index, used by search,
ask, status and eval. ``IndexWriter`` takes an ingest's batches, each atomic: a reader
sees a batch whole or not at all. ``sqlite_faiss`` (SQLite + memory-mapped vector
segments, the default) implements both; a server store (PostgreSQL) can implement the same
two and run the same tests (``tests/test_index_store.py``).

The records passed across the interface are small frozen dataclasses; vectors are numpy
arrays ``(n, dim) float32`` with unit rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..types import Chunk, Document, Page

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

    def counts(self) -> dict[str, int]: ...  # documents, chunks, spans, pages

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

    def document(self, path: str) -> DocRow | None: ...

    def documents_with_prefix(self, prefix: str) -> Iterator[DocRow]: ...  # streamed, by path

    def roots(self) -> list[str]: ...  # directories (or files) the documents were ingested from

    def interrupted_run(self) -> Run | None: ...  # the last run, if it never finished

    def begin_run(self, paths: Sequence[str], rebuild: bool) -> None: ...

    def commit_batch(self, remove_doc_ids: Sequence[int], add: Sequence[NewDocument]) -> None: ...

    def finish(self) -> None: ...  # mark the run finished, merge, (rebuild) switch over, clean up

    def close(self) -> None: ...
