"""Files on disk -> ``Document`` (pages of text), one module per family of formats.

    files     which files to ingest (walking, links, excludes, what is skipped) and their bytes and hashes
    reading   one file's bytes, safely: regular files only, bounded, O_NOFOLLOW, never /proc, /sys, /dev
    text      text files (decoding with a recorded codec) and HTML (inscriptis)
    pdf, ocr  PDFs: pypdf's text layer; pages without one through RapidOCR (optional extra)
    office    .docx (python-docx), .pptx (python-pptx), .odt/.odp (odfpy)
    epub      EPUB books (ebooklib + the HTML step), one page per chapter
    mail      .eml (standard library ``email``); supported attachments become documents
    notebook  .ipynb (markdown and code cells)
    archive   zip-bomb and encryption guards for the zip-based formats
    limits    the text one file may yield, and the parts of it left out
    blocks    how blocks (paragraphs, cells) are joined into a page text

Which reader reads a file, and the extraction and block name its pages carry, is the file's
row in ``formats.FORMATS``; a reader names an extraction only where a page differs from its
row's (a PDF page read by OCR). ``load_all`` is what ``rag ingest`` calls per file; ``reread`` is what verification calls to
rebuild the exact text a citation's offsets index. Both go through the same readers, whose
README recipes a test runs independently of this package.

What it does not do: sentence splitting or chunking (``chunking``), verifying (``verify``), or
storing anything. Every problem with one file raises ``SourceError(path, reason)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import formats
from ..errors import SourceError
from ..formats import Format
from ..types import Document, Page
from . import limits, mail
from .files import (
    DEFAULT_EXCLUDES,
    DEFAULT_MAX_FILE_SIZE,
    LINK_NOT_FOLLOWED,
    FoundFile,
    Scope,
    Walk,
    escaped,
    excluded,
    file_sha256,
    read_bytes,
    walk,
)
from .reading import open_regular
from .text import decode_text

__all__ = [
    "CHANGED", "DEFAULT_EXCLUDES", "DEFAULT_MAX_FILE_SIZE", "LINK_NOT_FOLLOWED", "Document", "FoundFile", "Page",
    "Scope", "SourceError", "Walk", "decode_text", "escaped", "excluded", "file_sha256", "load", "load_all",
    "page_text_from_file", "read_bytes", "read_untyped", "reread", "source_bytes", "walk",
]


def _reader(fmt: Format) -> Callable[..., object]:
    """The function a row's ``reader`` names ("pdf:pdf_pages"), its module imported on first use."""
    module, _, name = fmt.reader.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _pages(fmt: Format, path: Path, data: bytes, only: int | None = None,
           encoding: str = "") -> tuple[tuple[Page, ...], str]:
    """(pages, text codec or "") of ``data`` read as ``fmt``, each page carrying the row's
    extraction (unless its reader named one of the row's ``also``) and block name."""
    read, codec = _reader(fmt), ""
    if fmt.decodes:
        pages, codec = read(path, data, encoding)
    elif fmt.one_page:
        pages = read(path, data, only)
    else:
        pages = read(path, data)
    return tuple(replace(p, extraction=p.extraction or fmt.extraction, block_name=fmt.block_name)
                 for p in pages), codec


def _document(path: Path, data: bytes, size: int, mtime: float) -> Document:
    fmt = formats.of_path(path)
    read_as = formats.BY_KIND[fmt.read_as] if fmt.read_as else fmt  # a PDF: OCR where there is no text layer
    pages, encoding = _pages(read_as, path, data)
    if any(p.extraction in read_as.also for p in pages):
        fmt = read_as
    pages = tuple(p for p in pages if p.visible.strip())  # blank pages keep their numbers out of the way
    if not pages:
        raise SourceError(str(path), "no text in the file" if fmt is not formats.TEXT else "empty file (no text)")
    return Document(str(path), file_sha256(data), fmt.kind, encoding, pages, size, mtime)


def _stat(path: Path, data: bytes) -> tuple[int, float]:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime
    except OSError:
        return len(data), 0.0


def load(path: Path, data: bytes | None = None, max_size: int = DEFAULT_MAX_FILE_SIZE) -> Document:
    """Read one file into a ``Document`` (an .eml: the message itself). Raises ``SourceError``."""
    if data is None:
        data = read_bytes(path, max_size)
    return _document(path, data, *_stat(path, data))


def load_all(path: Path, data: bytes | None = None, max_size: int = DEFAULT_MAX_FILE_SIZE,
             stat: tuple[int, float] | None = None) -> tuple[list[Document], list[SourceError]]:
    """The documents one file holds: itself, and for an .eml each readable attachment as
    ``/dir/mail.eml#name.pdf``. An attachment that fails is reported and the rest kept; the
    file itself failing raises ``SourceError``. ``stat``: the file's (size, mtime) when the
    caller took them (a machine that only has ``data``), else they are read from ``path``.

    Parts of a document left out while the rest was read (an EPUB chapter) are among the
    errors too. The text the file may yield is the caller's ``limits.reading`` account, if
    it opened one (``parsing.parse_file`` does): past it the whole file fails."""
    if data is None:
        data = read_bytes(path, max_size)
    size, mtime = stat or _stat(path, data)
    with limits.reading(str(path), None) as acct:
        docs = [_document(path, data, size, mtime)]
        errors: list[SourceError] = []
        if docs[0].kind == "eml":
            for name, blob in mail.attachments(path, data, formats.SUFFIXES):
                try:
                    docs.append(_document(Path(f"{path}{mail.ATTACHMENT_MARK}{name}"), blob, len(blob), mtime))
                except limits.TextLimitError:
                    raise
                except SourceError as e:
                    errors.append(e)
        errors += [SourceError(p, what) for p, what in acct.skipped]
    return docs, errors


