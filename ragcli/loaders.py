"""Files on disk -> ``Document`` (pages of text), and directory walking.

What it does: finds the files to ingest (recursively, skipping hidden directories and
``--exclude`` patterns), hashes them, decodes text files with a documented fallback
(UTF-8, UTF-8 with BOM, UTF-16 with BOM, then cp1252 for legacy files; the codec is
recorded so citations stay exact; UTF-8 with a few damaged bytes fails with the offset of the
first one rather than becoming cp1252 mojibake), extracts PDF text per page with pypdf, and turns
HTML into visible text by blanking tags *in place* so character offsets still index the
original file.

What it does not do: sentence splitting or chunking (``chunking``), or storing anything.
Every problem with one file raises ``SourceError(path, reason)``; the caller records it
and carries on with the other files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError
from .types import Document, Page

TEXT_SUFFIXES = frozenset(
    ".txt .md .markdown .rst .py .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .log "
    ".html .htm .xml .tex .org .adoc .js .ts .java .c .h .cpp .hpp .go .rs .rb .sh .sql".split()
)
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | PDF_SUFFIXES
DEFAULT_EXCLUDES = (".*", "__pycache__", "node_modules")  # hidden dirs/files: .git, .venv, ...
DEFAULT_MAX_FILE_SIZE = 50 * 1024 * 1024  # bytes; larger files fail with a reason, memory stays bounded


@dataclass(frozen=True)
class FoundFile:
    path: Path  # absolute, not resolved through symlinks (the name the user sees)
    root: Path  # the directory argument it was found under (or the file itself)


def walk(
    inputs: Sequence[str | Path], excludes: Sequence[str] = (), include_hidden: bool = False
) -> tuple[list[FoundFile], list[SourceError]]:
    """Expand files and directories into supported files, sorted, each listed once.

    Files named explicitly are taken whatever their suffix check says about directories'
    contents, but must still be a supported type. Problems (missing paths, broken
    symlinks, loops, unreadable directories) come back as errors, never raised.
    """
    found: dict[Path, FoundFile] = {}
    errors: list[SourceError] = []
    patterns = tuple(excludes) + (() if include_hidden else DEFAULT_EXCLUDES)
    for raw in inputs:
        path = Path(raw).expanduser().absolute()
        if not os.path.lexists(path):
            errors.append(SourceError(str(path), "no such file or directory"))
        elif path.is_dir():
            for f in _walk_dir(path, patterns, errors):
                found.setdefault(f, FoundFile(f, path))
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                errors.append(SourceError(str(path), f"unsupported file type '{path.suffix}'"))
            else:
                found.setdefault(path, FoundFile(path, path))
        elif path.is_symlink():
            errors.append(SourceError(str(path), "broken symbolic link"))
        else:
            errors.append(SourceError(str(path), "not a regular file"))
    return sorted(found.values(), key=lambda f: str(f.path)), errors


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def _walk_dir(root: Path, patterns: Sequence[str], errors: list[SourceError]) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = d.stat()
        except OSError as e:
            errors.append(SourceError(str(d), _os_reason(e)))
            continue
        if (st.st_dev, st.st_ino) in seen:
            errors.append(SourceError(str(d), "symbolic link loop (directory already visited)"))
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            errors.append(SourceError(str(d), _os_reason(e)))
            continue
        for entry in entries:
            p = Path(entry.path)
            rel = str(p.relative_to(root))
            if _excluded(entry.name, rel, patterns):
                continue
            try:
                if entry.is_dir():  # follows symlinks; loops caught by the seen set
                    stack.append(p)
                elif entry.is_file():
                    if p.suffix.lower() in SUPPORTED_SUFFIXES:
                        yield p
                elif entry.is_symlink():
                    if p.suffix.lower() in SUPPORTED_SUFFIXES or not p.suffix:
                        errors.append(SourceError(str(p), _dangling_reason(p)))
            except OSError as e:
                errors.append(SourceError(str(p), _os_reason(e)))


def _dangling_reason(p: Path) -> str:
    try:
        p.stat()
    except OSError as e:
        if e.errno == 40:  # ELOOP
            return "symbolic link loop"
    return "broken symbolic link"


def _os_reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied (check the file's permissions)"
    if e.errno == 40:
        return "symbolic link loop"
    return e.strerror or str(e)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path, max_size: int = DEFAULT_MAX_FILE_SIZE) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_size:
            raise SourceError(
                str(path),
                f"file is {size / 1e6:.0f} MB, larger than --max-file-size "
                f"{max_size / 1e6:.0f} MB (raise the limit to ingest it)",
            )
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise SourceError(str(path), _os_reason(e)) from None


def load(path: Path, data: bytes | None = None, max_size: int = DEFAULT_MAX_FILE_SIZE) -> Document:
    """Read one file into a ``Document``. Raises ``SourceError`` with a reason."""
    if data is None:
        data = read_bytes(path, max_size)
    try:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = len(data), 0.0
    sha = file_sha256(data)
    if path.suffix.lower() in PDF_SUFFIXES:
        pages = _pdf_pages(path, data)
        kind, encoding = "pdf", ""
    else:
        text, encoding = decode_text(path, data)
        view = html_visible_text(text) if path.suffix.lower() in {".html", ".htm", ".xml"} else ""
        pages = (Page(1, text, view),)
        kind = "text"
    if not any(p.visible.strip() for p in pages):
        if kind == "pdf":
            raise SourceError(str(path), "no extractable text (scanned PDF?); OCR is not supported")
        raise SourceError(str(path), "empty file (no text)")
    return Document(str(path), sha, kind, encoding, pages, size, mtime)


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """Bytes -> (text, codec). ``open(path, encoding=codec, newline="").read() == text``.

    Order: BOM-marked UTF-8/UTF-16, plain UTF-8, then cp1252 (Windows' Western default,
    which also covers ASCII and most Latin-1 text). Binary content (NUL bytes, or many
    control characters) fails instead of being decoded into garbage.
    """
    if not data.strip():
        raise SourceError(str(path), "empty file (no text)")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                raise SourceError(str(path), f"starts with a {codec} byte-order mark but is not valid {codec}") from None
    if b"\x00" in data[:65536]:
        raise SourceError(str(path), "looks like a binary file (contains NUL bytes), not text")
    try:
        text, codec = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        if _mostly_utf8(data):  # cp1252 would turn its accents into mojibake ("cafÃ©")
            raise SourceError(
                str(path),
                f"not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} in otherwise UTF-8 text "
                "(damaged or mixed encodings); fix or re-save the file as UTF-8",
            ) from None
        try:
            text, codec = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise SourceError(str(path), "not valid UTF-8 nor cp1252 text; convert it to UTF-8") from None
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls > max(8, len(sample) // 50):
        raise SourceError(str(path), "looks like a binary file (many control characters), not text")
    return text, codec


_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _mostly_utf8(data: bytes) -> bool:
    """True when most non-ASCII bytes form valid UTF-8 sequences: UTF-8 with a few bad bytes.

    Real cp1252 text almost never does ("Ã©" is two UTF-8 bytes of "é").

    >>> _mostly_utf8("café crème".encode() + b"\\xff"), _mostly_utf8("café".encode("cp1252"))
    (True, False)
    """
    high = sum(1 for b in data if b >= 0x80)
    in_seqs = sum(len(m) for m in _UTF8_SEQ.findall(data))
    return high > 0 and in_seqs >= high / 2


_TAG = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)


def html_visible_text(html: str) -> str:
    """Blank out tags, comments, scripts and styles with spaces, keeping every offset.

    >>> html_visible_text("<p>Hi <b>you</b></p>")
    '   Hi    you        '

    Newlines inside removed markup are kept so line numbers stay true. Character entities
    are left as written: the quote must match the file byte for byte.
    """
    return _TAG.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), html)


def _pdf_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every odd object
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:  # pypdf raises several types for unsupported crypto
                ok = 0
            if not ok:
                raise SourceError(str(path), "PDF is encrypted with a password; decrypt it first (e.g. qpdf --decrypt)")
        pages = []
        for i, page in enumerate(reader.pages, start=1):
            pages.append(Page(i, page.extract_text() or ""))
    except SourceError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise SourceError(str(path), f"cannot read PDF ({type(e).__name__}: {str(e)[:120]}); the file is corrupt or truncated") from None
    except Exception as e:  # pypdf has no single error type for damaged files
        raise SourceError(str(path), f"cannot read PDF ({type(e).__name__}: {str(e)[:120]})") from None
    if not pages:
        raise SourceError(str(path), "PDF has no pages")
    return tuple(pages)


def page_text_from_file(source: str, page: int | None, encoding: str) -> str:
    """Re-read the text a citation indexes, exactly as the contract states (for verification)."""
    path = Path(source)
    if path.suffix.lower() in PDF_SUFFIXES:
        from pypdf import PdfReader

        return PdfReader(str(path)).pages[(page or 1) - 1].extract_text() or ""
    with open(path, encoding=encoding or "utf-8", newline="") as fh:
        return fh.read()
