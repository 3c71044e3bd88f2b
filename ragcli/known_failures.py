"""Files that failed to ingest, remembered by content, so an unchanged one is not read again;
and what the last ingest did with each file it met and did not index (``rag ls``).

A scheduled ``rag ingest`` over a folder with one file no reader can take would otherwise
parse it on every run (a 300 s timeout each time) and exit 3 forever. ``rag ingest`` looks a
file up here after hashing it: same path, same sha256, same reading conditions (``key``:
ragcli's version, the read limits, the chunking) -> it is reported as still failing, with
the reason it failed for, without being read. Anything else (the file changed, a limit was
raised, ragcli upgraded, ``--retry-failed``, ``--rebuild``) reads it again.

The store is one JSON file per index under ``$XDG_STATE_HOME/ragcli/known-failures/``
(outside the index, which holds only what it documents). It is a memory, not a record: lost
or unreadable, every file is simply read again. Written by the ingest that holds the
index's writer lock, atomically (a temporary file renamed over it).

Beside them it keeps, whatever the conditions, each path the last ingest to meet it failed or
skipped, with the reason (``unindexed``): ``rag ls`` lists them. A run forgets what it covered
(the files it met, and everything under the folders it walked) before it notes its own.

What it does not do: decide the exit code (``cli``: ``--accept-known-failures``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .config import xdg_dir

NOTE = "unchanged since it failed, not read again; --retry-failed reads it"
FAILED, SKIPPED = "failed", "skipped"


def store_for(location: str) -> Path:
    """The file that remembers the failures of the index at ``location`` (a path or URL)."""
    digest = hashlib.sha256(str(location).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return xdg_dir("XDG_STATE_HOME", ".local/state") / "ragcli" / "known-failures" / f"{digest}.json"


@dataclass
class KnownFailures:
    """path -> (sha256, reason) for files that failed under the conditions ``key`` names;
    ``unindexed``: path -> (FAILED or SKIPPED, reason) from the last run that met the path."""

    file: Path | None
    key: str
    entries: dict[str, tuple[str, str]] = field(default_factory=dict)
    unindexed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, file: Path | None, key: str) -> KnownFailures:
        if file is None:
            return cls(None, key)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            return cls(file, key)  # none yet, or unreadable: every file is read
        return cls(file, key, _rows(data.get("files") if data.get("key") == key else {}, "sha256"),
                   {p: v for p, v in _rows(data.get("unindexed"), "status").items() if v[0] in (FAILED, SKIPPED)})

    def reason(self, path: str, sha256: str) -> str | None:
        """Why ``path`` failed, if it failed before with exactly these bytes."""
        e = self.entries.get(path)
        return e[1] if e and e[0] == sha256 else None

    def update(self, read: Iterable[str], failed: dict[str, tuple[str, str]]) -> None:
        """Forget the files read this run (``read``), then remember those of them that failed."""
        for p in read:
            self.entries.pop(p, None)
        self.entries.update(failed)

    def note_unindexed(self, covered: Callable[[str], bool], failed: Iterable[tuple[str, str]],
                       skipped: Iterable[tuple[str, str]]) -> None:
        """Forget the paths this run ``covered``, then note the ones it failed or skipped."""
        self.unindexed = {p: v for p, v in self.unindexed.items() if not covered(p)}
        self.unindexed.update({p: (SKIPPED, r) for p, r in skipped})
        self.unindexed.update({p: (FAILED, _without_note(r)) for p, r in failed})

    def save(self) -> None:
        if self.file is None:
            return
        rows = {p: {"sha256": s, "reason": r} for p, (s, r) in sorted(self.entries.items())}
        unindexed = {p: {"status": s, "reason": r} for p, (s, r) in sorted(self.unindexed.items())}
        try:
            if not rows and not unindexed and not self.file.exists():
                return
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"key": self.key, "files": rows, "unindexed": unindexed}, f)  # ASCII: a non-UTF-8 name as \\udcxx
            os.replace(tmp, self.file)
        except (OSError, ValueError):  # a memory only: the next run reads those files again
            pass


def _rows(rows: object, first: str) -> dict[str, tuple[str, str]]:
    """``{path: {first: .., "reason": ..}}`` as tuples; anything malformed is left out."""
    if not isinstance(rows, dict):
        return {}
    out = {}
    for p, e in rows.items():
        if isinstance(p, str) and isinstance(e, dict) and isinstance(e.get(first), str) and isinstance(e.get("reason"), str):
            out[p] = (e[first], e["reason"])
    return out


def _without_note(reason: str) -> str:
    """A known failure's reason as it first failed (``ingest`` adds NOTE to it)."""
    return reason.removesuffix(f" ({NOTE})")
