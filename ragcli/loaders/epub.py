"""EPUB e-books -> one page per spine item (chapter), through ebooklib and ``text.html_text``.

``page`` is the 1-based position in the spine, the book's reading order, whether or not a
chapter has text (the navigation document usually has none once ``<nav>`` is dropped, so it
yields no passages but keeps its number). Each page's title comes from the table of contents,
else the chapter's first line; it is shown to people and is not part of the quoted text.

A chapter lxml cannot read whole (nested past its depth limit) is left out with a note
(``limits.skip``) and keeps its number; the other chapters are read.

What it does not do: read DRM-encrypted books (``archive.check_zip`` refuses them).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from ..errors import SourceError
from ..types import Page
from . import limits
from .archive import check_zip, unreadable
from .text import HtmlCutShort, html_cut_short, html_text


def _toc_titles(toc) -> dict[str, str]:
    """{file name: title} from ebooklib's nested table of contents (first entry wins)."""
    out: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple | list):
            section, children = entry[0], entry[1]
            for k, v in _toc_titles([section, *children]).items():
                out.setdefault(k, v)
        elif getattr(entry, "href", None):
            out.setdefault(entry.href.split("#", 1)[0], " ".join(str(entry.title or "").split()))
    return out


def epub_pages(path: Path, data: bytes, only: int | None = None) -> tuple[Page, ...]:
    """Every spine item (or only number ``only``) as a page."""
    check_zip(path, data, "EPUB book")
    try:
        from ebooklib import epub

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
        titles = _toc_titles(book.toc)
        pages = []
        for n, (idref, _linear) in enumerate(book.spine, start=1):
            if only is not None and n != only:
                continue
            item = book.get_item_with_id(idref)
            if item is None:
                raise SourceError(str(path), f"spine item {n} ({idref!r}) is missing from the book")
            # ebooklib re-parses a chapter with lxml, which cuts it short silently: ask lxml first
            why = html_cut_short(item.content) if isinstance(item.content, bytes) else ""
            try:
                text = "" if why else html_text(item.get_content().decode("utf-8"))
            except HtmlCutShort as e:
                why = str(e)
            if why:  # this chapter only: the others are kept, and the report says so
                limits.skip(str(path), f"chapter {n} ({item.get_name()}) was left out, the others are read: {why}")
                text = ""
            limits.take(len(text))
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:80]
            pages.append(Page(n, text, title=titles.get(item.get_name()) or first))
    except (SourceError, MemoryError):
        raise
    except UnicodeDecodeError:
        raise SourceError(str(path), "an EPUB chapter is not UTF-8 (the EPUB standard requires it)") from None
    except Exception as e:
        raise unreadable(path, "EPUB book", e) from None
    if not book.spine:
        raise SourceError(str(path), "the EPUB book has no chapters (empty spine)")
    return tuple(pages)
