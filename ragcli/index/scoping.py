"""A ``Scope`` in SQL: the documents, and their chunks, a scoped search may rank.

Both stores resolve a scope the same way, before any ranking: one query on ``documents``
(``where``) gives the allowed document ids; SQLite then takes their chunk ids from
``chunks_doc`` as id ranges (a document's chunks get consecutive ids when it is written),
PostgreSQL only counts them and puts ``doc_id = ANY(...)`` into the same query as its
``<=>`` ordering. Path patterns mean what ``rag ls`` means by them (``manage.matches``):
a glob (``*`` crosses ``/``; SQLite ``GLOB``, a PostgreSQL regular expression), or a path
that names itself and everything under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from ..scope import Scope


@dataclass(frozen=True)
class Scoped:
    """A scope resolved in one snapshot: the allowed documents and how many chunks they hold."""

    scope: Scope
    doc_ids: tuple[int, ...]
    n_chunks: int
    chunk_ids: np.ndarray | None = field(default=None, compare=False)  # (n,) int64 ascending (SQLite)
    n_documents: int = 0  # documents in the whole index, for the message when none is allowed
    near: tuple[str, ...] = ()  # when none is: up to 3 documents the paths would name ignoring case

    @property
    def empty(self) -> bool:
        return not self.doc_ids


def sqlite_glob(pattern: str) -> str:
    """An ``fnmatch`` pattern as SQLite ``GLOB`` writes it (``[!a]`` is ``[^a]`` there).

    >>> sqlite_glob("*[!0-9].pdf")
    '*[^0-9].pdf'
    """
    return pattern.replace("[!", "[^")


def pg_regex(pattern: str) -> str:
    """An ``fnmatch`` pattern as an anchored PostgreSQL regular expression.

    >>> pg_regex("/d/*COCA?[!x].pdf")
    '^/d/.*COCA.[^x]\\\\.pdf$'
    """
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and (j := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : j]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(ch if ch.isalnum() or ch in "/_- " else "\\" + ch)
        i += 1
    return "".join(out) + "$"


def where(scope: Scope, mark: str, pg: bool = False, nocase: bool = False) -> tuple[str, list]:
    """(SQL condition on ``documents``, its parameters); ``mark`` is the driver's placeholder;
    ``nocase``: paths compared ignoring case (only to say what a case-sensitive miss would match).

    >>> from ragcli.scope import Scope
    >>> sql, params = where(Scope(paths=("/d",), types=("pdf", "md")), "?")
    >>> sql
    '((path = ? OR substr(path, 1, ?) = ?)) AND (kind IN (?,?) OR lower(substr(path, -3)) = ?)'
    >>> params
    ['/d', 3, '/d/', 'pdf', 'pdf+ocr', '.md']
    """
    conds, params = [], []
    if scope.paths:
        ors = []
        col = "lower(path)" if nocase else "path"
        for p, glob in scope.patterns():
            p = p.lower() if nocase else p
            if glob:
                ors.append(f"{col} ~ {mark}" if pg else f"{col} GLOB {mark}")
                params.append(pg_regex(p) if pg else sqlite_glob(p))
            else:
                prefix = p if p.endswith("/") else p + "/"
                ors.append(f"({col} = {mark} OR substr({col}, 1, {mark}) = {mark})")
                params += [p, len(prefix), prefix]
        conds.append("(" + " OR ".join(ors) + ")")
    if scope.types:
        ors = []
        if scope.kinds:
            ors.append(f"kind IN ({','.join([mark] * len(scope.kinds))})")
            params += list(scope.kinds)
        for s in scope.suffixes:
            tail = f"right(path, {len(s)})" if pg else f"substr(path, -{len(s)})"
            ors.append(f"lower({tail}) = {mark}")
            params.append(s)
        conds.append("(" + " OR ".join(ors) + ")")
    if scope.since is not None:
        conds.append(f"mtime >= {mark}")
        params.append(scope.since)
    return " AND ".join(conds) or "TRUE", params


def chunk_ids_from_ranges(ranges):
    """Ascending chunk ids from inclusive (first, last) ranges (pairs, or an (m, 2) array) that do not overlap.

    >>> chunk_ids_from_ranges([(7, 9), (3, 3)]).tolist()
    [3, 7, 8, 9]
    """
    import numpy as np

    r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if not len(r):
        return np.zeros(0, dtype=np.int64)
    r = r[np.argsort(r[:, 0], kind="stable")]
    lengths = r[:, 1] - r[:, 0] + 1
    starts = np.repeat(r[:, 0] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return starts + np.arange(int(lengths.sum()), dtype=np.int64)


def near_misses(scope: Scope, mark: str, pg: bool = False) -> tuple[str, list]:
    """(SQL, parameters): up to 3 paths that ``scope`` would allow if its paths ignored case."""
    if not scope.paths:
        return "", []
    cond, params = where(scope, mark, pg, nocase=True)
    return f"SELECT path FROM documents WHERE {cond} ORDER BY path LIMIT 3", params


def id_spans(ids) -> list[tuple[int, int]]:
    """Runs of consecutive ids ((n,) int64 ascending) as inclusive (first, last) pairs.

    >>> id_spans(chunk_ids_from_ranges([(3, 5), (6, 6), (9, 10)]))
    [(3, 6), (9, 10)]
    """
    import numpy as np

    if not len(ids):
        return []
    cut = np.flatnonzero(np.diff(ids) != 1)
    firsts = np.concatenate([[ids[0]], ids[cut + 1]])
    lasts = np.concatenate([ids[cut], [ids[-1]]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))
