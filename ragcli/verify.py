"""One way to re-read a source and check a quote: used by ``rag ask``, ``rag eval``, bench/ and tests.

A citation is verified when (1) the source's bytes still hash to the sha256 recorded at ingest
and (2) the page text rebuilt from those bytes (``loaders.reread``, the same readers as ingest,
whose recipes the README states) holds the quote at ``[start:end]``. Verification also fills in
what a person needs to find the quote: the extraction that made the page text (``"pypdf"``,
``"ocr"``, ``"python-docx"``, ...), a slide's or chapter's title, and the paragraph or cell range.

A machine that queries a shared index may not have the source files. When a cited file
cannot be read here, and only then, the quote is checked against the page text the index
stored at ingest (``stored_pages``): that text must still hash to the sha256 stored with it,
belong to the document with the citation's sha256, and hold the quote at ``[start:end]``.
The citation then says ``verified: "index"`` instead of ``"file"``. A file that is here but
changed is not verified at all (the index copy would no longer be what the file says).

Re-reading is bounded: only a regular file is read (a FIFO or a device in a cited file's
place fails at once, with the reason), and no more than the size the index recorded at
ingest (``Origin.size``): a file larger now has changed, and is not read to find that out.

What it does not do: choose quotes (``answer``), or know any file format (``formats``, ``loaders``).
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from . import formats, loaders
from .types import Citation, Hit, Page

if TYPE_CHECKING:
    from .index import IndexReader

def units(page: Page, start: int, end: int) -> tuple[int, int]:
    """1-based numbers of the blocks holding the first and the last character of ``[start:end]``.

    >>> units(Page(1, "ab\\n\\ncd\\n\\nef", blocks=(0, 4, 8)), 4, 10)
    (2, 3)
    """
    if not page.blocks:
        return 0, 0
    return bisect.bisect_right(page.blocks, start), bisect.bisect_right(page.blocks, max(start, end - 1))


StoredPages = Mapping[tuple[str, int], tuple[Page, str, str]]  # (path, page) -> (page, its sha256, doc sha256)


def stored_pages(reader: IndexReader, cited: Iterable[tuple[str, int]]) -> StoredPages:
    """The index's copies of the pages ``cited`` ((path, page) pairs) whose file is not readable
    here; {} when the index keeps no page text (the SQLite store reads the files)."""
    away = sorted({(src, page) for src, page in cited if not os.access(loaders.container_of(src), os.R_OK)})
    return reader.pages(away) if away else {}


def recorded_sizes(hits: Iterable[Hit]) -> dict[str, int]:
    """The bytes each hit's file had at ingest (``documents.size``, in the hit's ``Origin``: no
    extra query), for the Verifier's bound. An e-mail attachment's recorded size is its own,
    not its e-mail's, so attachments are left out (their e-mail is read up to the default cap)."""
    return {o.path: o.size for o in (h.origin for h in hits) if o.size and loaders.container_of(o.path) == o.path}


