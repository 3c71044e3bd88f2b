"""Which files to ingest, and their bytes: directory walking, size limit, hashing.

What it does: finds the files to ingest (recursively, skipping hidden directories and
``--exclude`` patterns), reads them under the ``--max-file-size`` limit (``reading``: regular
files only, no link where none was followed, never /proc, /sys or /dev) and hashes them.

As ripgrep does, a symbolic link met while walking a directory is not followed unless
``follow`` (``--follow``); a link named as an input is followed. Either way the walk resolves
a followed link once and records where it led (``FoundFile.real``), which is what is read.
What the walk meets and does not take (links not followed, FIFOs, sockets, devices, files of
no supported type: a suffix not in ``formats.SUFFIXES``) comes back as *skipped*, with the
reason; what it cannot do (a missing input, a broken link it was asked to follow, an
unreadable folder, a name that is not UTF-8) comes back as errors. Files without a suffix are taken too: the caller reads them
when they are text (``untyped_reason``).

What it does not do: turn bytes into text (the format modules beside it). Problems come back
as ``SourceError(path, reason)``; the caller records them and carries on with the other files.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceError
from ..formats import SUFFIXES
from .reading import NEVER_READ, Opened, mode_name, not_regular, open_regular, os_reason, pseudo_root

DEFAULT_EXCLUDES = (".*", "__pycache__", "node_modules")  # hidden dirs/files: .git, .venv, ...
DEFAULT_MAX_FILE_SIZE = 50 * 1024 * 1024  # bytes; larger files fail with a reason, memory stays bounded

LINK_NOT_FOLLOWED = "symbolic link, not followed (use --follow)"
OWN_INDEX = "the index being written (ragcli never ingests its own index)"
NOT_UTF8 = ("name is not valid UTF-8 (shown with \\x escapes); rename it to UTF-8 to ingest it "
            "(e.g. convmv -f latin1 -t utf8 --notest NAME)")


@dataclass(frozen=True)
class FoundFile:
    path: Path  # absolute, not resolved through symlinks (the name the user sees)
    root: Path  # the directory argument it was found under (or the file itself)
    real: Path | None = None  # where a followed link led (resolved once, by the walk); None: no link on the way
    typed: bool = True  # its suffix names a format; False: it has none, and is read if it is text

    def open(self) -> Opened:
        """The file, opened as the walk found it (``reading.open_regular``)."""
        return open_regular(self.path, root=self.root, real=self.real)


@dataclass(frozen=True)
class Walk:
    files: list[FoundFile]  # sorted by path, each once
    errors: list[SourceError] = field(default_factory=list)  # inputs or folders that could not be walked
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): met, not taken
    dirs: list[Path] = field(default_factory=list)  # the directory inputs walked


def escaped(name: str | Path) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 as ``\\x`` escapes.

    >>> escaped(os.fsdecode(b"/docs/caf\\xe9.txt")), escaped("/docs/café.txt")
    ('/docs/caf\\\\xe9.txt', '/docs/café.txt')
    """
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False
    return True


