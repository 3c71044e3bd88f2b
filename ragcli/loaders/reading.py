"""One file's bytes, read safely: regular files only, bounded, no link where the walk followed none.

A file is opened with ``O_NONBLOCK`` (a FIFO put in its place after the walk cannot hang the
read) and ``O_NOFOLLOW`` (a link put in its place is refused), then checked on the open
descriptor: ``fstat`` must say a regular file, not one of the kernel's pseudo-files under
``/proc``, ``/sys`` or ``/dev``, and no larger than the limit; at most limit + 1 bytes are read.
A file the walk found below a directory is opened one folder at a time from that directory,
each folder with ``O_NOFOLLOW`` too, so no folder on its way can have become a link since the
walk either. Where the walk did follow a link (named on the command line, or ``--follow``), it
resolved it once and the read opens that resolved path.

What it does not do: decide which files to read (``files``) or decode them (``text``).
Problems raise ``SourceError(path, reason)`` naming the path the user sees.
"""

from __future__ import annotations

import errno
import os
import stat
from functools import lru_cache
from pathlib import Path
from types import TracebackType

from ..errors import SourceError

PSEUDO_ROOTS = ("/proc", "/sys", "/dev")  # the kernel's views, devices and pipes: never read
NEVER_READ = "ragcli never reads /proc, /sys or /dev"
_O = lambda name: getattr(os, name, 0)  # noqa: E731  (flags a platform lacks are 0)
_FILE_FLAGS = os.O_RDONLY | _O("O_NONBLOCK") | _O("O_NOFOLLOW") | _O("O_NOCTTY") | _O("O_CLOEXEC")
_DIR_FLAGS = os.O_RDONLY | _O("O_DIRECTORY") | _O("O_NOFOLLOW") | _O("O_CLOEXEC")


def pseudo_root(path: str | Path) -> str | None:
    """The pseudo-file tree a resolved ``path`` lies in ("/proc", "/sys", "/dev"), else None.

    >>> pseudo_root("/proc/self/status"), pseudo_root("/dev"), pseudo_root("/devices/x.txt")
    ('/proc', '/dev', None)
    """
    p = str(path)
    return next((r for r in PSEUDO_ROOTS if p == r or p.startswith(r + "/")), None)


def mode_name(mode: int) -> str:
    """What a non-regular file is, for messages: "a FIFO (named pipe)", "a character device", ..."""
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def not_regular(mode: int) -> str:
    return f"{mode_name(mode)}, not a regular file (ragcli reads only regular files)"


def os_reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied (check the file's permissions)"
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    return e.strerror or str(e)


class Opened:
    """A regular file open for reading: its descriptor, size and mtime (from ``fstat``)."""

    def __init__(self, path: Path, fd: int, st: os.stat_result) -> None:
        self.path, self.fd = path, fd
        self.size, self.mtime = st.st_size, st.st_mtime

    def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes: the whole file, or ``SourceError`` if it holds more (it grew)."""
        with os.fdopen(self.fd, "rb", closefd=False) as fh:
            try:
                data = fh.read(limit + 1)
            except OSError as e:
                raise SourceError(str(self.path), os_reason(e)) from None
        if len(data) > limit:
            raise SourceError(str(self.path), f"grew while being read (beyond {limit} bytes); run the ingest again")
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_regular(path: Path, *, root: Path | None = None, real: Path | None = None,
                 follow: bool = False) -> Opened:
    """Open ``path`` (the name shown in messages) if it is a regular file outside /proc, /sys, /dev.

    ``real``: the target the walk resolved a followed link to; that is opened, no link allowed.
    ``root``: the walked directory ``path`` was found below; every folder between them and the
    file itself must still be what they were (no link). ``follow``: links are followed (a path
    read again later, such as a cited source); the target must still be a regular file.
    Otherwise the last component of ``path`` must not be a link.
    """
    shown = str(path)
    try:
        if follow:
            st = os.stat(path)  # refuse a device before opening it: opening one can act on it
            if not stat.S_ISREG(st.st_mode):
                raise SourceError(shown, not_regular(st.st_mode))
            fd = os.open(path, _FILE_FLAGS & ~_O("O_NOFOLLOW"))
        elif real is not None:
            fd = os.open(real, _FILE_FLAGS)
        elif root is not None and root != path and path.is_relative_to(root):
            fd = _open_below(root, path.relative_to(root).parts, shown)
        else:
            fd = os.open(path, _FILE_FLAGS)
    except OSError as e:
        raise SourceError(shown, _open_reason(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped for a FIFO or a device since it was looked at
            raise SourceError(shown, not_regular(st.st_mode))
        where = _pseudo_of(fd, st)
        if where:
            raise SourceError(shown, f"is in {where}: {NEVER_READ}")
    except BaseException:
        os.close(fd)
        raise
    return Opened(path, fd, st)


def _open_below(root: Path, parts: tuple[str, ...], shown: str) -> int:
    """The file ``root/parts...``, opened folder by folder with no link allowed below ``root``."""
    fd = os.open(root, os.O_RDONLY | _O("O_DIRECTORY") | _O("O_CLOEXEC"))  # the user's own argument
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise SourceError(shown, f"the folder {part!r} on its way is a symbolic link now: "
                                      "not followed (use --follow)") from None
                raise
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _open_reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:  # O_NOFOLLOW met a link where the walk saw none
        return "it is a symbolic link now: not followed (use --follow)"
    if e.errno == errno.ENXIO:  # a socket opened for reading
        return not_regular(stat.S_IFSOCK)
    return os_reason(e)


@lru_cache(maxsize=1)
def _pseudo_devices() -> dict[int, str]:
    """st_dev of the pseudo file systems mounted here (those not on the root file system)."""
    try:
        root_dev = os.stat("/").st_dev
    except OSError:
        return {}
    out = {}
    for r in PSEUDO_ROOTS:
        try:
            dev = os.stat(r).st_dev
        except OSError:
            continue
        if dev != root_dev:
            out[dev] = r
    return out


def _pseudo_of(fd: int, st: os.stat_result) -> str | None:
    """Where an open regular file lies, when that is /proc, /sys or /dev: by its device, and by
    the path the kernel says the descriptor has (not the name, which may have been a link)."""
    if st.st_dev in _pseudo_devices():
        return _pseudo_devices()[st.st_dev]
    try:
        return pseudo_root(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # no /proc here (macOS): the device check above is what there is
        return None