def container_of(source: str) -> str:
    """The file a document lives in: the .eml for an attachment, else ``source`` itself."""
    return mail.split_source(source)[0]


CHANGED = "changed since it was ingested"  # how a re-read that found a file grown says so


def read_untyped(f: FoundFile, max_size: int = DEFAULT_MAX_FILE_SIZE) -> tuple[bytes | None, str]:
    """A file without a suffix: (its bytes, "") when they are text by ``decode_text``'s rules,
    else (None, why it is skipped). Raises ``SourceError`` when it cannot be read at all."""
    with f.open() as opened:
        if opened.size > max_size:
            return None, "file without a known type, larger than --max-file-size"
        data = opened.read(max_size)
    try:
        decode_text(f.path, data)
    except SourceError:
        return None, "empty file without a known type" if not data.strip() else "binary file without a known type"
    return data, ""


def source_bytes(source: str, size: int | None = None) -> bytes:
    """The bytes a document was read from: the file, or an e-mail attachment's bytes.

    Only a regular file is read (a link is followed: the name is the one ingested), never one
    in /proc, /sys or /dev, and never more than ``size``, the file's bytes at ingest (None:
    not known, then ``DEFAULT_MAX_FILE_SIZE``): a file larger than that has changed, and
    ``SourceError`` says so without reading it. A FIFO or a device fails at once.
    """
    mail_path, name = mail.split_source(source)
    limit = DEFAULT_MAX_FILE_SIZE if size is None else size
    with open_regular(Path(mail_path), follow=True) as f:
        if f.size > limit:
            raise SourceError(mail_path, f"{CHANGED}: it is {f.size} bytes now, "
                              f"{size} then (not read)" if size is not None else
                              f"is {f.size / 1e6:.0f} MB, more than ragcli re-reads to check a quote")
        data = f.read(limit)
    return mail.attachment_bytes(Path(mail_path), data, name) if name else data


def reread(source: str, page: int | None, encoding: str = "", kind: str = "", data: bytes | None = None) -> Page:
    """Rebuild the page a citation's offsets index, as ingest built it (``Page.text`` is "" when
    the page has no text any more). ``kind`` is the stored ``Document.kind``; "" guesses it
    from the file name. ``encoding``: the codec recorded for a text or HTML file, decoded with
    exactly that. ``data``: the source's bytes, when the caller has them."""
    path = Path(source)
    fmt = formats.BY_KIND[kind] if kind else formats.of_path(path)
    if data is None:
        data = source_bytes(source)
    number = page or 1
    pages, _ = _pages(fmt, path, data, number, encoding)
    return next((p for p in pages if p.number == number), Page(number, "", extraction=fmt.extraction))


def page_text_from_file(source: str, page: int | None, encoding: str, kind: str = "") -> str:
    """The text a citation indexes, exactly as the README's recipe for its format rebuilds it."""
    return reread(source, page, encoding, kind).text


SAMPLE_MAX_SIZE = 4 * 1024 * 1024  # a larger file is left out of a sample: reading it would take long


def sample_texts(inputs: list[str | Path], n_files: int, chars: int, excludes: tuple[str, ...] = (),
                 include_hidden: bool = False, follow: bool = False, seconds: float = 1.0) -> list[str]:
    """The first ``chars`` characters of text of up to ``n_files`` of the files ``inputs`` name,
    spread over their sorted list, plain text formats first: they read fastest, and once three
    have been read no other format is opened (a PDF, a .docx, a .pptx each cost their parser's
    import, about 0.7 s). A file that fails, or is over 4 MB, is left out, and no file is opened
    once ``seconds`` have passed with something read. What ``language`` reads to choose a new index's embedder."""
    import time

    files = walk(inputs, excludes, include_hidden, follow).files
    step = max(1, len(files) // n_files)
    picked = files[::step][:n_files]
    plain = formats.TEXT.suffixes
    picked.sort(key=lambda f: f.path.suffix.lower() not in plain)  # stable: spread order kept
    out: list[str] = []
    deadline = time.monotonic() + seconds
    for f in picked:
        if (out and time.monotonic() > deadline) or (len(out) >= 3 and f.path.suffix.lower() not in plain):
            break
        try:
            if f.path.stat().st_size > SAMPLE_MAX_SIZE:
                continue
            doc = load(f.path)
        except (SourceError, OSError, limits.TextLimitError):
            continue
        out.append(" ".join(p.visible for p in doc.pages)[:chars])
    return out