class Scope:
    """The part of a walk that matters (``rag ingest --watch``: the paths that changed): the
    files at or under ``paths``, and the folders on the way to them.

    >>> s = Scope(["/d/a", "/d/b/x.md"])
    >>> s.takes("/d/a/y.md"), s.takes("/d/b/x.md"), s.takes("/d/b/z.md"), s.enters("/d/b"), s.enters("/d/c")
    (True, True, False, True, False)
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = {os.path.abspath(p) for p in paths}
        self.on_the_way = {str(a) for p in self.paths for a in Path(p).parents}

    def takes(self, path: str | Path) -> bool:
        """Whether ``path`` is one of the paths or under one."""
        p = str(path)
        return p in self.paths or any(str(a) in self.paths for a in Path(p).parents)

    def enters(self, folder: str | Path) -> bool:
        """Whether the walk must look into ``folder`` (it leads to a path, or is under one)."""
        return str(folder) in self.on_the_way or self.takes(folder)


def walk(inputs: Sequence[str | Path], excludes: Sequence[str] = (), include_hidden: bool = False,
         follow: bool = False, *, within: Scope | None = None, never: Sequence[Path] = ()) -> Walk:
    """Expand files and directories into the files to read, sorted, each listed once.

    Inputs are taken as named: a link is followed, a file of no supported type, a FIFO or a
    device is an error. Inside a directory, links are followed only with ``follow``; what is
    not taken is skipped with its reason. Nothing is raised.
    ``within``: only what that scope takes is walked and reported. ``never``: folders that are
    not walked wherever they turn up (the index being written), skipped with ``OWN_INDEX``.
    """
    out = Walk([])
    found: dict[Path, FoundFile] = {}
    patterns = tuple(excludes) + (() if include_hidden else DEFAULT_EXCLUDES)
    avoid = set()
    for d in never:
        with contextlib.suppress(OSError):
            st = os.stat(d)
            avoid.add((st.st_dev, st.st_ino))
    for raw in inputs:
        path = Path(raw).expanduser().absolute()
        if within is not None and not within.enters(path):
            continue
        if not _is_utf8(str(path)):
            out.errors.append(SourceError(escaped(path), f"file {NOT_UTF8}"))
            continue
        if not os.path.lexists(path):
            out.errors.append(SourceError(str(path), "no such file or directory"))
            continue
        try:
            st = path.stat()
        except OSError as e:
            out.errors.append(SourceError(str(path), _dangling_reason(path) if path.is_symlink() else os_reason(e)))
            continue
        real = Path(os.path.realpath(path))
        where = pseudo_root(real)
        if where:
            link = f" (a link to {real})" if real != path else ""
            out.errors.append(SourceError(str(path), f"is in {where}{link}: {NEVER_READ}"))
        elif stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) in avoid:
            out.errors.append(SourceError(str(path), OWN_INDEX))
        elif stat.S_ISDIR(st.st_mode):
            out.dirs.append(path)
            _walk_dir(path, patterns, follow, found, out, within, avoid)
        elif not stat.S_ISREG(st.st_mode):
            out.errors.append(SourceError(str(path), not_regular(st.st_mode)))
        elif path.suffix and path.suffix.lower() not in SUFFIXES:
            out.errors.append(SourceError(str(path), f"unsupported file type '{path.suffix}'"))
        else:
            found.setdefault(path, FoundFile(path, path, real if path.is_symlink() else None, bool(path.suffix)))
    out.files.extend(sorted(found.values(), key=lambda f: str(f.path)))
    return out


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def excluded(path: str | Path, root: str | Path, excludes: Sequence[str] = (), include_hidden: bool = False) -> bool:
    """Whether a walk of ``root`` leaves ``path`` out by its name or a folder's on the way
    (``--exclude``, hidden names); a path not under ``root`` is not excluded by it.

    >>> excluded("/d/.git/x.md", "/d"), excluded("/d/a/x.md", "/d", ["a"]), excluded("/d/a/x.md", "/d")
    (True, True, False)
    """
    patterns = tuple(excludes) + (() if include_hidden else DEFAULT_EXCLUDES)
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return any(_excluded(name, os.path.join(*parts[: i + 1]), patterns) for i, name in enumerate(parts))


def _walk_dir(root: Path, patterns: Sequence[str], follow: bool, found: dict[Path, FoundFile], out: Walk,
              within: Scope | None = None, avoid: set[tuple[int, int]] | frozenset = frozenset()) -> None:
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, Path | None]] = [(root, None)]  # (shown folder, where a followed link led)
    while stack:
        d, d_real = stack.pop()
        try:
            st = os.stat(d_real or d)
        except OSError as e:
            out.errors.append(SourceError(str(d), os_reason(e)))
            continue
        if (st.st_dev, st.st_ino) in seen:
            out.errors.append(SourceError(str(d), "symbolic link loop (directory already visited)"))
            continue
        if (st.st_dev, st.st_ino) in avoid:
            out.skipped.append((str(d), OWN_INDEX))
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(d_real or d), key=lambda e: e.name)
        except OSError as e:
            out.errors.append(SourceError(str(d), os_reason(e)))
            continue
        for entry in entries:
            p = d / entry.name
            if within is not None and not within.enters(p):
                continue
            if _excluded(entry.name, str(p.relative_to(root)), patterns):
                continue
            real = d_real / entry.name if d_real else None
            try:
                if not _is_utf8(entry.name):
                    folder = entry.is_dir(follow_symlinks=False)
                    out.errors.append(SourceError(escaped(p), f"folder {NOT_UTF8} (nothing in it was read)"
                                                  if folder else f"file {NOT_UTF8}"))
                    continue
                if entry.is_symlink():
                    if not follow:
                        out.skipped.append((str(p), LINK_NOT_FOLLOWED))
                        continue
                    try:
                        mode = os.stat(p).st_mode
                    except OSError:
                        out.errors.append(SourceError(str(p), _dangling_reason(p)))
                        continue
                    real = Path(os.path.realpath(p))
                    where = pseudo_root(real)
                    if where:
                        out.skipped.append((str(p), f"symbolic link into {where} ({NEVER_READ})"))
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    mode = stat.S_IFDIR
                elif entry.is_file(follow_symlinks=False):
                    mode = stat.S_IFREG
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as e:
                out.errors.append(SourceError(str(p), os_reason(e)))
                continue
            if stat.S_ISDIR(mode):
                stack.append((p, real))
            elif within is not None and not within.takes(p):
                continue
            elif not stat.S_ISREG(mode):
                out.skipped.append((str(p), f"{mode_name(mode)}, not a regular file"))
            elif p.suffix and p.suffix.lower() not in SUFFIXES:
                out.skipped.append((str(p), f"unsupported file type '{p.suffix.lower()}'"))
            else:
                found.setdefault(p, FoundFile(p, root, real, bool(p.suffix)))


def _dangling_reason(p: Path) -> str:
    try:
        p.stat()
    except OSError as e:
        if e.errno == 40:  # ELOOP
            return "symbolic link loop"
    return "broken symbolic link"


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def too_large(path: Path, size: int, max_size: int) -> SourceError:
    return SourceError(str(path), f"file is {size / 1e6:.0f} MB, larger than --max-file-size "
                                  f"{max_size / 1e6:.0f} MB (raise the limit to ingest it)")


def read_bytes(path: Path, max_size: int = DEFAULT_MAX_FILE_SIZE, *, root: Path | None = None,
               real: Path | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_size`` bytes, read as the walk found it
    (``root``, ``real``: see ``reading.open_regular``); else ``SourceError``."""
    with open_regular(path, root=root, real=real) as f:
        if f.size > max_size:
            raise too_large(path, f.size, max_size)
        return f.read(max_size)
