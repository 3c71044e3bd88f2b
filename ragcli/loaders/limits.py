"""What one file may cost while it is read: how much text it yields, and parts left out.

``reading(path, max_chars)`` opens the account of one file (``load_all`` opens one for a file
and its attachments together). The readers call ``take(n)`` as each page or block of text is
made, so a file whose text grows without end (an 18 KB PDF that draws the same text a
million times, 84 MB of it) fails once it passes ``max_chars`` characters, not after all of
it is built; and ``skip(what)`` for a part they cannot read while they keep the rest (an
EPUB chapter lxml gives up on). ``allow_more_time()`` says a step is slow by nature (a page
read by OCR): whoever runs the file with a time budget may extend it (``Reading.on_slow``).

Outside an account (verification re-reading one page) all three do nothing. The account
lives in a context variable, so a reader deep inside a library callback (pypdf's text
visitor) reaches it without every reader's signature carrying it.

What it does not do: limit memory or time itself (``parse_workers`` does, around the process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ..errors import SourceError

DEFAULT_MAX_TEXT = 20_000_000  # characters per file: 14x the longest FinanceBench 10-K (1.45 M)


@dataclass
class Reading:
    """The account of one file being read."""

    path: str
    max_chars: int | None  # None: no limit
    chars: int = 0  # taken so far
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, "chapter 3 (c3.xhtml) ...: why")
    on_slow: Callable[[], None] | None = None  # called by ``allow_more_time``


_CURRENT: ContextVar[Reading | None] = ContextVar("ragcli_reading", default=None)


@contextmanager
def reading(path: str, max_chars: int | None, on_slow: Callable[[], None] | None = None) -> Iterator[Reading]:
    """Account for the text read from ``path`` inside the block (nested: the outer one counts)."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    acct = Reading(path, max_chars, on_slow=on_slow)
    token = _CURRENT.set(acct)
    try:
        yield acct
    finally:
        _CURRENT.reset(token)


class TextLimitError(SourceError):
    """The file yields more text than its limit: it fails whole (attachments included)."""


def exceeded() -> TextLimitError:
    """The error for the file being read having passed its text limit."""
    acct = _CURRENT.get()
    mb = (acct.max_chars or 0) / 1e6 if acct else 0.0
    return TextLimitError(acct.path if acct else "", f"it yields more than {mb:g} MB of text, the --max-text-size "
                                                     "limit (raise it to ingest this file)")


def take(n: int) -> None:
    """Count ``n`` more characters of text; ``SourceError`` once the file's limit is passed."""
    acct = _CURRENT.get()
    if acct is None:
        return
    acct.chars += n
    if acct.max_chars is not None and acct.chars > acct.max_chars:
        raise exceeded()


def room() -> int | None:
    """Characters the file may still yield (None: no limit)."""
    acct = _CURRENT.get()
    if acct is None or acct.max_chars is None:
        return None
    return acct.max_chars - acct.chars


def skip(path: str, what: str) -> None:
    """Record a part of the document at ``path`` that could not be read; the rest is kept."""
    acct = _CURRENT.get()
    if acct is not None:
        acct.skipped.append((path, what))


def allow_more_time() -> None:
    """The next step is slow by nature (one OCR page): let the time budget grow."""
    acct = _CURRENT.get()
    if acct is not None and acct.on_slow is not None:
        acct.on_slow()
