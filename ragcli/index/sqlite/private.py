"""Files and directories ragcli writes inside an index directory: private, and never through a link.

An index holds the text of private documents, so, as ssh and gpg do with their files, every
file ragcli creates there is mode 0600 and every directory 0700, whatever the umask (the mode
is set with ``fchmod`` after the create, which the umask does not touch). Every file ragcli
opens for writing there is opened with ``O_NOFOLLOW``, and every new one with ``O_EXCL`` too:
a symbolic link planted in the directory makes the open fail instead of writing through the
link to its target. Libraries that open paths themselves (numpy, FAISS, SQLite) get a file
this module created first.

``tighten`` takes group and other bits off an existing file (the owner's bits are left as
they are, so a file the user made read-only stays read-only). Nothing here opens an SQLite
database's files: closing such a descriptor would drop the process's locks on it. This module knows
nothing of what the files mean; ``directory`` and ``writer`` decide which ones to touch.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from pathlib import Path

from ...errors import IndexLocationError

FILE_MODE = 0o600
DIR_MODE = 0o700
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def link_error(path: Path) -> IndexLocationError:
    """What to say when a file ragcli would write inside the index is a symbolic link."""
    return IndexLocationError(
        f"{path} is a symbolic link: ragcli does not follow links inside an index directory (one planted "
        f"there could make it overwrite the file it points to). Remove the link (rm {shlex.quote(str(path))}), "
        f"check who else can write {path.parent}, and run the command again")


def create(path: Path) -> int:
    """A new file at ``path``, mode 0600, open for writing (an existing file or link: ``FileExistsError``)."""
    fd = os.open(path, _NEW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_no_follow(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a link at ``path`` raises ``link_error`` instead of being followed."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise link_error(path) from None
        raise


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (0600, ``O_EXCL``), write ``data`` and fsync it."""
    fd = create(path)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """``path`` as a private directory ragcli owns: created 0700 if missing; a link there is refused."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise link_error(path)
    if not stat.S_ISDIR(st.st_mode):
        raise IndexLocationError(f"{path} is a file where ragcli keeps a directory of the index; "
                                 f"move it away and run the command again")
    if st.st_uid != os.geteuid():
        raise IndexLocationError(f"{path} belongs to another user (uid {st.st_uid}): ragcli writes only into "
                                 f"directories you own. Move it away and run the command again")
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def tighten(path: Path) -> None:
    """Take group and other permission bits off the file ``path`` (absent: nothing to do).

    Only the owner's bits survive, so 0644 -> 0600, 0444 -> 0400; a link there is refused
    (``link_error``). Done by path (``lstat``, ``chmod``), never by opening the file: closing
    a descriptor of an SQLite database drops every POSIX lock this process holds on it, and a
    reader elsewhere would then checkpoint and delete the WAL under an open connection.
    (Between the two calls only someone who can write the directory could swap the file for a
    link, and ``directory`` refuses such a directory.)
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise link_error(path)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, mode & ~0o077)
