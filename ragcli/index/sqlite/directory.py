"""Whether a directory may hold an index this user writes: the marker, its owner and modes.

ragcli writes (and, tidying up, deletes) files in an index directory, so before any write it
makes sure the directory is one it may use. ``prepare`` refuses, with an ``IndexLocationError``
that says what to do instead:

- a path that is a file (or anything else that is not a directory);
- a directory another user owns, or one that group or others may write (someone else could
  plant files, or links, there), as ssh's ``StrictModes`` refuses a shared ``~/.ssh``;
- a non-empty directory without the marker ``RAGCLI_INDEX`` that holds no index an earlier
  ragcli wrote: ``--index ~/music`` must not fill (or tidy) someone's own folder.

A directory ragcli creates, or finds empty, gets the marker at once (and mode 0700). An index
written by an earlier ragcli (no marker, but its database, ``CURRENT`` or ``index.sqlite``,
has ragcli's tables) is adopted by the first writer that opens it: marked, made private, and
told so in the ingest's notes; files there its database does not name are left alone.

The marker is a small JSON file: what the directory is, the format, when it was created. Its
presence is what counts. The directory itself may be a link the user made (``--index`` names
it; its target is checked); links *inside* it are refused (``private``). Readers check none of
this: they write nothing, and ``rag search`` stays one open and a few reads.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import shlex
import sqlite3
import stat
import time
from pathlib import Path
from urllib.parse import quote

from ...errors import IndexLocationError, StorageError
from ..base import FORMAT_VERSION
from . import private, schema

MARKER = "RAGCLI_INDEX"
LOCK = ".lock"
_RAGCLI_TABLES = {"meta", "documents", "chunks", "spans"}  # in every format ragcli has written


def prepare(index_dir: Path, adopt: bool) -> str | None:
    """Make sure ragcli may write an index in ``index_dir`` (created if missing), or refuse.

    Marks a new or empty directory. An unmarked index of an earlier ragcli is accepted; with
    ``adopt`` (the writer, under the lock) it is also marked, and the note saying so returned.
    """
    st = _stat_or_create(index_dir)
    _check_owner_and_type(index_dir, st)
    if _marked(index_dir):
        _check_not_shared(index_dir, st)
        _check_writable(index_dir)
        _make_private(index_dir, st)
        return None
    if _is_empty(index_dir):
        _check_writable(index_dir)
        _make_private(index_dir, st)  # ours and empty: nothing anyone planted can be in it yet
        if _is_empty(index_dir):
            _mark(index_dir, adopted=False)
            return None
    if not _earlier_index(index_dir):
        raise _not_an_index(index_dir)
    _check_not_shared(index_dir, st)
    _check_writable(index_dir)
    if not adopt:
        return None
    _make_private(index_dir, st)
    _mark(index_dir, adopted=True)
    return _adopted_note(index_dir)


def is_file_not_dir(index_dir: Path) -> IndexLocationError | None:
    """The error for an ``--index`` that names a file (for readers, on their failure path only)."""
    try:
        st = os.stat(index_dir)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    return _file_error(index_dir)


def _file_error(index_dir: Path) -> IndexLocationError:
    return IndexLocationError(
        f"{index_dir} is a file, not an index directory: give --index a directory (a new or empty one "
        f"for a new index, or the one an index was built in)")


def _stat_or_create(index_dir: Path) -> os.stat_result:
    try:
        return os.stat(index_dir)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        raise IndexLocationError(f"cannot use {index_dir} as an index directory: part of that path is a file. "
                                 f"Give --index a directory") from None
    except PermissionError:
        raise StorageError(f"cannot reach the index directory {index_dir}: permission denied. "
                           f"Use a directory you can write") from None
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)  # parents as `mkdir -p` makes them
        with contextlib.suppress(FileExistsError):  # another ingest made it a moment ago
            os.mkdir(index_dir, private.DIR_MODE)
    except NotADirectoryError:
        raise IndexLocationError(f"cannot create the index directory {index_dir}: part of that path is a file. "
                                 f"Give --index a directory") from None
    except OSError as e:
        raise StorageError(f"cannot create the index directory {index_dir}: {e.strerror}. "
                           f"Use a directory you can write") from None
    return os.stat(index_dir)


def _check_owner_and_type(index_dir: Path, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise _file_error(index_dir)
    me = os.geteuid()
    if st.st_uid != me:
        raise IndexLocationError(
            f"the index directory {index_dir} belongs to another user (uid {st.st_uid}; you are {_user(me)}): "
            f"ragcli writes only into index directories you own, and will not write there. Use one of your "
            f"own (a new --index directory), or, if it should be yours, take it back: "
            f"chown -R {_user(me)} {_q(index_dir)}")


def _check_not_shared(index_dir: Path, st: os.stat_result) -> None:
    if st.st_mode & 0o022:
        raise IndexLocationError(
            f"the index directory {index_dir} can be written by other users (mode {stat.S_IMODE(st.st_mode):03o}): "
            f"one of them could plant files or links there for ragcli to write through. Make it private and "
            f"check what is in it: chmod 700 {_q(index_dir)}; then run the command again")


def _check_writable(index_dir: Path) -> None:
    if not os.access(index_dir, os.W_OK):
        raise read_only_error(index_dir)


def read_only_error(index_dir: Path, intact: str = "nothing was changed") -> StorageError:
    """What an ingest says about an index it may read but not write."""
    return StorageError(
        f"cannot write the index at {index_dir}: it is read-only (to you, or on a read-only file system); "
        f"{intact}. `rag search`, `rag ask` and `rag status` can still read it. To ingest, make it "
        f"writable (chmod -R u+w {_q(index_dir)}) or use another --index directory")


def _make_private(index_dir: Path, st: os.stat_result) -> None:
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(index_dir, stat.S_IMODE(st.st_mode) & ~0o077)
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EPERM, errno.EACCES):
                raise read_only_error(index_dir) from None
            raise


def _marked(index_dir: Path) -> bool:
    try:
        st = os.lstat(index_dir / MARKER)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise private.link_error(index_dir / MARKER)
    return stat.S_ISREG(st.st_mode)


def _is_empty(index_dir: Path) -> bool:
    """Nothing in it, or only the lock file an earlier ragcli's writer created first."""
    return not (set(os.listdir(index_dir)) - {LOCK})


