"""``rag verify``: re-check citations against their files by the documented recipes alone.

Input is what ``rag ask --json`` prints: one answer object, several as JSON lines, or a single
citation object (anything with ``source`` and ``quote``). Each citation is checked the way a
reader of docs/formats.md would check it by hand:

1. read the cited file (for ``MAIL.eml#NAME``, the message, then ``recipes.attachment``);
2. its bytes must hash to the citation's ``sha256``;
3. the recipe its ``extraction`` names (``recipes.RECIPES``) rebuilds the page text, and
   ``text[start:end] == quote``;
4. ``line_start`` / ``line_end``, when given, are the lines of the quote's first and last
   character: 1 + the newlines before them.

No ragcli loader, index or ``verify`` code is involved: only ``recipes`` and the libraries each
recipe names, so this check stands apart from the code that made the citation.

Files are read carefully, because a citation can name any path: only regular files (a FIFO or a
device is refused before it is opened, and the open is non-blocking and re-checked with
``fstat``), never anything that resolves into /proc, /sys or /dev, at most ``max_size`` bytes,
and zip-based files only when their directory declares at most ``MAX_UNPACKED`` bytes.

What it does not do: print anything (``cli``), or trust any field it is given beyond what it
checks: a citation that cannot be read, or lacks a field, fails with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import recipes
from .errors import UsageError

OK, FAILED, UNCHECKABLE = "ok", "failed", "not checkable"
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")  # kernel and device files, never a document
MAX_UNPACKED = 256 * 1024 * 1024  # bytes a zip-based file (.docx, .epub, ...) may declare in all
MAX_MEMBERS = 20_000


class Unreadable(Exception):
    """A cited file that is not read, and why (a user-facing phrase)."""


@dataclass(frozen=True)
class Result:
    """The outcome for one citation."""

    answer: int  # 1-based position of its answer (or citation object) in the input
    id: object  # the citation's own ``id`` (the n of "[n]"), as given
    source: str
    page: object
    line_start: object
    line_end: object
    status: str  # OK | FAILED | UNCHECKABLE
    reason: str = ""  # why it failed or could not be checked; "" when OK

    def to_json(self) -> dict:
        return {"answer": self.answer, "id": self.id, "source": self.source, "page": self.page,
                "line_start": self.line_start, "line_end": self.line_end, "status": self.status,
                "reason": self.reason}


def citations_of(data: bytes) -> list[tuple[int, Mapping]]:
    """(answer number, citation) for every citation in ``rag ask --json`` output; ``UsageError``
    when the input is not such output or holds no citation at all.

    >>> len(citations_of(b'{"citations": [{"source": "a", "quote": "b"}]}'))
    1
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"the input is not UTF-8 text (byte {e.start}); give it the output of `rag ask --json`") from None
    if not text.strip():
        raise UsageError("the input is empty; give it the output of `rag ask --json` (on standard input or as FILE)")
    try:
        objects = [json.loads(text)]
    except json.JSONDecodeError:
        objects = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    objects.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UsageError(f"line {n} of the input is not JSON ({e.msg}); give it the output "
                                     "of `rag ask --json`") from None
    out: list[tuple[int, Mapping]] = []
    for n, obj in enumerate(objects, start=1):
        if isinstance(obj, Mapping) and isinstance(obj.get("citations"), list):
            out += [(n, c if isinstance(c, Mapping) else {}) for c in obj["citations"]]
        elif isinstance(obj, Mapping) and "quote" in obj and "source" in obj:
            out.append((n, obj))
        else:
            raise UsageError(f"object {n} of the input is neither a `rag ask --json` answer (no \"citations\" "
                             "list) nor a citation (no \"source\" and \"quote\")")
    if not out:
        raise UsageError("the input holds no citations to verify (a no_evidence answer has none)")
    return out


def _forbidden(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + "/") for root in FORBIDDEN_ROOTS)


def read_regular_file(path: str, max_size: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_size`` bytes outside
    /proc, /sys and /dev; else ``Unreadable`` saying why."""
    if _forbidden(path):
        raise Unreadable("it resolves into /proc, /sys or /dev, which hold no documents; not read")
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise Unreadable("not a regular file (a FIFO, device or directory); not read")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise Unreadable(f"cannot be read ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Unreadable("changed into something other than the regular file it was while being opened; not read")
        if st.st_size > max_size:
            raise Unreadable(f"is {st.st_size / 1e6:.1f} MB, larger than --max-file-size {max_size / 1e6:.0f} MB "
                             "(raise the limit to check it)")
        chunks, left = [], max_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise Unreadable(f"cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_size:
        raise Unreadable(f"grew past --max-file-size {max_size / 1e6:.0f} MB while being read")
    return data


def _zip_too_big(data: bytes) -> str:
    """Why a zip-based file is not unpacked ("" when it may be): its directory's declared sizes."""
    if not data.startswith(b"PK"):
        return ""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ""  # not a zip after all: the recipe's library says what it is
    total = sum(i.file_size for i in infos)
    if len(infos) > MAX_MEMBERS or total > MAX_UNPACKED:
        return f"it would unpack {len(infos)} parts, {total / 1e6:.0f} MB (a zip bomb?); not unpacked"
    return ""


def split_attachment(source: str) -> tuple[str, str]:
    """("/m/x.eml", "a.pdf") for an attachment's source, else (source, ""): what follows the
    first ``.eml#`` names the attachment.

    >>> split_attachment("/m/x.EML#a.pdf"), split_attachment("/m/notes.txt")
    (('/m/x.EML', 'a.pdf'), ('/m/notes.txt', ''))
    """
    i = source.lower().find(".eml#")
    return (source, "") if i < 0 else (source[: i + 4], source[i + 5 :])


def _int(c: Mapping, key: str, optional: bool = False) -> int | None:
    v = c.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"its {key!r} is {'missing' if v is None else repr(v)}, not a whole number")
    return v