class Verifier:
    """Re-reads each cited source once (its bytes, their sha256, each cited page); ``stored``:
    the index's page copies for sources not readable here (``stored_pages``); ``sizes``: each
    source's bytes at ingest (``recorded_sizes``): a file larger now has changed and is not
    read. Only regular files are read (``loaders.source_bytes``): a FIFO or a device put in a
    cited file's place fails at once, with the reason."""

    def __init__(self, stored: StoredPages | None = None, sizes: Mapping[str, int] | None = None) -> None:
        self._data: dict[str, bytes | None] = {}
        self._why: dict[str, str] = {}  # source -> why it could not be read
        self._pages: dict[tuple, Page | None] = {}
        self.stored = stored or {}
        self.sizes = dict(sizes or {})

    def data(self, source: str) -> bytes | None:
        if source not in self._data:
            try:
                self._data[source] = loaders.source_bytes(source, self.sizes.get(source))
            except loaders.SourceError as e:  # gone, unreadable, not a regular file, grown, attachment removed
                self._data[source], self._why[source] = None, e.reason
            except Exception as e:  # a damaged e-mail, ...: the citation cannot be verified
                self._data[source], self._why[source] = None, f"{type(e).__name__}: {e}"
        return self._data[source]

    def unreadable(self, source: str) -> str:
        """Why ``source`` could not be read ("" if it was, or was not tried)."""
        self.data(source)
        return self._why.get(source, "")

    def sha256(self, source: str) -> str | None:
        data = self.data(source)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def page(self, source: str, page: int | None, encoding: str, kind: str) -> Page | None:
        key = (source, page, encoding, kind)
        if key not in self._pages:
            data = self.data(source)
            try:
                self._pages[key] = None if data is None else loaders.reread(source, page, encoding, kind, data)
            except Exception:  # unreadable now: the citation cannot be verified
                self._pages[key] = None
        return self._pages[key]

    def problem(self, source: str, sha256: str, page: int | None, start: int, end: int, quote: str,
                encoding: str, kind: str) -> tuple[str | None, Page | None]:
        """(None, the re-read page) when the quote is byte-for-byte in the source, else (reason, None)."""
        if self.data(source) is None:
            why = self._why.get(source, "")
            if why.startswith(loaders.CHANGED):
                return f"{source} {why}; run `rag ingest` again", None
            return f"{source} can no longer be read, so the quote cannot be verified: {why}", None
        if sha256 and self.sha256(source) != sha256:
            return f"{source} changed since it was ingested (run `rag ingest` again)", None
        text = self.page(source, page, encoding, kind)
        if text is None or text.text[start:end] != quote:
            return f"{source} [{start}:{end}] does not hold the stored quote", None
        return None, text

    def stored_problem(self, source: str, sha256: str, page: int | None, start: int, end: int,
                       quote: str) -> tuple[str | None, Page | None]:
        """Like ``problem``, against the index's copy of the page (for a file not readable here)."""
        entry = self.stored.get((source, page or 1))
        if entry is None:
            return f"{source} can no longer be read", None
        text, page_sha, doc_sha = entry
        if hashlib.sha256(text.text.encode()).hexdigest() != page_sha:
            return f"the index's copy of {source} does not match its sha256", None
        if sha256 and doc_sha != sha256:
            return f"the index's copy of {source} is of another version of it", None
        if text.text[start:end] != quote:
            return f"the index's copy of {source} [{start}:{end}] does not hold the stored quote", None
        return None, text

    def check(self, c: Citation, kind: str) -> tuple[Citation | None, str]:
        """(the citation with extraction, title, unit range and ``verified`` filled in, "") or (None, reason)."""
        verified = "file"
        if self.data(c.source) is None and (c.source, c.page or 1) in self.stored:
            verified = "index"
            err, page = self.stored_problem(c.source, c.sha256, c.page, c.start, c.end, c.quote)
        else:
            err, page = self.problem(c.source, c.sha256, c.page, c.start, c.end, c.quote, c.encoding, kind)
        if err or page is None:
            return None, err or "not verified"
        a, b = units(page, c.start, c.end)
        return replace(c, extraction=page.extraction or formats.extraction_of(kind), title=page.title,
                       unit=page.block_name if a else "", unit_start=a, unit_end=b, verified=verified), ""


def kind_for(c: Mapping) -> str:
    """The Document.kind to re-read a JSON citation with: from its ``extraction``, else its file
    name (``formats.kind_for``)."""
    return formats.kind_for(str(c.get("extraction") or ""), str(c.get("source", "")))


def check_json(c: Mapping, verifier: Verifier | None = None) -> str | None:
    """None when a ``rag ask --json`` citation verifies, else the reason (bad fields included)."""
    try:
        err, _ = (verifier or Verifier()).problem(
            str(c["source"]), str(c.get("sha256") or ""), c.get("page"), int(c["start"]), int(c["end"]),
            str(c["quote"]), str(c.get("encoding") or ""), kind_for(c))
    except (KeyError, TypeError, ValueError) as e:
        return f"malformed citation ({type(e).__name__}: {e})"
    return err
