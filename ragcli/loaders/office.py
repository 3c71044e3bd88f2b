"""Word, PowerPoint and OpenDocument files -> pages of text.

- .docx (python-docx): body paragraphs and table rows in document order (headings are
  paragraphs too), one block each; one page. Citations name the paragraph range.
- .pptx (python-pptx): one page per slide: its shapes' text frames and table rows in the
  slide's shape order (groups opened), then the speaker notes; the title placeholder names it.
- .odt / .odp (odfpy): every ``text:p`` and ``text:h`` in document order, and a ``table:table``
  as its rows; an .odp has one page per ``draw:page`` (slide, notes included).

A table row is one block whose cells keep their column headers ("Division: Home Care |
FY2024 revenue ($M): 6.0"; ``blocks.table_rows``), so the row is one citable line.

Blocks are joined with a blank line (``blocks.joined``); the README gives each recipe, and a
test runs those recipes against this module's output. Headers, footers, footnotes, comments
and text boxes of .docx files are not read.

What it does not do: guard against zip bombs (``archive.check_zip`` runs first).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

from ..errors import SourceError
from ..types import Page
from . import limits
from .archive import check_zip, unreadable
from .blocks import joined, table_rows


def docx_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    check_zip(path, data, "Word document")
    try:
        from docx import Document as open_docx
        from docx.table import Table

        blocks: list[str] = []
        for b in open_docx(io.BytesIO(data)).iter_inner_content():
            new = table_rows([[c.text for c in r.cells] for r in b.rows]) if isinstance(b, Table) else [b.text]
            limits.take(sum(map(len, new)))
            blocks += new
    except (SourceError, MemoryError):
        raise
    except Exception as e:  # python-docx raises KeyError, lxml errors, PackageNotFoundError, ...
        raise unreadable(path, "Word document", e) from None
    return (joined(1, blocks),)


def _shape_texts(shapes) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for s in shapes:
        if s.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(s.shapes)
        elif s.has_text_frame:
            yield s.text_frame.text
        elif s.has_table:
            yield from table_rows([[c.text for c in r.cells] for r in s.table.rows])


def pptx_pages(path: Path, data: bytes, only: int | None = None) -> tuple[Page, ...]:
    """Every slide (or only slide ``only``), numbered from 1."""
    check_zip(path, data, "PowerPoint file")
    try:
        from pptx import Presentation

        slides = list(Presentation(io.BytesIO(data)).slides)
        pages = []
        for n, slide in enumerate(slides, start=1):
            if only is not None and n != only:
                continue
            blocks = []
            for text in _shape_texts(slide.shapes):
                limits.take(len(text))
                blocks.append(text)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                blocks.append(slide.notes_slide.notes_text_frame.text)
                limits.take(len(blocks[-1]))
            title = slide.shapes.title.text if slide.shapes.title is not None else ""
            pages.append(joined(n, blocks, title=" ".join(title.split())))
    except (SourceError, MemoryError):
        raise
    except Exception as e:
        raise unreadable(path, "PowerPoint file", e) from None
    if not slides:
        raise SourceError(str(path), "the presentation has no slides")
    return tuple(pages)


def _odf_blocks(element) -> Iterator[str]:
    from odf import teletype
    from odf.namespaces import TABLENS, TEXTNS
    from odf.table import TableCell, TableRow
    from odf.text import P

    stack = [element]  # depth first, in document order, without recursion (no depth limit)
    while stack:
        node = stack.pop()
        qname = getattr(node, "qname", None)
        if qname in ((TEXTNS, "p"), (TEXTNS, "h")):
            text = teletype.extractText(node)
            limits.take(len(text))
            yield text
        elif qname == (TABLENS, "table"):
            rows = [[" ".join(teletype.extractText(p) for p in c.getElementsByType(P)) for c in r.getElementsByType(TableCell)]
                    for r in node.getElementsByType(TableRow)]
            for text in table_rows(rows):
                limits.take(len(text))
                yield text
        else:
            stack.extend(reversed(node.childNodes))


def _odf(path: Path, data: bytes, what: str):
    check_zip(path, data, what)
    from odf.opendocument import load

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # odfpy prints a whole XML part it cannot parse
            return load(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as e:
        raise unreadable(path, what, e) from None


def odt_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    doc = _odf(path, data, "OpenDocument text")
    try:
        return (joined(1, list(_odf_blocks(doc.text))),)
    except (SourceError, MemoryError):
        raise
    except Exception as e:
        raise unreadable(path, "OpenDocument text", e) from None


def odp_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    from odf.draw import Page as DrawPage

    doc = _odf(path, data, "OpenDocument presentation")
    try:
        slides = doc.presentation.getElementsByType(DrawPage)
        pages = tuple(joined(n, list(_odf_blocks(s))) for n, s in enumerate(slides, start=1))
    except (SourceError, MemoryError):
        raise
    except Exception as e:
        raise unreadable(path, "OpenDocument presentation", e) from None
    if not pages:
        raise SourceError(str(path), "the presentation has no slides")
    return pages
