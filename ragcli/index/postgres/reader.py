"""Reading a PostgreSQL index: one REPEATABLE READ snapshot, held until ``close``.

``PgReader.open`` locks the index's tables in ACCESS SHARE mode (so a rebuild's switch-over
cannot drop them under it) and then reads everything in one snapshot: a batch committed
meanwhile is invisible until the next open. Dense search is pgvector's HNSW index (cosine
distance, ``hnsw.ef_search`` at least 100); ``exact=True`` makes the planner scan every row
instead (for recall measurements). Lexical search is PostgreSQL full-text search:
``ts_rank_cd`` (cover density) over an english ``tsvector`` of what was embedded, the query's
words OR-ed. It is not BM25 (no IDF): README says how the two compare.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import DamagedIndexError, IndexNotFoundError, StaleIndexError
from ...lexical import changes
from ...types import Chunk, Page
from ..base import CHUNK_COLUMNS, DOC_COLUMNS, SPAN_COLUMNS, DocRow, IndexInfo, chunks_from_rows, damaged
from ..fts import fts_terms
from ..locations import in_command, password_note, shown, split
from ..scoping import Scoped, near_misses, where
from . import schema as pg_schema
from . import server

if TYPE_CHECKING:
    from ...scope import Scope

EF_SEARCH = 100  # HNSW candidates per query (pgvector's default is 40); raised to k when k is larger
TABLES = pg_schema.TABLES[:5]  # what a search reads, locked in this order (as a rebuild's switch-over does)


class PgReader:
    """A read-only view of one committed state of a PostgreSQL index (``IndexReader``)."""

    def __init__(self, url: str, schema: str, con: Any, info: IndexInfo, meta: dict[str, str], version: int) -> None:
        self.url = url
        self.location = shown(url)
        self.schema = schema
        self.con = con
        self.info = info
        self._meta = meta
        self.version = version
        self.open_s = 0.0

    @classmethod
    def open(cls, url: str, con: Any = None) -> PgReader:
        """The snapshot, on ``con`` if given (a connection to ``url``; closed with the reader)."""
        t0 = time.perf_counter()
        _conninfo, schema = split(url)
        con = server.connect(url, "search") if con is None else con
        where, build = shown(url), f"rag ingest PATH --index {in_command(url)}{password_note(url)}"
        try:
            layout = pg_schema.inspect(con, schema)
            if not layout.is_index and layout.foreign:
                raise pg_schema.refusal(url, schema, layout)
            version = pg_schema.version(con, schema) if layout.is_index else 0  # not a rebuild's staging
            if version == 0:
                raise IndexNotFoundError(f"no index at {where}. Build one first: {build}")
            if version < pg_schema.LATEST:
                raise StaleIndexError(
                    f"the index at {where} has schema version {version}, this ragcli needs "
                    f"{pg_schema.LATEST}. Migrate it in place, without re-embedding anything: "
                    f"rag ingest --index {in_command(url)}{password_note(url)}")
            if version > pg_schema.LATEST:
                raise StaleIndexError(
                    f"the index at {where} has schema version {version}, newer than this ragcli reads "
                    f"({pg_schema.LATEST}); upgrade ragcli")
            server.register_vector(con, url)
            s = pg_schema.ident(schema)
            home = pg_schema.ident(pg_schema.extension_schema(con) or "public")
            con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            con.execute(f"SET LOCAL search_path TO {s}, {home}")
            con.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS SHARE MODE")  # before the snapshot
            meta = pg_schema.read_meta(con)  # the snapshot starts here
            try:
                info = pg_schema.read_info(meta)
            except (KeyError, ValueError) as e:
                raise damaged(url, f"bad metadata: {e}") from None
            if info.generation == 0:
                raise IndexNotFoundError(
                    f"the index at {where} has not been built yet (the first ingest did not finish). "
                    f"Run: {build}")
        except BaseException:
            con.close()
            raise
        reader = cls(url, schema, con, info, meta, version)
        reader.open_s = time.perf_counter() - t0
        return reader

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()  # ends the snapshot

    def __enter__(self) -> PgReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def roots(self) -> list[str]:
        return [r for (r,) in self.con.execute("SELECT DISTINCT root FROM documents ORDER BY root")]

    def damaged(self, what: str) -> DamagedIndexError:
        return damaged(self.location, what, self.roots())

    # -- vectors -------------------------------------------------------------------------
    def dense(self, query_vector, k: int, exact: bool = False, within: Scoped | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest chunks; HNSW unless ``exact``. ``within``:
        only those documents' chunks, in the same query as the ordering; HNSW then scans on
        (``hnsw.iterative_scan``) until ``k`` rows pass, and should it stop short of ``k``
        (its scan limit) the query is run again without the index, exactly."""
        import numpy as np

        if within is not None and within.empty:
            return []
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        ef = str(min(1000, max(EF_SEARCH, k)))
        iterative = "strict_order" if k > 1000 or within is not None else "off"  # scan on until k rows
        self.con.execute("SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true), "
                         "set_config('enable_indexscan', %s, true)", (ef, iterative, "off" if exact else "on"))
        if within is None:
            rows = self.con.execute("SELECT id, 1 - (embedding <=> %s) AS sim FROM chunks "
                                    "ORDER BY embedding <=> %s LIMIT %s", (q, q, k)).fetchall()
        else:
            sql = ("SELECT id, 1 - (embedding <=> %s) AS sim FROM chunks WHERE doc_id = ANY(%s) "
                   "ORDER BY embedding <=> %s LIMIT %s")
            args = (q, list(within.doc_ids), q, k)
            rows = self.con.execute(sql, args).fetchall()
            if len(rows) < min(k, within.n_chunks) and not exact:
                self.con.execute("SELECT set_config('enable_indexscan', 'off', true)")
                rows = self.con.execute(sql, args).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def scoped(self, scope: Scope) -> Scoped:
        """The documents ``scope`` allows (``scoping``) and how many chunks they hold, in this snapshot."""
        cond, params = where(scope, "%s", pg=True)
        doc_ids = tuple(int(r[0]) for r in self.con.execute(f"SELECT id FROM documents WHERE {cond}", params))
        if not doc_ids:
            sql, args = near_misses(scope, "%s", pg=True)
            near = tuple(r[0] for r in self.con.execute(sql, args)) if sql else ()
            return Scoped(scope, (), 0, None, self.counts()["documents"], near)
        n = self.con.execute("SELECT count(*) FROM chunks WHERE doc_id = ANY(%s)", (list(doc_ids),)).fetchone()[0]
        return Scoped(scope, doc_ids, int(n), None, self.counts()["documents"])

    def vectors(self, ids: Sequence[int]):
        import numpy as np

        got = dict(self.con.execute("SELECT id, embedding FROM chunks WHERE id = ANY(%s)", (list(ids),)).fetchall())
        missing = [i for i in ids if i not in got]
        if missing:
            raise self.damaged(f"chunk {missing[0]} has no stored vector")
        return np.stack([_array(got[i]) for i in ids]) if ids else \
            np.zeros((0, self.info.dim), dtype=np.float32)

    # -- rows ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return pg_schema.counts(self._meta)

    def chunks_per_document(self) -> dict[str, int]:
        """Chunks of each document, by path (``rag ls``)."""
        return dict(self.con.execute("SELECT d.path, count(c.id) FROM documents d LEFT JOIN chunks c "
                                     "ON c.doc_id = d.id GROUP BY d.path").fetchall())

    def check(self) -> None:
        """Row counts against those recorded with each batch; every chunk has its vector."""
        counts = self.counts()
        real = dict(zip(pg_schema.COUNTS, self.con.execute(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
            "(SELECT count(*) FROM spans), (SELECT count(*) FROM pages)").fetchone(), strict=True))
        if real != counts:
            raise self.damaged(f"the tables hold {real}, the batches recorded {counts}")

    def describe(self) -> dict:
        hnsw = self.con.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = "
                                "'chunks_embedding_hnsw'", (self.schema,)).fetchone()
        return {
            "store": "postgresql",
            "schema": self.schema,
            "schema_version": self.version,
            "search": "approximate" if hnsw else "exact",
            "ann": "pgvector HNSW (cosine, m 16, ef_construction 64)" if hnsw else "",
            "ef_search": EF_SEARCH,
            "vectors": self.counts()["chunks"],
            "lexical": "PostgreSQL full-text search (ts_rank_cd, english)",
            "server": self.con.execute("SHOW server_version").fetchone()[0],
        }

    def size_bytes(self) -> int:
        return int(self.con.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (self.schema,)).fetchone()[0])

    def documents(self) -> list[DocRow]:
        return [DocRow(*r) for r in self.con.execute(f"SELECT {DOC_COLUMNS} FROM documents d ORDER BY d.path")]

    def chunks(self, ids: Sequence[int]) -> dict[int, tuple[Chunk, DocRow]]:
        """Chunk rows (with their spans) and their documents, by chunk id."""
        if not ids:
            return {}
        ids = [int(i) for i in ids]
        rows = self.con.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                "WHERE c.id = ANY(%s)", (ids,)).fetchall()
        spans = self.con.execute(f"SELECT {SPAN_COLUMNS} FROM spans WHERE chunk_id = ANY(%s) "
                                 "ORDER BY chunk_id, start", (ids,))
        return chunks_from_rows(rows, spans)

    def pages(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[Page, str, str]]:
        """The stored text of pages, by (document path, page number): (page, its text's sha256,
        the document's sha256). What ``verify`` checks a quote against when the file is not here."""
        if not keys:
            return {}
        paths, numbers = [p for p, _ in keys], [int(n) for _, n in keys]
        out = {}
        for path, number, text, sha, extraction, title, blocks, block_name, doc_sha in self.con.execute(
                "SELECT d.path, p.number, p.text, p.sha256, p.extraction, p.title, p.blocks, p.block_name, d.sha256 "
                "FROM unnest(%s::text[], %s::int[]) AS k(path, number) JOIN documents d ON d.path = k.path "
                "JOIN pages p ON p.doc_id = d.id AND p.number = k.number", (paths, numbers)):
            page = Page(number, text, extraction=extraction, title=title, blocks=tuple(blocks), block_name=block_name)
            out[(path, number)] = (page, sha, doc_sha)
        return out

    def lexical(self, query: str, k: int, within: Scoped | None = None) -> list[tuple[int, float]]:
        """Full-text search over what was embedded: [(chunk id, ts_rank_cd)], best first, score > 0;
        ``within``: only those documents' chunks, filtered in the query, before the LIMIT."""
        terms = fts_terms(query, segmented=False)
        if not terms or (within is not None and within.empty):
            return []
        only = "" if within is None else " AND doc_id = ANY(%s)"
        scoped = [] if within is None else [list(within.doc_ids)]
        if not changes(query):  # English and every script PostgreSQL's parser cuts into words
            rows = self.con.execute(
                "SELECT id, ts_rank_cd(tsv, q) AS s FROM chunks, to_tsquery('english', %s) AS q "
                f"WHERE tsv @@ q{only} ORDER BY s DESC, id LIMIT %s", (" | ".join(terms), *scoped, k)).fetchall()
        else:  # CJK, Thai, Devanagari...: the segmented words over ``lex`` ('simple') as well
            lex = fts_terms(query)
            rows = self.con.execute(
                "SELECT id, ts_rank_cd(tsv, q) + ts_rank_cd(lex_tsv, l) AS s FROM chunks, "
                "to_tsquery('english', %s) AS q, to_tsquery('simple', %s) AS l "
                f"WHERE (tsv @@ q OR lex_tsv @@ l){only} ORDER BY s DESC, id LIMIT %s",
                (" | ".join(terms), " | ".join(lex), *scoped, k)).fetchall()
        return [(int(i), float(s)) for i, s in rows if s > 0]


def _array(v: Any):
    """A stored vector as numpy float32 (pgvector's ``Vector``, or already an array)."""
    import numpy as np

    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)