def _str(c: Mapping, key: str) -> str:
    v = c.get(key)
    if not isinstance(v, str) or (not v and key != "quote"):
        raise ValueError(f"its {key!r} is {'missing' if v is None else repr(v)}, not a text")
    return v


def _snippet(s: str, n: int = 60) -> str:
    return json.dumps(s if len(s) <= n else s[:n] + "…", ensure_ascii=False)


class Checker:
    """Checks citations, reading each file once and rebuilding each cited page once."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._bytes: dict[str, bytes | Unreadable] = {}
        self._texts: dict[tuple, str | BaseException] = {}

    def _data(self, source: str) -> bytes:
        path, name = split_attachment(source)
        if path not in self._bytes:
            try:
                self._bytes[path] = read_regular_file(path, self.max_size)
            except Unreadable as e:
                self._bytes[path] = e
        got = self._bytes[path]
        if isinstance(got, Unreadable):
            raise got
        if not name:
            return got
        try:
            return recipes.attachment(got, name)
        except StopIteration:
            raise Unreadable(f"the message has no attachment named {name!r}") from None
        except Exception as e:
            raise Unreadable(f"the message cannot be read ({type(e).__name__}: {str(e)[:120]})") from None

    def _text(self, source: str, data: bytes, extraction: str, page: int | None, encoding: str) -> str:
        key = (source, extraction, page, encoding)
        if key not in self._texts:
            try:
                too_big = _zip_too_big(data)
                if too_big:
                    raise Unreadable(too_big)
                self._texts[key] = recipes.RECIPES[extraction](data, page, encoding)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt | SystemExit):
                    raise
                self._texts[key] = e
        got = self._texts[key]
        if isinstance(got, BaseException):
            raise got
        return got

    def problem(self, c: Mapping) -> tuple[str, str]:
        """(OK, "") when the citation verifies, else (FAILED or UNCHECKABLE, the reason)."""
        try:
            source, quote, sha = _str(c, "source"), _str(c, "quote"), _str(c, "sha256")
            start, end = _int(c, "start"), _int(c, "end")
            page = _int(c, "page", optional=True)
            line_start, line_end = _int(c, "line_start", optional=True), _int(c, "line_end", optional=True)
            extraction = _str(c, "extraction")
            encoding = c.get("encoding") or "utf-8"
            if not isinstance(encoding, str):
                raise ValueError(f"its 'encoding' is {encoding!r}, not a text")
        except ValueError as e:
            return FAILED, f"not a citation `rag ask --json` writes: {e}"
        if extraction not in recipes.RECIPES:
            return FAILED, f"no documented recipe for extraction {extraction!r} (docs/formats.md lists them)"
        if not 0 <= start <= end:
            return FAILED, f"its offsets [{start}:{end}] are not a range"
        try:
            data = self._data(source)
        except Unreadable as e:
            return FAILED, str(e)
        if hashlib.sha256(data).hexdigest() != sha.lower():
            return FAILED, "the file changed since it was ingested (its sha256 differs); run `rag ingest` and ask again"
        try:
            text = self._text(source, data, extraction, page, encoding)
        except ImportError as e:
            extra = recipes.EXTRA_OF.get(extraction)
            need = f"install {extra}" if extra else f"install the Python package {e.name or e}"
            return UNCHECKABLE, f"the {extraction} recipe needs a library that is not installed here: {need}"
        except Unreadable as e:
            return FAILED, str(e)
        except Exception as e:
            return FAILED, f"the {extraction} recipe cannot rebuild page {page} ({type(e).__name__}: {str(e)[:120]})"
        got = text[start:end]
        if got != quote:
            return FAILED, f"text[{start}:{end}] is {_snippet(got)}, not the quote {_snippet(quote)}"
        lines = (text.count("\n", 0, start) + 1, text.count("\n", 0, max(start, end - 1)) + 1)
        if line_start is not None and line_end is not None and (line_start, line_end) != lines:
            return FAILED, f"the quote is on lines {lines[0]}-{lines[1]}, not {line_start}-{line_end}"
        return OK, ""


def check(citations: Sequence[tuple[int, Mapping]], max_size: int) -> list[Result]:
    """One ``Result`` per citation, in input order."""
    checker = Checker(max_size)
    out = []
    for n, c in citations:
        status, reason = checker.problem(c)
        out.append(Result(n, c.get("id"), str(c.get("source", "")), c.get("page"), c.get("line_start"),
                          c.get("line_end"), status, reason))
    return out
