"""The writer lock, and what a failed write tells the user.

One writer at a time per index: ``writer_lock`` holds an flock on ``.lock`` (released by the
kernel if the process dies) and writes its pid there, so a second ingest can say whom it
waits for. Before it creates anything it asks ``directory.prepare`` whether the directory
may hold an index (a folder of someone's own files, or one others may write, is refused),
and it opens ``.lock`` with ``O_NOFOLLOW``, mode 0600: a link planted there is refused, never
written through. ``storage_error`` turns a failed write (disk full, a file size limit, a
read-only index) into the ``StorageError`` the CLI prints, saying that what was committed is intact.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import IndexBusyError, StorageError
from . import directory, private


@contextlib.contextmanager
def writer_lock(index_dir: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock (flock: released by the kernel if the process dies).

    ``on_wait`` is told when the lock is held by another ingest, and when an index an earlier
    ragcli wrote is adopted (``directory``)."""
    note = directory.prepare(index_dir, adopt=True)
    if note and on_wait:
        on_wait(note)
    path = index_dir / directory.LOCK
    try:
        fd = private.open_no_follow(path, os.O_RDWR | os.O_CREAT)
        os.fchmod(fd, private.FILE_MODE)  # an earlier ragcli made it 0644
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise directory.read_only_error(index_dir) from None
        raise StorageError(f"cannot create the lock file {path}: {e.strerror}; nothing was changed") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if not wait:
                raise IndexBusyError(
                    f"another ingest (pid {holder}) is writing to {index_dir}; wait for it or run without --no-wait"
                ) from None
            if on_wait:
                on_wait(f"waiting for another ingest (pid {holder}) to finish writing {index_dir} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def storage_error(e: BaseException, location: Path) -> StorageError | None:
    """The user-facing error for a failed write, or None if ``e`` is not one."""
    intact = "the index as last committed is intact"
    if isinstance(e, OSError):
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return directory.read_only_error(location, intact)
        if e.errno == errno.ENOSPC:
            return StorageError(f"disk full while writing the index at {location}; {intact}. "
                                "Free some space and run the ingest again")
        return StorageError(f"cannot write the index at {location}: {e.strerror or e}; {intact}")
    what = None
    if isinstance(e, sqlite3.OperationalError):
        msg = str(e).lower()
        if "readonly" in msg:
            return directory.read_only_error(location, intact)
        if "disk i/o" in msg or "full" in msg or "unable to open" in msg:
            what = str(e)
    elif isinstance(e, RuntimeError) and "write" in str(e).lower():  # faiss.write_index
        reason = re.search(r"\(([^()]+)\)\s*$", str(e))  # "... 99918 != 139264 (File too large)"
        what = reason.group(1) if reason else "FAISS write error"
    if what is None:
        return None
    return StorageError(f"cannot write the index at {location} ({what}): the disk may be full, or a file "
                        f"size limit reached; {intact}. Free some space and run the ingest again")
