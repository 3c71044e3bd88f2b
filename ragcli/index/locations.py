"""What an index location names: a directory (the SQLite store) or a server (PostgreSQL).

    /home/me/.local/share/ragcli                      a directory: SQLite + vector segments
    postgresql://user@host:5432/db                    PostgreSQL, tables in schema "ragcli"
    postgresql://user@host/db?schema=contracts        ... in schema "contracts"

Secrets never appear in what ragcli prints. ``shown`` is the one redaction of a location for
messages, reports and JSON: the URL's password and the value of every query parameter not
known to be harmless (``password``, ``sslpassword``, ``oauth_client_secret``, a misspelt
key, ...) become ``***``. ``in_command`` is the form for a command the user may copy: the
secrets left out, so it runs as is with the password in ``PGPASSWORD`` or ``~/.pgpass`` (the
README's advice), which ``password_note`` says after the command. ``scrub`` removes the secrets from a driver's message. A URL ragcli cannot
parse is refused by ``split`` (a ``UsageError`` that never quotes it) and shown as its scheme
only. This module only parses; it connects to nothing and imports no driver.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from ..errors import UsageError

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "ragcli"
HIDDEN = "***"
PASSWORD_NOTE = " (with the password in PGPASSWORD or ~/.pgpass)"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,39}")
# scheme :// [user [: password] @] host[:port][,host[:port]...] [/ dbname] [? key=value&...]; a
# '@', '/', '?' or '#' in the user name or password must be percent-encoded (libpq agrees on
# '@' and '/'), so a password can never be mistaken for a host, a port or a parameter.
_HOST = r"(?:\[[^\]@/?#]*\]|[^:,\[\]@/?#]*)(?::[0-9]*)?"
_URL = re.compile(r"(?P<scheme>postgres(?:ql)?://)(?:(?P<user>[^:@/?#]*)(?::(?P<password>[^@/?#]*))?@)?"
                  rf"(?P<hosts>{_HOST}(?:,{_HOST})*)(?P<path>/[^?#@]*)?(?:\?(?P<query>[^#]*))?")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# libpq parameters whose values are not secret (paths to key files are not keys); any other
# parameter's value is hidden, so a new or misspelt secret-bearing one is never printed.
SHOWN_KEYS = frozenset({
    "schema", "host", "hostaddr", "port", "dbname", "user", "passfile", "channel_binding", "connect_timeout",
    "client_encoding", "options", "application_name", "fallback_application_name", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication",
    "gssencmode", "sslmode", "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "sslkeylogfile", "requirepeer", "require_auth",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "min_protocol_version", "max_protocol_version",
    "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
    "oauth_issuer", "oauth_client_id", "oauth_scope",
})


def is_server(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL server rather than a directory.

    >>> is_server("postgresql://me@db.example/team"), is_server("/tmp/idx"), is_server(Path("postgres:/x"))
    (True, False, False)
    """
    return isinstance(location, str) and location.startswith(SCHEMES)


@dataclass(frozen=True)
class _Url:
    """A server URL in pieces, each as written (percent-escapes not decoded)."""

    scheme: str
    user: str | None
    password: str | None
    hosts: str
    path: str
    params: tuple[tuple[str, str], ...]  # (key, value) as written

    def text(self, secrets: str = "keep") -> str:
        """The URL again, its secrets as written ("keep"), as ``***`` ("hide") or left out ("omit")."""
        auth = ""
        if self.user is not None:
            password = {"keep": f":{self.password}", "hide": f":{HIDDEN}", "omit": ""}[secrets]
            auth = f"{self.user}{password if self.password is not None else ''}@"
        params = []
        for key, value in self.params:
            if _secret(key) and secrets != "keep":
                if secrets == "omit":
                    continue
                value = HIDDEN
            params.append(f"{key}={value}")
        query = "?" + "&".join(params) if params else ""
        return f"{self.scheme}{auth}{self.hosts}{self.path}{query}"

    def secrets(self) -> list[str]:
        """The secret values, as written and decoded (what a driver's message might quote)."""
        raw = [v for k, v in self.params if v and _secret(k)] + ([self.password] if self.password else [])
        return sorted({s for v in raw for s in (v, unquote(v)) if s}, key=len, reverse=True)


def _secret(key: str) -> bool:
    return unquote(key) not in SHOWN_KEYS


def _parse(url: str) -> _Url | None:
    """The pieces of ``url``, or None when it does not follow the grammar above."""
    m = _URL.fullmatch(url)
    if m is None:
        return None
    params = [p.partition("=") for p in (m["query"] or "").split("&") if p]
    if any(not eq or not k for k, eq, _v in params):
        return None
    return _Url(m["scheme"], m["user"], m["password"], m["hosts"], m["path"] or "", tuple((k, v) for k, _, v in params))


