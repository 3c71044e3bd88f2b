"""Talking to the PostgreSQL server: connecting, and the writer lock.

Reading is ``reader`` (``PgReader``), writing ``writer`` (``PgWriter``), the layout and
its migrations ``schema``. This module holds what both need: a connection (psycopg 3 with
pgvector's types; imported here, never at ``import ragcli``), and the writer lock.

Concurrency: one writer at a time per index, by a PostgreSQL session-level advisory lock
(``pg_advisory_lock``) keyed on the schema name, the counterpart of the SQLite store's
``flock``. Two machines that ingest into one index take turns batch run by batch run: the
second waits (or, with ``--no-wait``, fails at once naming the holder's host and pid). The
server releases the lock when the holder's connection ends, so a killed ingest never leaves
the index locked. Readers take no lock: each reads one REPEATABLE READ snapshot, and each
batch is one transaction, so a reader sees a batch whole or not at all.

What the driver says is shown through ``locations`` (``scrub``): no message carries a
password. An unknown URL parameter is a usage error naming it (libpq's own list decides),
and a server that closes the connection mid-ingest is reported as such (``closed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

from ...errors import IndexBusyError, IndexUnavailableError, UsageError
from ..locations import parameters, scrub, shown, split
from . import schema as pg_schema

LOCK_NAMESPACE = "ragcli-writer:"


def driver() -> tuple[Any, Any]:
    """(psycopg, pgvector.psycopg.register_vector), or an error that says how to install them."""
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as e:
        raise IndexUnavailableError(
            f"a PostgreSQL index needs the postgres extra ({e.name} is not installed): "
            "pip install 'ragcli[postgres]'") from None
    return psycopg, register_vector


def connect(url: str, what: str) -> Any:
    """An autocommit connection to the server ``url`` names; ``what`` ("ingest", "search") shows
    in ``pg_stat_activity`` with this host and pid."""
    psycopg, _ = driver()
    conninfo, _schema = split(url)
    known = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()} | {"schema"}
    unknown = [k for k in parameters(url) if k not in known]
    if unknown:
        raise UsageError(f"the index URL {shown(url)} has an unknown parameter {unknown[0]!r}: ragcli knows "
                         "schema=NAME, and libpq the rest (sslmode, connect_timeout, ...: see the PostgreSQL "
                         "manual, 'Parameter Key Words')")
    name = f"ragcli {what} pid {os.getpid()} on {socket.gethostname()}"[:63]
    try:
        return psycopg.connect(conninfo, autocommit=True, application_name=name,
                               connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", "10")))
    except psycopg.OperationalError as e:
        raise IndexUnavailableError(
            f"cannot connect to the index at {shown(url)} ({_reason(e, url)}). Check that the server is running "
            "and that the URL's user, host, port and database are right (a password goes in PGPASSWORD "
            "or ~/.pgpass)") from None
    except psycopg.ProgrammingError as e:  # libpq refused the URL itself
        raise UsageError(f"the index URL {shown(url)} is not one libpq accepts ({_reason(e, url)})") from None


def _reason(e: Exception, url: str) -> str:
    """The last line of a driver error, without the URL's secrets."""
    text = str(e).strip()
    return scrub(text.splitlines()[-1], url) if text else type(e).__name__


def register_vector(con: Any, url: str) -> None:
    """Teach ``con`` pgvector's ``vector`` type (numpy arrays in and out), wherever the
    extension lives; the session's search_path is that schema afterwards."""
    psycopg, register = driver()
    missing = IndexUnavailableError(f"the database at {shown(url)} has no pgvector extension. Have its owner run: "
                                    "CREATE EXTENSION vector;")
    home = pg_schema.extension_schema(con)
    if home is None:
        raise missing
    con.execute(f"SET search_path TO {pg_schema.ident(home)}")
    try:
        register(con)
    except psycopg.ProgrammingError:
        raise missing from None


@contextlib.contextmanager
def closed(url: str, doing: str = "ingest") -> Iterator[None]:
    """Turn "the server closed the connection" (shut down, restarted, the backend terminated)
    into one line that says what survived: every batch committed before is intact."""
    psycopg, _ = driver()
    try:
        yield
    except psycopg.OperationalError as e:
        if not (isinstance(e, (psycopg.errors.AdminShutdown, psycopg.errors.CrashShutdown,
                               psycopg.errors.CannotConnectNow)) or _lost(e)):
            raise
        raise IndexUnavailableError(
            f"the PostgreSQL server holding {shown(url)} closed the connection during the {doing} "
            f"({_reason(e, url)}); the batches committed before are intact. Run the {doing} again to carry on"
        ) from None


def _lost(e: Exception) -> bool:
    """Whether ``e`` says the connection is gone (no SQLSTATE: it never reached a server answer)."""
    return getattr(e, "sqlstate", None) is None or str(getattr(e, "sqlstate", "")).startswith("08")


def lock_key(schema: str) -> int:
    """The advisory lock key of an index: 64 bits of sha256("ragcli-writer:" + schema), signed.

    >>> lock_key("ragcli") == lock_key("ragcli") != lock_key("legal")
    True
    """
    return int.from_bytes(hashlib.sha256((LOCK_NAMESPACE + schema).encode()).digest()[:8], "big", signed=True)


def _holder(con: Any, key: int) -> str:
    """Who holds the advisory lock ``key``: "ragcli ingest pid N on HOST" as it connected."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = con.execute(
        "SELECT a.application_name, a.client_addr::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
        "AND l.objsubid = 1 LIMIT 1", (classid, objid)).fetchone()
    if row is None:
        return "another ingest"
    name, addr = row
    return f"{name or 'another client'}" + (f" from {addr}" if addr else "")


@contextlib.contextmanager
def writer_lock(url: str, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock for the duration (a session advisory lock on its own connection)."""
    _conninfo, schema = split(url)
    key = lock_key(schema)
    con = connect(url, "ingest")
    try:
        if not con.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            who = _holder(con, key)
            if not wait:
                raise IndexBusyError(f"{who} is writing to {shown(url)}; wait for it or run without --no-wait")
            if on_wait:
                on_wait(f"waiting for {who} to finish writing {shown(url)} ...")
            con.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield
    finally:
        with contextlib.suppress(Exception):
            con.close()  # ending the session releases the lock
