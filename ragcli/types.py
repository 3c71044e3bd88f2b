"""The small frozen records the pipeline passes around.

    Document  one file as loaded: its pages of text, hash and encoding
    Page      the text of one page (PDF page, slide, EPUB chapter) or the whole file (everything else)
    Span      one sentence (or a piece of an over-long one) with exact offsets into its page text
    Chunk     consecutive spans of one page, the unit that is embedded and retrieved
    Origin    the document a passage came from: what re-reading and labelling it needs
    Hit       a chunk found by a search, with its score and its Origin
    Citation  a verified quote, as printed by ``rag ask``
    Answer    the result of ``rag ask``
    SearchResult  the result of ``rag search``
    IngestReport  the result of ``rag ingest``

Offsets are character offsets (Python ``str`` indices) into ``Page.text``; for a text file
that is the file decoded with ``Document.encoding`` and no newline translation, for a PDF
the string pypdf returns for that page, for the other formats the text their extraction
(``loaders``, named by ``Page.extraction``) builds; the README gives each one's recipe. ``page.text[span.start:span.end] == span.text``
always holds; nothing here validates it (see ``chunking`` and its property tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scope import Scope

from .formats import PAGED_KINDS


@dataclass(frozen=True)
class Page:
    number: int  # 1-based; text files have exactly one page, number 1
    text: str  # what citation offsets index: the decoded file, or pypdf's page text
    view: str = ""  # same length as ``text`` with markup blanked (XML); "" = use ``text``
    extraction: str = ""  # how ``text`` was made: "text", "pypdf", "ocr", "python-docx", ... (``formats``)
    title: str = ""  # a slide's or chapter's title, for people; never part of ``text``
    blocks: tuple[int, ...] = ()  # start offsets of paragraphs / table cells / notebook cells, ascending
    block_name: str = ""  # what a block is called in citations: "paragraph", "cell"; "" = none (``formats``)

    @property
    def visible(self) -> str:
        return self.view or self.text


@dataclass(frozen=True)
class Document:
    path: str  # absolute path as ingested
    sha256: str  # of the file's bytes
    kind: str  # its row in ``formats.FORMATS``: "text" | "pdf" | "pdf+ocr" | "html" | "docx" | ...
    encoding: str  # codec used to decode a text file ("utf-8", "cp1252", ...); "" for binary formats
    pages: tuple[Page, ...]
    size: int  # bytes on disk
    mtime: float

    @property
    def paged(self) -> bool:
        return self.kind in PAGED_KINDS  # pages people can find: PDF pages, slides, EPUB chapters


@dataclass(frozen=True)
class Span:
    page: int
    start: int  # [start, end) into the page text
    end: int
    line_start: int  # 1-based line of ``start`` in the page text
    line_end: int  # 1-based line of the last character
    text: str


@dataclass(frozen=True)
class Chunk:
    key: str  # content-derived id: sha1 of (doc sha256, page, start, end), 16 hex chars
    source: str
    sha256: str
    page: int
    start: int
    end: int
    line_start: int
    line_end: int
    text: str  # page.text[start:end]
    spans: tuple[Span, ...]
    heading: str = ""  # title and nearest markdown heading: context for embedding
    embed: str = ""  # exactly what was embedded: header + visible text of the spans
    n_tokens: int = 0  # embedder wordpieces of ``embed`` (special tokens excluded)


@dataclass(frozen=True)
class Origin:
    """The document a passage came from, as the index recorded it at ingest: what re-reading
    a quote (``verify``) and labelling it (its pages, its encoding) needs. ``Hit`` and
    ``evidence.Evidence`` hold one; ``answer.to_citation`` builds a ``Citation`` from it."""

    path: str  # the document's ``Document.path``: absolute path as ingested
    sha256: str  # of the file's bytes at ingest
    kind: str = "text"  # its ``Document.kind``: says how to re-read the quote
    encoding: str = "utf-8"  # its ``Document.encoding``; "" for binary formats
    size: int = 0  # its ``Document.size`` at ingest: verification re-reads no more than this (0: unknown)

    @property
    def paged(self) -> bool:
        return self.kind in PAGED_KINDS  # as ``Document.paged``

    @property
    def text_encoding(self) -> str:
        """The codec a citation names for its quote: the file's, or "utf-8" for the text a binary
        format's reader extracts (``encoding`` is "" for those)."""
        return self.encoding or "utf-8"

    def page_of(self, page: int) -> int | None:
        """Where a person finds a passage of page ``page``: that page of a paged document, None
        in a file without pages (its one "page" is the whole file).

        >>> Origin("/d/a.pdf", "h", "pdf").page_of(3), Origin("/d/a.txt", "h").page_of(1)
        (3, None)
        """
        return page if self.paged else None


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # higher is better; meaning depends on the retrieval mode
    rank: int  # 1-based
    similarity: float  # cosine of the query and chunk embeddings, whatever the mode
    origin: Origin  # the chunk's document: ``origin.path == chunk.source``


