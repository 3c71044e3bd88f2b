"""One file in, its chunks out: what an ingest executor does to each file, and the records it passes.

The plan (``ingest``) makes a ``Todo`` per file to read; an executor (``ingest_local``'s worker
processes, ``ingest_ray``'s actors) turns it into a ``Parsed`` with ``parse_file``, within the
run's ``ReadLimits``. This module imports neither the loop nor the executors, so both sides
depend on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import loaders, parse_workers
from .chunking import ChunkParams, chunk_document
from .errors import SourceError, brief
from .loaders import limits as text_limits
from .loaders.limits import DEFAULT_MAX_TEXT
from .types import Chunk, Document

if TYPE_CHECKING:
    import numpy as np

    from .models.embedders import Embedder

DEFAULT_FILE_TIMEOUT = 300.0  # s: 14x the slowest FinanceBench 10-K here (22 s, 252 pages, 2 busy cores)
DEFAULT_PARSE_MEMORY = 2_000_000_000  # bytes a worker may allocate: 10x the peak of any FinanceBench 10-K


@dataclass(frozen=True)
class Todo:
    """A file the plan says to read: new, or changed since it was indexed."""

    path: str
    root: str
    replaces: int | None  # doc id of the indexed version, if the file changed
    size: int = 0  # bytes, as the plan read them
    real: str = ""  # where a followed symbolic link led, resolved by the walk ("": no link on its way)
    sha256: str = ""  # of its bytes, as the plan read them

    def read(self, max_file_size: int) -> bytes:
        """The file's bytes, read as the walk found it: a link appearing since is not followed,
        a FIFO or device is not read (``loaders.read_bytes``). Raises ``SourceError``."""
        return loaders.read_bytes(Path(self.path), max_file_size, root=Path(self.root),
                                  real=Path(self.real) if self.real else None)


@dataclass(frozen=True)
class Parsed:
    """One file read and chunked: its documents (an .eml: the mail and its attachments)."""

    todo: Todo
    docs: tuple[tuple[Document, tuple[Chunk, ...]], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (path, reason): the file, or one attachment
    known: frozenset[str] = frozenset()  # of its documents' paths, those the index held before
    vectors: np.ndarray | None = None  # (n_chunks, dim) float32 in docs' order, if already embedded
    embed_s: float = 0.0  # seconds spent embedding it where it was embedded (a Ray worker)
    load_s: float = 0.0  # ... and loading the embedder there, for the first file a worker embeds
    notes: tuple[str, ...] = ()  # what the report should say besides (the limits could not be applied)

    @property
    def n_chunks(self) -> int:
        return sum(len(cs) for _, cs in self.docs)


@dataclass(frozen=True)
class ReadLimits:
    """What reading one file may cost; past any of them the file fails alone, with the reason.
    The defaults are ``rag ingest``'s (README, "Storage and safety")."""

    max_file_size: int = loaders.DEFAULT_MAX_FILE_SIZE  # bytes on disk (--max-file-size)
    max_text: int = DEFAULT_MAX_TEXT  # characters of text it yields, attachments included (--max-text-size)
    file_timeout: float = DEFAULT_FILE_TIMEOUT  # seconds to read and chunk it, more for OCR pages (--file-timeout)
    max_memory: int = DEFAULT_PARSE_MEMORY  # bytes a worker process may allocate (--max-parse-memory)


class Executor(Protocol):
    """Reads and chunks the plan's files, perhaps embeds them too; yields them in plan order.

    ``timings`` is the report's: an executor adds what it ran on (``workers``) and what its
    start-up cost. It keeps only a bounded number of files in flight (memory stays flat).
    """

    def __call__(self, todos: Sequence[Todo], embedder: Embedder, params: ChunkParams, limits: ReadLimits,
                 timings: dict[str, float]) -> Generator[Parsed, None, None]: ...


def parse_file(todo: Todo, data: bytes, count_tokens: Callable[[Sequence[str]], list[int]], params: ChunkParams,
               stat: tuple[int, float] | None = None, limits: ReadLimits = ReadLimits(),
               memory_limited: bool = False) -> Parsed:
    """Chunk one file's bytes: its documents, and what failed (the file, or an attachment).
    ``stat``: its (size, mtime) if taken elsewhere (``loaders.load_all``).

    Whatever goes wrong with this one file fails it, with a reason: a loader's or the
    chunker's exception of any kind (a deeply nested notebook's ``RecursionError`` used to
    end the whole ingest), running out of memory (``memory_limited``: under the worker's
    ``limits.max_memory``), more text than ``limits.max_text``.
    """
    path = Path(todo.path)
    try:
        with text_limits.reading(todo.path, limits.max_text, on_slow=parse_workers.extend):
            docs, errors = loaders.load_all(path, data, stat=stat)
            out, failed = [], [(e.path, e.reason) for e in errors]
            for doc in docs:
                chunks = chunk_document(doc, count_tokens, params)
                if chunks:
                    out.append((doc, tuple(chunks)))
                else:
                    failed.append((doc.path, "no text to index after cleaning"))
    except SourceError as e:
        return Parsed(todo, failed=((e.path, e.reason),))
    except MemoryError:
        return Parsed(todo, failed=((todo.path, memory_reason(limits) if memory_limited else
                                     "ran out of memory while reading it; close other programs, or leave it out"),))
    except RecursionError:
        return Parsed(todo, failed=((todo.path, "its structure is nested too deeply to read (RecursionError)"),))
    except Exception as e:  # a reader library's bug on this file: it fails, the others go on
        return Parsed(todo, failed=((todo.path, f"cannot read it ({brief(e)})"),))
    return Parsed(todo, tuple(out), tuple(failed))


def memory_reason(limits: ReadLimits) -> str:
    return (f"reading it needs more than {limits.max_memory / 1e6:g} MB of memory, the --max-parse-memory "
            "limit (raise it to ingest this file)")
