"""Tidying and repairing an index directory: orphans, damaged databases.

- ``remove_orphans``: files no committed state names (a batch killed before its commit, an
  old database after a rebuild switched over, segments merged away, temporary files).
- ``set_aside_if_damaged``: before a ``--rebuild``, a database that cannot be read is
  renamed aside (kept for inspection) so the rebuild starts clean.

Both run only under the writer lock. Readers never delete anything.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import schema
from .vectors import seg_dir


def _named_files(db: Path) -> set[str]:
    """Segment file names the committed state of ``db`` uses."""
    con = schema.connect(db)
    try:
        names: set[str] = set()
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'segments'").fetchone():
            return names
        for (name,) in con.execute("SELECT name FROM segments"):
            names.update({f"{name}.vec.npy", f"{name}.ids.npy"})
        row = con.execute("SELECT value FROM meta WHERE key = 'ann'").fetchone()
        if row:
            names.add(json.loads(row[0])["file"])
        return names
    finally:
        con.close()


def remove_orphans(index_dir: Path, keep_dbs: Sequence[Path]) -> None:
    """Delete segment files none of ``keep_dbs`` names, and databases other than those."""
    named: set[str] = set()
    for db in keep_dbs:
        try:
            named |= _named_files(db)
        except (sqlite3.DatabaseError, KeyError, ValueError):
            return  # cannot tell what is used: delete nothing
    d = seg_dir(index_dir)
    if d.is_dir():
        for p in d.iterdir():
            if p.name not in named:
                with contextlib.suppress(OSError):
                    p.unlink()
    keep = {p.name for p in keep_dbs}
    for p in index_dir.glob("index*.sqlite*"):
        base = p.name.split(".sqlite")[0] + ".sqlite"
        if base not in keep and ".damaged-" not in p.name:
            with contextlib.suppress(OSError):
                p.unlink()
    for p in index_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


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
