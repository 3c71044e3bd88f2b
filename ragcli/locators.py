"""Locators a person (or an agent) can open, and reading the text around one.

    notes.md:12              a text file, line 12
    report.pdf#page=3        a paged document, page 3
    report.pdf#page=3:12     page 3, line 12 of that page's text

``locator`` makes one from a hit or a citation; ``parse`` splits one back; ``read_around``
re-reads the document (the same readers as ingest: ``loaders.reread``), checks its bytes
still hash to what the index recorded, and returns the sentences around a line or offset
with their exact ``[start:end]`` into the page text. It never reads a file the index does
not hold. What it does not do: search, or decide which documents a caller may see
(``mcp_server`` limits paths to the index's roots).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .chunking import sentence_ranges
from .errors import UsageError
from .index import DocRow

_LOCATOR = re.compile(r"^(?P<path>.+?)(?:#page=(?P<page>\d+))?(?::(?P<line>\d+))?$", re.S)


def locator(source: str, page: int | None, line: int) -> str:
    """``source:line``, or ``source#page=N`` for a paged document (``page`` None: not paged)."""
    return f"{source}#page={page}" if page else f"{source}:{line}"


@dataclass(frozen=True)
class Place:
    path: str
    page: int | None  # None: the locator named no page
    line: int | None  # None: the locator named no line


def parse(loc: str, known: set[str]) -> Place:
    """Split ``loc``; a path the index holds whole wins (a file may be named ``a:3``).

    >>> parse("notes.md:12", {"notes.md"})
    Place(path='notes.md', page=None, line=12)
    """
    if loc in known:
        return Place(loc, None, None)
    m = _LOCATOR.match(loc)
    if not m:
        raise UsageError(f"not a locator: {loc!r}; use path:LINE or file.pdf#page=N")
    return Place(m["path"], int(m["page"]) if m["page"] else None, int(m["line"]) if m["line"] else None)


@dataclass(frozen=True)
class Sentence:
    start: int  # [start, end) into the page text
    end: int
    line_start: int
    line_end: int
    text: str


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_around(doc: DocRow, page: int | None, line: int | None, start: int | None,
                before: int, after: int) -> tuple[int, list[Sentence], int]:
    """(page, sentences, index of the one asked for) around ``line`` (or char ``start``) of
    ``page`` of ``doc``; raises ``UsageError`` when the file changed since ingest or is gone
    (the index's offsets would no longer point into it)."""
    from .verify import Verifier

    v = Verifier(sizes={doc.path: doc.size} if doc.size else None)
    sha = v.sha256(doc.path)
    if sha is None:
        raise UsageError(f"cannot read {doc.path}: {v.unreadable(doc.path)}")
    if sha != doc.sha256:
        raise UsageError(f"{doc.path} changed since it was ingested; sync it (the `sync` tool or "
                         f"`rag ingest`) before reading it")
    number = page or 1
    if number < 1 or number > max(1, doc.n_pages):
        raise UsageError(f"{doc.path} has {doc.n_pages} pages; page {number} does not exist")
    got = v.page(doc.path, number if doc.n_pages > 1 or page else None, doc.encoding, doc.kind)
    if got is None:
        raise UsageError(f"cannot re-read page {number} of {doc.path}")
    text = got.text
    ranges = sentence_ranges(text)
    if not ranges:
        return number, [], 0
    if start is not None:
        at = next((i for i, (a, b) in enumerate(ranges) if b > start), len(ranges) - 1)
    elif line is not None:
        at = next((i for i, (a, b) in enumerate(ranges) if _line_of(text, max(a, b - 1)) >= line), len(ranges) - 1)
    else:
        at = 0
    lo, hi = max(0, at - before), min(len(ranges), at + after + 1)
    out = [Sentence(a, b, _line_of(text, a), _line_of(text, max(a, b - 1)), text[a:b]) for a, b in ranges[lo:hi]]
    return number, out, at - lo