def shown(location: str | Path) -> str:
    """``location`` as ragcli prints it: a URL's secrets replaced by ``***``.

    >>> shown("postgresql://me:secret@h/db"), shown("postgresql://h/db?schema=a&password=pw")
    ('postgresql://me:***@h/db', 'postgresql://h/db?schema=a&password=***')
    >>> shown("/home/me/idx"), shown("postgresql://me:p/w@h/db")
    ('/home/me/idx', 'postgresql://(a URL ragcli cannot parse; not shown)')
    """
    if not is_server(location):
        return str(location)
    parts = _parse(str(location))
    if parts is None:
        return str(location).split("//", 1)[0] + "//(a URL ragcli cannot parse; not shown)"
    return parts.text("hide")


def in_command(location: str | Path) -> str:
    """``location`` for a command the user may copy: shell-quoted, a URL's secrets (real or
    ``***``) left out; ``password_note`` says where the password goes then.

    >>> in_command("postgresql://me:***@h/db?password=***&schema=x"), in_command("/tmp/my idx")
    ("'postgresql://me@h/db?schema=x'", "'/tmp/my idx'")
    """
    if not is_server(location):
        return shlex.quote(str(location))
    parts = _parse(str(location))
    return shlex.quote(parts.text("omit")) if parts else "URL"


def password_note(location: str | Path) -> str:
    """What to add after a command built with ``in_command``: where the left-out password goes.

    >>> password_note("postgresql://me:***@h/db"), password_note("postgresql://me@h/db")
    (' (with the password in PGPASSWORD or ~/.pgpass)', '')
    """
    parts = _parse(str(location)) if is_server(location) else None
    return PASSWORD_NOTE if parts and parts.text("omit") != parts.text("hide") else ""


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with the URL's secrets replaced by ``***``.

    >>> scrub('invalid percent-encoded token: "pa%zzss"', "postgresql://me:pa%zzss@h/db")
    'invalid percent-encoded token: "***"'
    """
    text = text.replace(url, shown(url))
    parts = _parse(url) if is_server(url) else None
    for secret in parts.secrets() if parts else ():
        text = text.replace(secret, HIDDEN)
    return text


def split(url: str) -> tuple[str, str]:
    """(libpq connection URL without ``schema``, schema name); a ``UsageError`` (that quotes no
    secret) for a URL ragcli cannot parse, a bad percent-escape or a bad schema name.

    >>> split("postgresql://me@h:5433/db?schema=legal&sslmode=require")
    ('postgresql://me@h:5433/db?sslmode=require', 'legal')
    >>> split("postgres://h/db")
    ('postgres://h/db', 'ragcli')
    """
    parts = _parse(url)
    if parts is None:
        raise UsageError("the index URL cannot be parsed: write it as postgresql://USER@HOST:PORT/DATABASE"
                         "[?schema=NAME&key=value...], with any '@', '/', '?' or '#' in the user name "
                         "percent-encoded (%40, %2F, %3F, %23); give the password in PGPASSWORD or ~/.pgpass")
    pieces = [("user name", parts.user), ("password", parts.password), ("host", parts.hosts),
              ("database name", parts.path)]
    pieces += [(f"parameter {unquote(k)!r}", f"{k}={v}") for k, v in parts.params]
    for what, text in pieces:
        if text and _ESCAPE.search(text):
            raise UsageError(f"the index URL {shown(url)} has an invalid percent-escape in its {what}: a '%' must "
                             "be followed by two hex digits (write a literal '%' as %25)")
    given = [unquote(v) for k, v in parts.params if unquote(k) == "schema"]
    if len(given) > 1:
        raise UsageError(f"the index URL names schema= {len(given)} times; give it once")
    schema = given[0] if given else DEFAULT_SCHEMA
    if not _IDENT.fullmatch(schema):
        raise UsageError(f"schema={schema!r} in the index URL is not a plain name: use lower-case letters, "
                         "digits and '_' (at most 40), starting with a letter")
    return replace(parts, params=tuple((k, v) for k, v in parts.params if unquote(k) != "schema")).text(), schema


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` instead (for a hint; secrets as they were).

    >>> with_schema("postgresql://h/db?schema=public&sslmode=require", "NEWNAME")
    'postgresql://h/db?sslmode=require&schema=NEWNAME'
    """
    parts = _parse(url)
    if parts is None:
        return url
    params = tuple((k, v) for k, v in parts.params if unquote(k) != "schema") + (("schema", schema),)
    return replace(parts, params=params).text()


def parameters(url: str) -> list[str]:
    """The names of the URL's query parameters (decoded), ``schema`` included."""
    parts = _parse(url)
    return [unquote(k) for k, _ in parts.params] if parts else []
