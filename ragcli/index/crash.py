"""Named crash points: where a test may kill the writer, by name, instead of by timing.

Each step of a commit calls ``point("batch:vectors-written")`` and so on. In normal runs
that is one dictionary lookup. With ``RAGCLI_CRASH_AT=NAME`` (or ``NAME@N``: the N-th time
that point is reached, 1-based) in the environment, the process sends itself SIGKILL
there: no cleanup, no ``finally``, exactly what a power cut or ``kill -9`` leaves behind.
The crash tests run ``rag ingest`` with each point in turn and check that the index holds
exactly the content before or after that step.

The points, in the order an ingest reaches them (``sqlite.writer``; ``postgres.writer``
reaches the run and batch ones)::

    run:started             the run is recorded; nothing of it committed yet
    batch:intent-recorded   a batch's segment paths are committed to loose_files; no file written yet
    batch:vectors-written   a batch's vector segment is written and fsynced under a temporary name
    batch:vectors-renamed   ... and renamed into place (the database does not name it yet)
    batch:db-committed      the batch's rows, segment and counts are committed
    merge:written           a merged segment (or approximate index) is written, not yet named
    merge:db-committed      the database names the merged files instead of the old ones
    merge:cleanup-done      the old segment files are removed
    rebuild:old-db-recorded the database a rebuild replaces is recorded in the new one (CURRENT unchanged)
    rebuild:swapped         a finished rebuild became the current index (CURRENT replaced)
    run:finished            the run is marked finished; old files cleaned up

``RAGCLI_PAUSE_AT=NAME@N`` with ``RAGCLI_PAUSE_UNTIL=FILE`` makes the process wait there
until FILE exists instead: a test holds a writer at a known step (its lock held) while it
starts a second command, with no sleep to guess how long an ingest takes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = (
    "run:started",
    "batch:intent-recorded",
    "batch:vectors-written",
    "batch:vectors-renamed",
    "batch:db-committed",
    "merge:written",
    "merge:db-committed",
    "merge:cleanup-done",
    "rebuild:old-db-recorded",
    "rebuild:swapped",
    "run:finished",
)

ENV = "RAGCLI_CRASH_AT"
PAUSE_ENV, UNTIL_ENV = "RAGCLI_PAUSE_AT", "RAGCLI_PAUSE_UNTIL"
PAUSE_LIMIT_S = 600.0  # a test that never releases the writer does not hang it for ever
_seen: dict[str, int] = {}


def point(name: str) -> None:
    """Die here (SIGKILL) if ``RAGCLI_CRASH_AT`` names this point and occurrence; wait here
    if ``RAGCLI_PAUSE_AT`` does, until the file ``RAGCLI_PAUSE_UNTIL`` exists."""
    crash, pause = os.environ.get(ENV), os.environ.get(PAUSE_ENV)
    if not crash and not pause:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if crash and _names(crash, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if pause and _names(pause, name):
        until, deadline = Path(os.environ.get(UNTIL_ENV, "")), time.monotonic() + PAUSE_LIMIT_S
        while not until.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def _names(want: str, name: str) -> bool:
    """Whether ``NAME`` or ``NAME@N`` names this point at its current occurrence."""
    target, _, nth = want.partition("@")
    return target == name and _seen[name] == int(nth or 1)