def _mark(index_dir: Path, adopted: bool) -> None:
    """Write the marker (``O_EXCL``: two writers marking at once both succeed, one file results)."""
    body = {"ragcli_index": "sqlite", "format": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "this directory is a ragcli index: ragcli writes and deletes only files it records here"}
    if adopted:
        body["adopted"] = "written by an earlier ragcli, marked when a newer one first wrote to it"
    try:
        private.write_new(index_dir / MARKER, (json.dumps(body) + "\n").encode())
    except FileExistsError:
        if not _marked(index_dir):
            raise private.link_error(index_dir / MARKER) from None
        return
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise read_only_error(index_dir) from None
        raise
    schema.fsync_dir(index_dir)


def _earlier_index(index_dir: Path) -> bool:
    """Whether the directory holds a database an earlier ragcli wrote (its tables are there)."""
    try:
        db = schema.current_db(index_dir)
        st = os.lstat(db)
    except (ValueError, OSError):
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    return _RAGCLI_TABLES <= _tables(db)


def _tables(db: Path) -> set[str]:
    """Table names in ``db``, read without writing anything next to it: the main file as it is
    (``immutable``), then, only if that shows none and a WAL is there, through the WAL."""
    uri = f"file:{quote(str(db))}?mode=ro"
    found: set[str] = set()
    for extra in ("&immutable=1", ""):
        if not extra and not Path(f"{db}-wal").exists():
            break
        try:
            con = sqlite3.connect(uri + extra, uri=True)
            try:
                found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                con.close()
        except sqlite3.Error:
            found = set()
        if found:
            break
    return found


def _adopted_note(index_dir: Path) -> str:
    note = (f"adopted {index_dir}, an index an earlier ragcli wrote: marked it as a ragcli index ({MARKER}) "
            f"and made it private (owner only)")
    try:
        db = schema.current_db(index_dir)
        con = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)
        try:
            names = {n for (name,) in con.execute("SELECT name FROM segments")
                     for n in (f"{name}.vec.npy", f"{name}.ids.npy")}
            ann = con.execute("SELECT value FROM meta WHERE key = 'ann'").fetchone()
            if ann:
                names.add(json.loads(ann[0])["file"])
        finally:
            con.close()
        strays = [n for n in os.listdir(index_dir / schema.SEGMENTS) if n not in names]
    except (sqlite3.Error, OSError, ValueError, KeyError):
        return note
    if strays:
        note += (f"; {len(strays)} file{'s' if len(strays) != 1 else ''} in {index_dir / schema.SEGMENTS} are not part of the index and were left "
                 f"alone (ragcli cannot prove it wrote them): delete them yourself if they are not yours")
    return note


def _not_an_index(index_dir: Path) -> IndexLocationError:
    try:
        db = schema.current_db(index_dir)
        has_db = db.exists()
    except (ValueError, OSError):
        db, has_db = None, False
    why = (f"its {db.name} is not a database ragcli wrote, and it has no {MARKER} file" if has_db and db
           else f"it has no {MARKER} file")
    return IndexLocationError(
        f"{index_dir} is not empty and is not a ragcli index ({why}): ragcli will not write an index among "
        f"other files, nor tidy any of them away. Choose a new or empty directory for the index "
        f"(--index NEW_DIR), or leave --index out to use the default one")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _q(p: Path) -> str:
    return shlex.quote(str(p))
