"""Every error ragcli raises on purpose, and the exit code each one maps to.

The tree::

    RagError                      exit 1  base: message says what to do next
    ├── UsageError                exit 2  bad flag values, empty/huge/binary question
    ├── ConfigError               exit 1  models.toml unreadable or invalid
    │   └── UnknownModelError     exit 1  a model name not in the registry (lists the known ones)
    ├── ModelUnavailableError     exit 1  model file missing, not downloadable offline, bad sha256
    ├── IndexNotFoundError        exit 1  no index at that location yet
    ├── IndexBusyError            exit 1  another ingest holds the index lock (with --no-wait)
    ├── StaleIndexError           exit 1  index built with another embedder/chunking/format
    ├── DamagedIndexError         exit 1  index files unreadable or inconsistent
    ├── IndexLocationError        exit 1  --index names a file, someone else's or a shared-writable
    │                                     directory, a folder that is no index, or holds a planted link
    ├── StorageError              exit 1  disk full / permission problems / a read-only index while writing
    ├── IndexUnavailableError     exit 1  the index's server cannot be reached, or its driver is missing
    ├── ClusterError              exit 1  --ray: Ray missing, its cluster unreachable, or a worker lost
    ├── EmptyScopeError           exit 4  --path/--type/--since name no indexed document (``rag search``)
    └── SourceError               (not fatal) one input file could not be ingested

This module knows nothing of the CLI; ``cli.py`` maps ``exit_code`` (an ``exits.Exit``) to the
process exit status.
"""

from __future__ import annotations

from .exits import Exit


class RagError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing message."""

    exit_code = Exit.ERROR


class UsageError(RagError):
    exit_code = Exit.USAGE


class ConfigError(RagError):
    pass


class UnknownModelError(ConfigError):
    pass


class ModelUnavailableError(RagError):
    pass


class IndexNotFoundError(RagError):
    pass


class IndexBusyError(RagError):
    pass


class StaleIndexError(RagError):
    pass


class DamagedIndexError(RagError):
    pass


class IndexLocationError(RagError):
    """ragcli will not write an index there (a file, a folder of other files, a directory another
    user owns or may write, a symbolic link inside it); the message says what to use instead."""


class StorageError(RagError):
    pass


class IndexUnavailableError(RagError):
    pass


class ClusterError(RagError):
    pass


class EmptyScopeError(RagError):
    """A scoped search whose filters name no indexed document: nothing to search, as with no evidence."""

    exit_code = Exit.NO_EVIDENCE


def brief(e: BaseException, limit: int = 120) -> str:
    """An exception in one line, for a reason shown to people: "ValueError: bad xref".

    >>> brief(RuntimeError("Traceback (most recent call last):\\n  File x"))
    'RuntimeError: Traceback (most recent call last): File x'
    """
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}" if text else type(e).__name__


class SourceError(RagError):
    """One input file could not be read; ingest records it and goes on (exit 3 at the end)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
