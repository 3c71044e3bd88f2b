"""PDFs -> one page of text per PDF page: pypdf's text layer, or OCR where there is none.

Text layer: ``PdfReader(file).pages[n - 1].extract_text()``, exactly (the README's recipe). AES-
encrypted files with an empty user password (common for filings) are decrypted; pypdf needs the
``cryptography`` package for AES, a default dependency. Pages whose text is empty or whitespace
are skipped and the others keep their numbers.

OCR (optional, ``pip install ragcli[ocr]``): a page without a text layer is rendered with
pypdfium2 and read by RapidOCR (ONNX Runtime; its models ship in the wheel). The page text is
RapidOCR's lines joined with newlines, in the order it returns them; ``ocr.py`` holds the
recipe. Without the extra, a PDF with no text layer at all fails with what to install.

What it does not do: OCR a page that has a text layer, however poor.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from ..errors import SourceError, brief
from ..formats import BY_KIND
from ..types import Page
from . import limits, ocr

OCR = BY_KIND["pdf+ocr"]  # its ``also``: the extraction of a page read by OCR; its ``extra``: the install


def open_pdf(path: Path | str, data: bytes):
    """A decrypted ``PdfReader``, or ``SourceError`` saying why not."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every odd object
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except Exception as e:  # pypdf raises several types for unsupported crypto
            if "cryptography" in str(e):
                raise SourceError(str(path), f"PDF uses AES encryption and {e}: pip install cryptography") from None
            ok = 0
        if not ok:
            raise SourceError(str(path), "PDF is encrypted with a password; decrypt it first (e.g. qpdf --decrypt)")
    return reader


class _TooMuchText(Exception):
    pass


def _page_text(page) -> str:
    """``page.extract_text()``, stopped as soon as its pieces pass what the file may still
    yield (``limits.room``): one page that draws the same text a million times (a form
    XObject called in a loop) fails part way instead of building all of it."""
    room = limits.room()
    if room is None:
        return page.extract_text() or ""
    seen = 0

    def count(text: str, *_args) -> None:  # pypdf's visitor: each piece of text as it is shown
        nonlocal seen
        seen += len(text)
        if seen > room:
            raise _TooMuchText

    try:
        return page.extract_text(visitor_text=count) or ""
    except _TooMuchText:
        raise limits.exceeded() from None


def text_layer_pages(path: Path, data: bytes, only: int | None = None) -> tuple[Page, ...]:
    """Every page with a text layer (or only page ``only``), no OCR: a PDF that ingest read without it."""
    return pdf_pages(path, data, only, use_ocr=False)


def pdf_pages(path: Path, data: bytes, only: int | None = None, use_ocr: bool = True) -> tuple[Page, ...]:
    """Every page with text (or only page ``only``); OCR for pages without a text layer when
    ``use_ocr`` and the extra is installed."""
    from pypdf.errors import PdfReadError

    blank: list[int] = []
    pages: list[Page] = []
    try:
        reader = open_pdf(path, data)
        n_pages = len(reader.pages)
        for i, page in enumerate(reader.pages, start=1):
            if only is not None and i != only:
                continue
            text = _page_text(page)
            limits.take(len(text))
            if text.strip():
                pages.append(Page(i, text))
            else:
                blank.append(i)
    except (SourceError, MemoryError):
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise SourceError(str(path), f"cannot read PDF ({brief(e)}); the file is corrupt or truncated") from None
    except Exception as e:  # pypdf has no single error type for damaged files
        raise SourceError(str(path), f"cannot read PDF ({brief(e)})") from None
    if n_pages == 0:
        raise SourceError(str(path), "PDF has no pages")
    if blank and use_ocr and ocr.available():
        try:
            for i in blank:
                limits.allow_more_time()  # seconds a page: a long scan may take longer than one file's budget
                pages.append(Page(i, ocr.page_text(data, i), extraction=OCR.also[0]))
                limits.take(len(pages[-1].text))
        except (SourceError, MemoryError):
            raise
        except Exception as e:  # pdfium or onnxruntime failed on this file
            raise SourceError(str(path), f"OCR failed ({brief(e)})") from None
        pages.sort(key=lambda p: p.number)
        if only is None and not any(p.text.strip() for p in pages):
            raise SourceError(str(path), "no text layer (a scanned PDF?), and OCR found no text on its pages")
    elif not pages and only is None:
        raise SourceError(str(path), f"no text layer (a scanned PDF?); install ragcli[{OCR.extra}] to read it")
    return tuple(pages)
