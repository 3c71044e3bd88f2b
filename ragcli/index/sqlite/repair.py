"""Tidying and repairing an index directory: the files ragcli recorded, damaged databases.

- ``remove_orphans``: deletes what the kept databases' records prove ragcli wrote and no
  committed state uses: the paths in their ``loose_files`` (the intents of batches and
  merges that never committed, segments merged away, an old approximate index, the database
  a rebuild replaced, with the files that database named) and ragcli's temporary files by
  their exact names (``schema.TEMP_FILES``). Nothing else, whatever its name: a file ragcli
  has no record of stays where it is.
- ``discard_db``: delete one database ragcli recorded (an unfinished rebuild begun with other
  settings, or the database a rebuild replaced) and the files it names.
- ``make_private``: take group and other bits off the files an earlier ragcli wrote 0644.
- ``set_aside_if_damaged``: before a ``--rebuild``, a database that cannot be read is
  renamed aside (kept for inspection) so the rebuild starts clean.

All run only under the writer lock. Readers never delete anything.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from . import directory, private, schema
from .vectors import seg_dir

# what a loose_files path may look like: a plain name in the index directory or in segments/
_SAFE_PATH = re.compile(r"(segments/)?[A-Za-z0-9][A-Za-z0-9._-]*")
DISCARDED = "discarded"  # meta key of a database being discarded: never resumed


def _records(db: Path) -> tuple[set[str], list[tuple[str, str]]]:
    """(paths the committed state of ``db`` uses, its ``loose_files`` rows), relative to the index."""
    con = schema.connect(db)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        named: set[str] = set()
        if "segments" in tables:
            for (name,) in con.execute("SELECT name FROM segments"):
                named.update({f"{schema.SEGMENTS}/{name}.vec.npy", f"{schema.SEGMENTS}/{name}.ids.npy"})
            row = con.execute("SELECT value FROM meta WHERE key = 'ann'").fetchone()
            if row:
                named.add(f"{schema.SEGMENTS}/{json.loads(row[0])['file']}")
        loose = list(con.execute("SELECT path, kind FROM loose_files")) if "loose_files" in tables else []
        return named, [(p, k) for p, k in loose if _SAFE_PATH.fullmatch(p)]
    finally:
        con.close()


def used_by(dbs: Sequence[Path]) -> set[str]:
    """The paths the committed states of ``dbs`` use (an unreadable or missing one adds none)."""
    used: set[str] = set()
    for db in dbs:
        if db.is_file():
            with contextlib.suppress(sqlite3.DatabaseError, KeyError, ValueError):
                used |= _records(db)[0]
    return used


def remove_orphans(index_dir: Path, keep_dbs: Sequence[Path]) -> None:
    """Delete the files the ``loose_files`` of ``keep_dbs`` record and none of them uses."""
    named: set[str] = set()
    loose: dict[Path, list[tuple[str, str]]] = {}
    for db in keep_dbs:
        try:
            used, loose[db] = _records(db)
        except (sqlite3.DatabaseError, KeyError, ValueError):
            return  # cannot tell what is used: delete nothing
        named |= used
    kept = {p.name for p in keep_dbs}
    for db, rows in loose.items():
        done: list[str] = []
        for path, kind in rows:
            if kind == "db":
                if path in kept:  # recorded before a rebuild's switch-over that has not happened
                    continue
                discard_db(index_dir, index_dir / path, named)
            elif path not in named:
                _unlink(index_dir / path, index_dir / f"{path}.tmp")
            done.append(path)
        if done:
            forget(db, done)
    _unlink(*(index_dir / name for name in schema.TEMP_FILES))


def discard_db(index_dir: Path, db: Path, in_use: set[str], mark: bool = False) -> None:
    """Delete the database ``db`` and the files it names or recorded, except those in ``in_use``.

    With ``mark``, ``db`` is first marked discarded (``meta.discarded``), so a kill half-way
    leaves a database no one resumes and the next writer discards again; its files go before
    the database that names them, so none is ever left without a record."""
    if db.is_file() and not db.is_symlink():
        named: set[str] = set()
        rows: list[tuple[str, str]] = []
        try:
            if mark:
                con = schema.connect(db)
                try:
                    schema.set_meta(con, {DISCARDED: "1"})
                finally:
                    con.close()
            named, rows = _records(db)
        except (sqlite3.DatabaseError, KeyError, ValueError):
            pass  # unreadable: it names nothing we can find
        for path in sorted(named | {p for p, kind in rows if kind == "file"}):
            if path not in in_use:
                _unlink(index_dir / path, index_dir / f"{path}.tmp")
    _unlink(*schema.db_files(db))
    schema.fsync_dir(index_dir)


def is_discarded(db: Path) -> bool:
    """Whether ``db`` was being discarded when a writer was killed."""
    try:
        con = schema.connect(db)
        try:
            return bool(con.execute("SELECT 1 FROM meta WHERE key = ?", (DISCARDED,)).fetchone())
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False


def record(con: sqlite3.Connection, paths: Iterable[str], kind: str = "file") -> None:
    """In an open transaction: ``paths`` are ragcli's and may be deleted once nothing names them
    (an intent before a file is written; a file the committed state stops using)."""
    con.executemany("INSERT OR IGNORE INTO loose_files(path, kind) VALUES (?, ?)", [(p, kind) for p in paths])


def unrecord(con: sqlite3.Connection, paths: Iterable[str]) -> None:
    """In the open transaction that names them (or after their files are gone): ``paths`` leave the record."""
    con.executemany("DELETE FROM loose_files WHERE path = ?", [(p,) for p in paths])


def drop(con: sqlite3.Connection, index_dir: Path, paths: Sequence[str]) -> None:
    """Delete recorded files that nothing names (and their .tmp), then their record, on ``con``
    (outside a transaction). If the record cannot be written (disk full), the next writer does it."""
    _unlink(*(f for p in paths for f in (index_dir / p, index_dir / f"{p}.tmp")))
    if not paths:
        return
    try:
        con.execute("BEGIN IMMEDIATE")
        unrecord(con, paths)
        con.execute("COMMIT")
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def forget(db: Path, paths: Iterable[str]) -> None:
    """Remove ``paths`` from the ``loose_files`` of ``db`` (their files are gone)."""
    con = schema.connect(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        unrecord(con, paths)
        con.execute("COMMIT")
    finally:
        con.close()


def make_private(index_dir: Path, dbs: Sequence[Path]) -> None:
    """Group and other bits off every file of the index (an earlier ragcli wrote them 0644)."""
    for name in (directory.MARKER, directory.LOCK, schema.CURRENT, schema.STAGING):
        private.tighten(index_dir / name)
    if seg_dir(index_dir).is_dir():
        private.make_dir(seg_dir(index_dir))
    for db in dbs:
        for p in schema.db_files(db):
            private.tighten(p)
        try:
            named, _ = _records(db)
        except (sqlite3.DatabaseError, KeyError, ValueError):
            continue
        for path in named:
            private.tighten(index_dir / path)


def _unlink(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()  # a link is removed itself, never its target


def set_aside_if_damaged(index_dir: Path, on_message: Callable[[str], None] | None = None) -> None:
    """Rename the current database aside if it cannot be read (a rebuild then starts clean)."""
    try:
        db = schema.current_db(index_dir)
    except (ValueError, OSError):
        (index_dir / schema.CURRENT).unlink(missing_ok=True)
        return
    if not db.exists():
        return
    try:
        con = sqlite3.connect(str(db))
        try:
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                schema.read_info(con)  # unreadable metadata is damage too
            con.execute("SELECT COUNT(*) FROM documents").fetchone()
            if con.execute("PRAGMA quick_check").fetchone()[0] == "ok":  # damaged pages anywhere
                return
        finally:
            con.close()
    except (sqlite3.DatabaseError, KeyError, ValueError):
        pass
    aside = db.with_name(f"{db.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.rename(Path(str(aside) + suffix))
    if on_message:
        on_message(f"moved the damaged database aside to {aside}")
