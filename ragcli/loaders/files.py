"""Which files to ingest, and their bytes: directory walking, size limit, hashing.

What it does: finds the files to ingest (recursively, skipping hidden directories and
``--exclude`` patterns, keeping only suffixes some loader reads), reads them under the
``--max-file-size`` limit and hashes them.

What it does not do: turn bytes into text (the format modules beside it). Problems come back
as ``SourceError(path, reason)``; the caller records them and carries on with the other files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError

TEXT_SUFFIXES = frozenset(
    ".txt .md .markdown .rst .py .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .log "
    ".xml .tex .org .adoc .js .ts .java .c .h .cpp .hpp .go .rs .rb .sh .sql".split()
)
# suffix -> Document.kind for everything that is not plain text
FORMAT_SUFFIXES = {
    ".pdf": "pdf", ".html": "html", ".htm": "html", ".xhtml": "html", ".docx": "docx", ".pptx": "pptx",
    ".epub": "epub", ".odt": "odt", ".odp": "odp", ".eml": "eml", ".ipynb": "ipynb",
}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | frozenset(FORMAT_SUFFIXES)
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
