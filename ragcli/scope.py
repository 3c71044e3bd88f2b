"""Scoped queries: which documents a search or a question may draw on (``--path``, ``--type``, ``--since``).

A ``Scope`` is checked here, once, at the boundary (flags, a batch line, an MCP call, the
API) and then handed to the store, which resolves it to the allowed documents in SQL and
restricts both the vector search and the full-text search to them *before* ranking
(``index.scoping``): a scoped search returns its ``k`` best passages from the allowed
documents, however far down the unscoped ranking they would be.

- ``paths``: patterns as ``rag ls`` takes them (``manage.matches``): an exact path, a
  directory (everything under it), or a glob where ``*`` also crosses ``/`` (``*COCA*``).
  Case-sensitive, like the file system; any one pattern suffices.
- ``types``: document kinds (``pdf``, ``docx``, ``text``, …) or file suffixes (``md``,
  ``py``): any one suffices. ``pdf`` includes scanned PDFs read by OCR.
- ``since``: the file's modification time as recorded at ingest, at or after this instant.

All given parts must hold. This module parses and describes; it holds no SQL.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from . import formats
from .errors import UsageError

# what ``Document.kind`` records for a file by its name (``formats``)
KINDS = ("text", *sorted(f.kind for f in formats.FORMATS if f.suffixes and f.kind != "text"))
_KIND_ALIASES = {f.kind: (f.kind, f.read_as) for f in formats.FORMATS if f.read_as}  # "pdf": pdf, pdf+ocr
SUFFIXES = tuple(sorted(s[1:] for s in formats.SUFFIXES if s[1:] not in KINDS))  # "md", "py", "htm", …
_GLOB = set("*?[")


@dataclass(frozen=True)
class Scope:
    """What a query may draw on; an empty part does not restrict."""

    paths: tuple[str, ...] = ()  # patterns, each also tried made absolute (``patterns``)
    types: tuple[str, ...] = ()  # lower-case kinds or suffixes, checked against KINDS/SUFFIXES
    since: float | None = None  # unix time: documents whose recorded mtime is >= this
    since_text: str = ""  # ``since`` as the user wrote it (for messages and JSON)

    def __bool__(self) -> bool:
        return bool(self.paths or self.types or self.since is not None)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The recorded ``Document.kind`` values ``types`` names (``pdf`` -> pdf, pdf+ocr)."""
        return tuple(k for t in self.types if t in KINDS for k in _KIND_ALIASES.get(t, (t,)))

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file suffixes ``types`` names, with their dot: (".md", ".py")."""
        return tuple(f".{t}" for t in self.types if t not in KINDS)

    def patterns(self) -> list[tuple[str, bool]]:
        """(pattern, is_glob) for each form of each ``paths`` pattern: as given and absolute.

        >>> Scope(paths=("/d/*.pdf", "/d/a/")).patterns()
        [('/d/*.pdf', True), ('/d/a', False)]
        """
        out: list[tuple[str, bool]] = []
        for p in self.paths:
            for form in dict.fromkeys((p, os.path.abspath(p))):
                glob = any(ch in _GLOB for ch in form)
                item = (form if glob else form.rstrip("/") or "/", glob)
                if item not in out:
                    out.append(item)
        return out

    def describe(self) -> str:
        """The scope as the flags that give it: ``--path '*COCA*' --type pdf``."""
        parts = [f"--path {shlex.quote(p)}" for p in self.paths]
        if self.types:
            parts.append(f"--type {','.join(self.types)}")
        if self.since is not None:
            parts.append(f"--since {shlex.quote(self.since_text)}")
        return " ".join(parts)

    def to_json(self) -> dict:
        """The filters applied, echoed in JSON output."""
        return {"path": list(self.paths), "type": list(self.types),
                "since": self.since_text or None}

    def nothing_matches(self, n_documents: int, near: tuple[str, ...] = ()) -> str:
        """The no-evidence reason for a scope that names no indexed document; ``near``: paths
        it would name ignoring case."""
        why = (f"no indexed document matches {self.describe()} (the index holds {n_documents} "
               f"document{'s' if n_documents != 1 else ''}; `rag ls` lists them)")
        if near:
            why += f"; paths are case-sensitive, and ignoring case it would match {', '.join(near)}"
        return why


def parse_scope(paths: Iterable[str] | str | None = None, types: Iterable[str] | str | None = None,
                since: str | date | None = None) -> Scope:
    """A checked ``Scope`` from flag or JSON values; a ``UsageError`` that says what is wrong.

    >>> parse_scope(["*COCA*"], "PDF, md", "2026-01-01").to_json()
    {'path': ['*COCA*'], 'type': ['pdf', 'md'], 'since': '2026-01-01'}
    """
    path_list = [paths] if isinstance(paths, str) else list(paths or ())
    for p in path_list:
        if not isinstance(p, str) or not p.strip():
            raise UsageError(f"--path takes a file, folder or glob such as '*.pdf', not {p!r}")
    raw_types = [types] if isinstance(types, str) else list(types or ())
    type_list: list[str] = []
    for t in raw_types:
        if not isinstance(t, str):
            raise UsageError(f"--type takes names such as pdf,docx, not {t!r}")
        for name in t.split(","):
            name = name.strip().lower().lstrip(".")
            if not name:
                continue
            if name not in KINDS and name not in SUFFIXES:
                raise UsageError(f"unknown document type '{name}'; known types: {', '.join(KINDS)} "
                                 f"(or a file suffix: {', '.join(SUFFIXES)})")
            if name not in type_list:
                type_list.append(name)
    if raw_types and not type_list:
        raise UsageError(f"--type names no type; known types: {', '.join(KINDS)}")
    stamp, shown = None, ""
    if isinstance(since, date):  # from the Python API: a datetime, or a date (local midnight)
        since = since.isoformat()
    if since is not None:
        if not isinstance(since, str):
            raise UsageError(f"--since takes an ISO date such as 2026-01-01, not {since!r}")
        stamp, shown = parse_since(since), since.strip()
    return Scope(tuple(dict.fromkeys(path_list)), tuple(type_list), stamp, shown)


def parse_since(text: str) -> float:
    """An ISO date (local midnight) or date-time (local time unless it carries an offset) as unix time.

    >>> parse_since("2026-01-01T00:00:00+00:00")
    1767225600.0
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since takes an ISO date or date-time such as 2026-01-01 or "
                         f"2026-01-01T09:30, not {text!r}") from None
    return when.timestamp()  # a naive value is local time, as file times are shown
