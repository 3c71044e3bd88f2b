"""Document management: list the documents an index holds, remove some (``rag ls``, ``rag rm``).

``rag ls`` also lists the files the last ingest to meet them failed or skipped, with the reason
(``known_failures`` remembers them, beside the index); one whose path is gone is not listed.

A pattern names documents by their path as the index stores it (absolute): an exact path,
a directory (everything under it), or a glob (``fnmatch``: ``*`` also crosses ``/``, so
``*.pdf`` is every PDF). A relative pattern is tried as given and from the current
directory. Removal is one atomic batch through the store's writer (SQLite or PostgreSQL
alike): documents leave with their chunks, sentences and vectors, or nothing changes;
removing what is not there removes nothing and is not an error. The disk space of removed
vectors comes back at the next merge (the next ``rag ingest``).

What it does not do: delete files, or stop a later ``rag ingest`` of the same folder from
adding a file that is still there (remove it from the folder, or ``--exclude`` it).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from . import known_failures, loaders
from .index import DocRow, Store

_GLOB = set("*?[")


def matches(path: str, pattern: str) -> bool:
    """Whether the stored ``path`` is named by ``pattern``.

    >>> matches("/d/a/x.pdf", "*.pdf"), matches("/d/a/x.pdf", "/d/a"), matches("/d/ab", "/d/a")
    (True, True, False)
    """
    forms = {pattern, os.path.abspath(pattern)} if pattern else set()
    for p in forms:
        if any(ch in _GLOB for ch in p):
            if fnmatch.fnmatchcase(path, p):
                return True
        elif path == p or path.startswith(p.rstrip("/") + "/"):
            return True
    return False


def documents(store: Store, patterns: tuple[str, ...] = ()) -> list[DocRow]:
    """The documents (by path) that any of ``patterns`` names; no patterns: all of them."""
    with store.reader() as st:
        docs = st.documents()
    return [d for d in docs if not patterns or any(matches(d.path, p) for p in patterns)]


def chunk_counts(store: Store) -> dict[str, int]:
    """Chunks per document path (``rag ls``)."""
    with store.reader() as st:
        return dict(st.chunks_per_document())


@dataclass(frozen=True)
class Unindexed:
    path: str
    status: str  # known_failures.FAILED or SKIPPED
    reason: str

    def to_json(self) -> dict:
        return {"path": self.path, "status": self.status, "reason": self.reason}


def unindexed(store: Store, patterns: tuple[str, ...] = ()) -> list[Unindexed]:
    """The files the last ingest to meet them failed or skipped (still there), by path."""
    memory = known_failures.KnownFailures.load(known_failures.store_for(store.shown), "")
    return [Unindexed(p, st, why) for p, (st, why) in sorted(memory.unindexed.items())
            if os.path.lexists(loaders.container_of(p)) and (not patterns or any(matches(p, q) for q in patterns))]


@dataclass(frozen=True)
class Removal:
    paths: tuple[str, ...]  # the documents removed (none: nothing matched; not an error)
    chunks: int
    spans: int
    pages: int

    def to_json(self) -> dict:
        return {"removed": list(self.paths), "documents": len(self.paths), "chunks": self.chunks,
                "sentences": self.spans, "pages": self.pages}


def remove(store: Store, patterns: tuple[str, ...], wait: bool = True) -> Removal:
    """Remove every document ``patterns`` names, in one atomic batch, under the writer lock."""
    with store.lock(wait=wait):
        with store.reader() as st:
            info = st.info
            before = st.counts()
            gone = [d for d in st.documents() if any(matches(d.path, p) for p in patterns)]
        if not gone:
            return Removal((), 0, 0, 0)
        w = store.writer(info)
        try:
            w.commit_batch([d.id for d in gone], [])
        finally:
            w.close()
        with store.reader() as st:
            after = st.counts()
    return Removal(tuple(d.path for d in gone), before["chunks"] - after["chunks"],
                   before["spans"] - after["spans"], before["pages"] - after["pages"])
