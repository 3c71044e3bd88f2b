"""What an index location names: a directory (the SQLite store) or a server (PostgreSQL).

    /home/me/.local/share/ragcli                      a directory: SQLite + vector segments
    postgresql://user@host:5432/db                    PostgreSQL, tables in schema "ragcli"
    postgresql://user@host/db?schema=contracts        ... in schema "contracts"

The password, if the URL carries one, never appears in a message (``shown``); the README
recommends ``PGPASSWORD`` or ``~/.pgpass`` instead. This module only parses; it connects to
nothing and imports no driver.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import UsageError

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "ragcli"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,39}")


def is_server(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL server rather than a directory.

    >>> is_server("postgresql://me@db.example/team"), is_server("/tmp/idx"), is_server(Path("postgres:/x"))
    (True, False, False)
    """
    return isinstance(location, str) and location.startswith(SCHEMES)


def split(url: str) -> tuple[str, str]:
    """(libpq connection URL without ``schema``, schema name).

    >>> split("postgresql://me@h:5433/db?schema=legal&sslmode=require")
    ('postgresql://me@h:5433/db?sslmode=require', 'legal')
    >>> split("postgres://h/db")
    ('postgres://h/db', 'ragcli')
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [v for k, v in query if k == "schema"]
    if len(given) > 1:
        raise UsageError(f"the index URL names schema= {len(given)} times; give it once")
    schema = given[0] if given else DEFAULT_SCHEMA
    if not _IDENT.fullmatch(schema):
        raise UsageError(f"schema={schema!r} in the index URL is not a plain name: use lower-case letters, "
                         "digits and '_' (at most 40), starting with a letter")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def shown(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and reports.

    >>> shown("postgresql://me:secret@h/db"), shown("postgresql://h/db")
    ('postgresql://me:***@h/db', 'postgresql://h/db')
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
