"""``SqliteStore``: an index in a directory on this machine (SQLite + vector segments).

It only routes: reading is ``reader``, writing ``writer``, the lock ``lock``, repairs
``repair``; this module opens nothing until asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from ..base import IndexInfo, Store
from . import reader, repair, schema
from .lock import writer_lock
from .reader import SqliteReader
from .writer import SqliteWriter


class SqliteStore(Store):
    """The index in the directory ``location``."""

    def __init__(self, location: str | Path) -> None:
        self.location: Path = Path(location)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.location)!r})"

    @property
    def directory(self) -> Path:
        return self.location

    def reader(self) -> SqliteReader:
        return SqliteReader.open(self.location)

    def writer(self, wanted: IndexInfo, *, rebuild: bool = False) -> SqliteWriter:
        return SqliteWriter.open(self.location, wanted, rebuild=rebuild)

    def lock(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """An flock on ``.lock``; a directory ragcli may not write is refused first (``directory``)."""
        return writer_lock(self.location, wait, on_wait)

    def exists(self) -> bool:
        try:
            return schema.current_db(self.location).exists()
        except (ValueError, OSError):
            return True

    def recorded_roots(self) -> list[str]:
        return reader.recorded_roots(self.location)

    def set_aside_if_damaged(self, on_message: Callable[[str], None] | None = None) -> None:
        repair.set_aside_if_damaged(self.location, on_message)

    def current_db(self) -> Path:
        """The database readers open now (CURRENT, else index.sqlite)."""
        return schema.current_db(self.location)

    @staticmethod
    def summary(described: Mapping[str, object]) -> str:
        v = described
        if v["search"] == "exact":
            return f"{v['vectors']} in {v['segments']} segments, exact search"
        return (f"{v['vectors']} in {v['segments']} segments, approximate search "
                f"({v['ann']}, nprobe {v['nprobe']}, recall@10 {v['ann_recall_at_10']:.3f} at build)")