@dataclass(frozen=True)
class Citation:
    id: int  # the n in "[n]" of the answer text
    source: str
    sha256: str
    page: int | None  # None for files without pages
    line_start: int
    line_end: int
    start: int
    end: int
    quote: str
    encoding: str = "utf-8"
    extraction: str = "text"  # the recipe that rebuilds the page text (README); set by ``verify``
    title: str = ""  # slide or chapter title, when the format has one
    unit: str = ""  # "paragraph" (docx, odt) or "cell" (ipynb): what unit_start/unit_end count
    unit_start: int = 0  # 1-based blocks of the page text holding the quote's first and last character
    unit_end: int = 0
    verified: str = "file"  # what the quote was checked against: "file" (re-read) or "index" (its stored page)
    context: str = ""  # the heading above the quote ("Year 2017 results"): shown beside it, never part of it
    support: str = ""  # how much of the answer text this quote backs: "supported" | "partial" | "unsupported"

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "source": self.source,
            "sha256": self.sha256,
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "encoding": self.encoding,
            "extraction": self.extraction,
            "verified": self.verified,
        }
        if self.title:
            out["title"] = self.title
        if self.context:
            out["context"] = self.context
        if self.unit:
            out[f"{self.unit}_start"], out[f"{self.unit}_end"] = self.unit_start, self.unit_end
        if self.support:
            out["support"] = self.support
        return out


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    status: str  # "answered" | "no_evidence"
    citations: tuple[Citation, ...]
    model: str
    embedder: str
    timings: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why no_evidence; on an answer, its warnings joined with "; " (for humans)
    answer_text: str = ""  # the answer without [n] markers ("" on no_evidence)
    # is the model's answer text backed by its quotes: "supported" | "partial" | "unsupported"
    # (its text was then replaced by the quotes) | "none" (no_evidence) | "" (not checked)
    support: str = ""
    support_missing: tuple[str, ...] = ()  # what the quotes do not back, when support is not "supported"
    warnings: tuple[str, ...] = ()  # everything ``rag ask`` warns about on stderr, one string each
    filters: dict = field(default_factory=dict)  # the scope it was asked in (``Scope.to_json``); {}: none

    def to_json(self) -> dict:
        """The ``rag ask --json`` object; docs/json.md is the contract."""
        return {**({"filters": self.filters} if self.filters else {}),
            "question": self.question,
            "answer": self.answer,
            "answer_text": self.answer_text,
            "status": self.status,
            "reason": self.reason if self.status == "no_evidence" else "",
            "support": {"status": self.support, "missing": list(self.support_missing)},
            "warnings": list(self.warnings),
            "citations": [c.to_json() for c in self.citations],
            "model": self.model,
            "embedder": self.embedder,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: tuple[Hit, ...]
    mode: str
    embedder: str
    timings: dict[str, float]
    scope: Scope | None = None  # the filters it ran under (None: the whole index)
    empty_scope: str = ""  # when those filters name no indexed document: the reason, and no hits


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
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason): met while walking, not read (never exit 3)
    known_failed: tuple[str, ...] = ()  # of ``failed``, files unchanged since they failed before: not read again
    doc_chunks: tuple[tuple[str, int], ...] = ()  # (document path, chunks) of each document committed

    @property
    def only_known_failures(self) -> bool:
        """Every failure is a file that failed before and has not changed since."""
        return bool(self.failed) and {p for p, _ in self.failed} <= set(self.known_failed)

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "added": list(self.added),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "removed": list(self.removed),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "resumed": list(self.resumed),
            "known_failed": list(self.known_failed),
            "chunks": self.chunks,
            "batches": self.batches,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
