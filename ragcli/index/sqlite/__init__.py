"""The SQLite store: an index in a directory, SQLite for rows and memory-mapped vector segments.

    store       SqliteStore: what ``index.open`` returns for a directory
    schema      the layout: paths, tables, metadata
    vectors     vector segments (memory-mapped) and the approximate index
    reader      SqliteReader: one committed snapshot
    writer      SqliteWriter: atomic batches, merges, the approximate index, rebuild switch-over
    lock        the writer lock; what a failed write tells the user
    directory   whether a directory may hold an index: the RAGCLI_INDEX marker, owner, modes
    private     files written 0600 (directories 0700), never through a symbolic link
    migrate     creating a database, upgrading one from format 1
    repair      removing the files ragcli recorded as no longer used, damaged databases
"""

from .store import SqliteStore

__all__ = ["SqliteStore"]
