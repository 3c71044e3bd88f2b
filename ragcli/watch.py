"""``rag ingest --watch``: keep an index in line with folders as their files change.

The loop: start watching (``watchfiles``, inotify on Linux), bring the whole index in line
once (a full ``rag ingest``), then, for each debounced group of changes, ingest just the
paths that changed (``ingest(only=...)``): each group is one writer-locked run of the
ordinary incremental ingest, with its atomic batches and all its rules (links met in a
folder not followed, ``--exclude`` and hidden names left out, the index's own folder never
read, a file that fails reported while the others go on). Nothing is decided from the
event kinds: a path that changed is looked at again, so an editor's atomic save (write a
temporary file, rename it over the old one) is an update, a rename is the old path removed
and the new one added, and a deletion removes the document.

The watcher starts before the first full ingest, so no change made meanwhile is missed;
the run that follows it looks at those paths again (unchanged files are hashed, not read).
A run that fails on the store (a full disk, a server gone) is reported and tried again with
its paths; Ctrl-C stops between runs or inside one, and either way every committed batch
stays (``ingest``: batches are atomic, the lock goes with the process).

What it does not do: parse arguments or print (``cli``), or decide what a file holds
(``ingest``). Events come through ``changes``: a test or another watcher can feed its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import loaders
from .errors import IndexBusyError, IndexUnavailableError, StorageError, UsageError

if TYPE_CHECKING:
    from .types import IngestReport

DEBOUNCE_MS = 1600  # a group of changes is ingested at most this long after its first change...
STEP_MS = 300  # ... or once the folder has been quiet this long (an editor's save is one group)
TICK_MS = 500  # with no change, the loop wakes this often (to retry a failed run, to see a Ctrl-C)
RETRY_S = 10.0  # a run that failed on the store is tried again this long after
RETRIED = (StorageError, IndexUnavailableError, IndexBusyError)  # may pass by themselves: retried

Sync = Callable[["Sequence[str] | None"], "IngestReport"]  # one ingest run: the changed paths, None: all


@dataclass(frozen=True)
class Synced:
    """The first full ingest is done: ``report`` is its ``IngestReport``."""

    report: IngestReport


@dataclass(frozen=True)
class Watching:
    """Changes under ``paths`` are being watched from now on."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """What one change did to one document: added, updated, removed, or failed (with ``reason``)."""

    path: str
    what: str  # "added" | "updated" | "removed" | "failed"
    chunks: int = 0  # chunks it has now (0 when removed or failed)
    reason: str = ""  # why it failed

    def to_json(self) -> dict:
        row: dict = {"event": self.what, "path": self.path}
        if self.what in ("added", "updated"):
            row["chunks"] = self.chunks
        if self.reason:
            row["reason"] = self.reason
        return row


@dataclass(frozen=True)
class Retrying:
    """A run failed on the store (``error``); its paths are tried again later."""

    error: str
    paths: int


Event = Synced | Watching | Change | Retrying


def changes_of(report: IngestReport) -> list[Change]:
    """One ``Change`` per document a run added, updated, removed or failed, by path.

    Files it found unchanged (saved without a change) and skipped (an editor's backup file)
    are not changes.
    """
    counts = dict(report.doc_chunks)
    out = [Change(p, "added", counts.get(p, 0)) for p in report.added]
    out += [Change(p, "updated", counts.get(p, 0)) for p in report.updated]
    out += [Change(p, "removed") for p in report.removed]
    out += [Change(p, "failed", reason=r) for p, r in report.failed]
    return sorted(out, key=lambda c: c.path)


def watched(paths: Sequence[str]) -> list[str]:
    """What to watch for ``paths``: a folder itself, a file by its folder, so that an editor
    replacing the file (a new inode) is still seen. A path that is not there is an error."""
    out: list[str] = []
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"{p}: no such file or directory; give the folders to watch")
        d = p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p))
        if d not in out:
            out.append(d)
    return out


def relevant(path: str, roots: Sequence[str], excludes: Sequence[str], include_hidden: bool,
             never: Sequence[str]) -> bool:
    """Whether a change at ``path`` can matter to an ingest of ``roots``: it is at or under
    one and not left out by name there, and not in ``never`` (the index's own folder: its
    writes would otherwise wake the loop for ever). The ingest run decides the rest.

    >>> relevant("/d/a.md", ["/d"], [], False, ["/d/idx"]), relevant("/d/idx/x", ["/d"], [], False, ["/d/idx"])
    (True, False)
    """
    if any(path == n or path.startswith(n.rstrip(os.sep) + os.sep) for n in never):
        return False
    for r in roots:
        if path == r:
            return True
        if path.startswith(r.rstrip(os.sep) + os.sep) and not loaders.excluded(path, r, excludes, include_hidden):
            return True
    return False


def file_events(roots: Sequence[str], keep: Callable[[str], bool]) -> Iterator[set[str]]:
    """The paths that changed under ``roots`` and that ``keep`` keeps, in debounced groups; an
    empty set every ``TICK_MS`` without a change (the first one says the watcher is running).
    A Ctrl-C while waiting raises KeyboardInterrupt."""
    try:
        import watchfiles
    except ImportError:
        raise UsageError("rag ingest --watch needs the watchfiles package: pip install 'ragcli[watch]'") from None
    for group in watchfiles.watch(*watched(roots), watch_filter=lambda _change, path: keep(path),
                                  debounce=DEBOUNCE_MS, step=STEP_MS, rust_timeout=TICK_MS, yield_on_timeout=True,
                                  raise_interrupt=True):
        yield {path for _change, path in group}


def watch(roots: Sequence[str], sync: Sync, on_event: Callable[[Event], None],
          changes: Iterable[set[str]], clock: Callable[[], float] = time.monotonic) -> None:
    """Bring the index in line with ``roots`` (``sync(None)``), then keep it so: each group
    from ``changes`` (the paths that changed; an empty group is a tick) is one
    ``sync(paths)``. Runs until ``changes`` ends or a Ctrl-C (KeyboardInterrupt) stops it.

    The first group, empty or not, says the watcher is running: only then is the full ingest
    run, so what changes during it is in the next group. A run that fails on the store
    (``RETRIED``) keeps its paths for the next try, ``RETRY_S`` later or at the next change.
    """
    pending: set[str] = set()
    retry_at: float | None = None
    started = False
    for group in changes:
        if not started:
            started = True
            on_event(Synced(sync(None)))
            on_event(Watching(tuple(roots)))
            continue
        pending |= group
        if not pending or (not group and retry_at is not None and clock() < retry_at):
            continue
        paths = sorted(pending)
        try:
            report = sync(paths)
        except RETRIED as e:
            retry_at = clock() + RETRY_S
            on_event(Retrying(str(e), len(paths)))
            continue
        pending, retry_at = set(), None
        for c in changes_of(report):
            on_event(c)


def never_watched(directory: Path | None) -> list[str]:
    """The folders whose changes are never the corpus's: the index's own (``Store.directory``; None: a server)."""
    return [] if directory is None else [os.path.abspath(os.path.realpath(directory)), os.path.abspath(directory)]
