"""The PostgreSQL layout of an index, as versioned migrations, and which schemas are ragcli's.

One index is one PostgreSQL schema (``ragcli`` unless the URL says ``?schema=NAME``)::

    ragcli_index       the marker: one row written when ragcli claims the schema (role "index"
                       or "staging", whether ragcli ran CREATE SCHEMA for it, when)
    schema_migrations  version, description, applied_at: which steps below have run
    meta               key/value: embedder, dim, chunking, generation, counts (as SQLite's ``meta``)
    documents          one row per document: path, root, sha256, kind, encoding, size, mtime
    pages              each page's text, its sha256, extraction, title, block offsets: what lets a
                       machine without the source files still verify a quote (``verify``)
    chunks             chunk rows; ``embedding vector(dim)`` (pgvector) with an HNSW index
                       (cosine), ``tsv`` a generated tsvector (english) with a GIN index
    spans              sentence spans with their offsets into the page text
    runs               one row per ``rag ingest``: started, finished (NULL: interrupted), host, pid

Ownership (``inspect``, ``claim``): ragcli writes only to a schema that holds nothing but the
relations above (and their serial sequences). A schema that is absent is created and marked;
an empty one (a DBA made it for ragcli) is adopted and marked, never dropped; one that an
earlier ragcli built (exactly these tables, no marker) is marked and used as it is; any other
is refused, naming what is in it. Nothing is ever dropped with CASCADE: a rebuild drops the
tables above by name, and a schema only when its marker says ragcli created it, both
RESTRICT, so PostgreSQL itself refuses if anything else depends on them. The ``vector``
extension is never created in, or dropped with, an index schema.

Chunk ids come from a sequence, so a deleted chunk's id is never reused. A ``--rebuild``
writes the same tables in ``<schema>__staging`` (claimed like any index schema) and
``replace_tables`` moves them into the index's schema in one transaction. ``migrate`` runs
the steps not yet applied, each in its own transaction. The dimension is part of the column
type, so it is a parameter of the first step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...errors import StorageError, UsageError
from ..base import FORMAT_VERSION, IndexInfo
from ..locations import in_command, password_note, shown, with_schema

# (version, description, SQL); "{dim}" is the embedder's dimension. Append only: never edit a shipped step.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "documents, pages, chunks (pgvector + tsvector), spans, runs, meta", """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE documents (
    id bigserial PRIMARY KEY, path text UNIQUE NOT NULL, root text NOT NULL, sha256 text NOT NULL,
    kind text NOT NULL, encoding text NOT NULL, size bigint NOT NULL, mtime double precision NOT NULL,
    n_pages integer NOT NULL, ingested_at double precision NOT NULL);
CREATE TABLE pages (
    doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE, number integer NOT NULL,
    text text NOT NULL, sha256 text NOT NULL, extraction text NOT NULL, title text NOT NULL,
    blocks integer[] NOT NULL, block_name text NOT NULL, PRIMARY KEY (doc_id, number));
CREATE TABLE chunks (
    id bigserial PRIMARY KEY, doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key text NOT NULL, page integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL,
    line_start integer NOT NULL, line_end integer NOT NULL, text text NOT NULL,
    heading text NOT NULL, embed text NOT NULL, n_tokens integer NOT NULL,
    embedding vector({dim}) NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, embed)) STORED);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE TABLE spans (
    chunk_id bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    page integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL,
    line_start integer NOT NULL, line_end integer NOT NULL, text text NOT NULL);
CREATE INDEX spans_chunk ON spans(chunk_id);
CREATE TABLE runs (
    id bigserial PRIMARY KEY, started double precision NOT NULL, finished double precision,
    host text NOT NULL, pid integer NOT NULL, paths jsonb NOT NULL, rebuild boolean NOT NULL,
    batches integer NOT NULL DEFAULT 0);
"""),
    (2, "HNSW index on chunks.embedding (cosine; m 16, ef_construction 64)", """
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
"""),
    # lex: BM25's text where it differs from embed (ragcli.lexical: CJK as character pairs,
    # non-Latin marks dropped), else NULL; searched with the 'simple' config beside tsv.
    # ``migrate`` fills it for the chunks already there (``backfill_lexical``).
    (3, "chunks.lex and lex_tsv ('simple' tsvector): full-text search beyond English", """
ALTER TABLE chunks ADD COLUMN lex text;
ALTER TABLE chunks ADD COLUMN lex_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(lex, ''))) STORED;
CREATE INDEX chunks_lex_tsv ON chunks USING gin (lex_tsv);
"""),
)
LATEST = MIGRATIONS[-1][0]
COUNTS = ("documents", "chunks", "spans", "pages")
MARKER = "ragcli_index"
# Every table the migrations create, in the order readers lock them (``reader.TABLES`` first),
# and the sequences their bigserial columns own: together, all that an index schema may hold.
TABLES = ("meta", "documents", "pages", "chunks", "spans", "runs", "schema_migrations")
SEQUENCES = ("documents_id_seq", "chunks_id_seq", "runs_id_seq")
_MARKER_SQL = f"""CREATE TABLE {{s}}.{MARKER} (
    role text NOT NULL CHECK (role IN ('index', 'staging')), created_schema boolean NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)"""
_NOTE = ("a ragcli index: ragcli writes, replaces and drops only the tables of its layout here; "
         "the schema itself only if created_schema")


def ident(name: str) -> str:
    """A schema name as an SQL identifier (names are checked by ``locations.split``)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Layout:
    """What one schema holds, as far as ragcli is concerned."""

    exists: bool
    role: str | None  # the marker's role ("index", "staging"); None: no marker
    created: bool  # the marker says ragcli ran CREATE SCHEMA for it (so it may drop it)
    tables: tuple[str, ...]  # ragcli's tables present, in ``TABLES`` order
    foreign: tuple[str, ...]  # relations ragcli did not create (tables, views, sequences, ...)
    owned: bool  # the connected user owns the schema

    @property
    def legacy(self) -> bool:
        """Built by a ragcli from before the marker: exactly its tables, nothing else."""
        return self.role is None and self.tables == TABLES and not self.foreign

    @property
    def is_index(self) -> bool:
        """What a reader may read: a marked index, or all of ragcli's tables (whatever else is there)."""
        return self.role == "index" or (self.role is None and self.tables == TABLES)


def inspect(con: Any, schema: str) -> Layout:
    """``schema``'s layout, from the catalogs (indexes belong to their tables and are not listed)."""
    row = con.execute("SELECT oid, pg_get_userbyid(nspowner) = current_user FROM pg_namespace WHERE nspname = %s",
                      (schema,)).fetchone()
    if row is None:
        return Layout(False, None, False, (), (), False)
    oid, owned = row
    rels = dict(con.execute("SELECT relname, relkind::text FROM pg_class WHERE relnamespace = %s "
                            "AND relkind NOT IN ('i', 'I')", (oid,)).fetchall())
    role, created = None, False
    if rels.get(MARKER) == "r" and {"role", "created_schema"} <= {c for (c,) in con.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (f"{ident(schema)}.{MARKER}",))}:
        marker = con.execute(f"SELECT role, created_schema FROM {ident(schema)}.{MARKER} LIMIT 1").fetchone()
        role, created = marker if marker else (None, False)
    tables = tuple(t for t in TABLES if rels.get(t) == "r")
    if role is None and tables != TABLES:  # ragcli's names, but nothing proves ragcli made them
        tables = ()
    own = {t: "r" for t in tables} | ({q: "S" for q in SEQUENCES} if tables else {}) | ({MARKER: "r"} if role else {})
    foreign = tuple(sorted(n for n, kind in rels.items() if own.get(n) != kind))
    return Layout(True, role, bool(created), tables, foreign, bool(owned))


def refusal(url: str, schema: str, layout: Layout, what: str = "an index") -> UsageError:
    """Why ``schema`` cannot hold ``what``, and the flag that names one that can."""
    if layout.foreign:
        names = ", ".join(layout.foreign[:5]) + (f" and {len(layout.foreign) - 5} more" if len(layout.foreign) > 5
                                                  else "")
        why = f"it holds tables ragcli did not create ({names})"
    elif layout.role == "staging":
        why = "it holds the unfinished rebuild of another ragcli index"
    else:
        why = "it holds another ragcli index"
    return UsageError(f"schema {schema!r} at {shown(url)} cannot hold {what}: {why}, and ragcli writes, replaces "
                      "and drops tables only in a schema of its own. Nothing was changed. Give the index a "
                      f"schema of its own: --index {in_command(with_schema(url, 'NEWNAME'))}{password_note(url)}")


def claim(con: Any, schema: str, role: str, url: str) -> Layout:
    """Make ``schema`` ragcli's for ``role`` ("index", or "staging" for a rebuild), in one
    transaction: create and mark it if absent, mark it if empty or built by an earlier ragcli;
    refuse (``refusal``) if it holds anything else or is marked for another role."""
    psycopg = _driver()
    with con.transaction():
        layout = inspect(con, schema)
        if layout.legacy and role == "staging" and con.execute(  # an earlier ragcli's rebuild, or an index?
                f"SELECT bool_or(NOT rebuild) FROM {ident(schema)}.runs").fetchone()[0]:
            layout = Layout(True, "index", False, layout.tables, (), layout.owned)
        if layout.foreign or layout.role not in (None, role):
            raise refusal(url, schema, layout, "an index" if role == "index" else "the rebuild of its index")
        if layout.role is None:
            created = not layout.exists or (layout.legacy and layout.owned)
            user = con.execute("SELECT current_user").fetchone()[0]
            try:
                if not layout.exists:
                    con.execute(f"CREATE SCHEMA {ident(schema)}")
                con.execute(_MARKER_SQL.format(s=ident(schema)))
            except psycopg.errors.InsufficientPrivilege:
                fix = (f"CREATE SCHEMA {ident(schema)} AUTHORIZATION {ident(user)};" if not layout.exists
                       else f"GRANT CREATE ON SCHEMA {ident(schema)} TO {ident(user)};")
                raise StorageError(f"user {user!r} may not create tables in schema {schema!r} at {shown(url)}. "
                                   f"Have the database's owner run: {fix} (ragcli adopts an empty schema and "
                                   "never drops one it did not create)") from None
            con.execute(f"INSERT INTO {ident(schema)}.{MARKER}(role, created_schema, note) VALUES (%s, %s, %s)",
                        (role, created, _NOTE))
            con.execute(f"COMMENT ON TABLE {ident(schema)}.{MARKER} IS '{_NOTE}'")  # a constant: no quotes in it
            layout = inspect(con, schema)
    return layout


def drop_tables(con: Any, schema: str, tables: tuple[str, ...]) -> None:
    """Drop ragcli's ``tables`` in ``schema`` by name, RESTRICT: a view of the user's that
    reads one makes PostgreSQL refuse, and nothing else goes with them."""
    if tables:
        con.execute(f"DROP TABLE {', '.join(f'{ident(schema)}.{ident(t)}' for t in tables)} RESTRICT")


def drop_if_created(con: Any, schema: str) -> bool:
    """Drop ``schema`` (RESTRICT) if its marker says ragcli created it and ragcli's tables and
    marker are all it holds; whether it was dropped. Run inside a transaction."""
    layout = inspect(con, schema)
    if not layout.exists or not layout.created or layout.foreign:
        return False
    drop_tables(con, schema, (*layout.tables, MARKER))
    with con.transaction():  # a savepoint: anything else in the schema (a function, a type) keeps it
        try:
            con.execute(f"DROP SCHEMA {ident(schema)} RESTRICT")
        except _driver().errors.DependentObjectsStillExist:
            return False
    return True


def replace_tables(con: Any, source: str, target: str) -> None:
    """Inside the caller's transaction: drop ``target``'s ragcli tables and move ``source``'s
    into ``target`` (ALTER TABLE ... SET SCHEMA: indexes, constraints and sequences go with
    them). ``target`` itself, its marker, its grants and anything else in it stay."""
    before, after = inspect(con, target), inspect(con, source)
    for layout, name in ((before, target), (after, source)):
        if layout.foreign:
            raise StorageError(f"schema {name!r} gained tables ragcli did not create ({', '.join(layout.foreign)}) "
                               "during the rebuild; nothing was switched. Move them elsewhere and run the "
                               "rebuild again")
    present = [f"{ident(target)}.{ident(t)}" for t in before.tables]
    if present:  # readers lock (meta, documents, ...) in this order too: no deadlock, they finish first
        con.execute(f"LOCK TABLE {', '.join(present)} IN ACCESS EXCLUSIVE MODE")
    drop_tables(con, target, before.tables)
    for t in after.tables:
        con.execute(f"ALTER TABLE {ident(source)}.{ident(t)} SET SCHEMA {ident(target)}")


def extension_schema(con: Any) -> str | None:
    """The schema the ``vector`` extension lives in (None: not installed in this database)."""
    row = con.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                      "WHERE e.extname = 'vector'").fetchone()
    return row[0] if row else None


def version(con: Any, schema: str) -> int:
    """The last migration applied to ragcli's tables in ``schema`` (0: none yet, no schema, or
    tables ragcli did not make, such as another tool's ``schema_migrations``)."""
    if "schema_migrations" not in inspect(con, schema).tables:
        return 0
    return con.execute(f"SELECT COALESCE(MAX(version), 0) FROM {ident(schema)}.schema_migrations").fetchone()[0]


def migrate(con: Any, schema: str, info: IndexInfo) -> list[int]:
    """Apply the missing steps to ``schema`` (already ``claim``ed), one transaction each; the
    versions applied. The first step also records ``info`` (generation 0: nothing built yet)."""
    applied = []
    s = ident(schema)
    for number, description, sql in MIGRATIONS:
        with con.transaction():
            con.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version integer PRIMARY KEY, "
                        "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            con.execute(f"LOCK TABLE {s}.schema_migrations IN EXCLUSIVE MODE")  # two first ingests at once
            if con.execute(f"SELECT 1 FROM {s}.schema_migrations WHERE version = %s", (number,)).fetchone():
                continue
            con.execute(f"SET LOCAL search_path TO {s}, {ident(extension_schema(con) or 'public')}")
            con.execute(sql.format(dim=int(info.dim)))
            if number == 1:
                write_info(con, info)
            if number == 3:
                backfill_lexical(con)
            con.execute(f"INSERT INTO {s}.schema_migrations(version, description) VALUES (%s, %s)",
                        (number, description))
            applied.append(number)
    return applied


def backfill_lexical(con: Any) -> None:
    """Fill ``chunks.lex`` for the chunks BM25 reads differently (``lexical.changes``)."""
    from ...lexical import changes, lexical_text

    rows = [(lexical_text(embed), cid) for cid, embed in
            con.execute("SELECT id, embed FROM chunks WHERE embed ~ '[^\\x01-\\x7f]'").fetchall()
            if changes(embed)]
    if rows:
        with con.cursor() as cur:
                cur.executemany("UPDATE chunks SET lex = %s WHERE id = %s", rows)


def read_meta(con: Any) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def read_info(rows: dict[str, str]) -> IndexInfo:
    return IndexInfo(
        embedder=rows["embedder"],
        embedder_id=rows.get("embedder_id", ""),
        dim=int(rows["dim"]),
        chunking=json.loads(rows["chunking"]),
        format_version=FORMAT_VERSION,
        generation=int(rows.get("generation", "0")),
        last_ingest=float(rows.get("last_ingest", "0")),
        embedder_backend=rows.get("embedder_backend", ""),
    )


def write_info(con: Any, info: IndexInfo) -> None:
    set_meta(con, {
        "embedder": info.embedder,
        "embedder_id": info.embedder_id,
        "dim": str(info.dim),
        "chunking": json.dumps(info.chunking, sort_keys=True),
        "generation": str(info.generation),
        "last_ingest": repr(info.last_ingest),
        "embedder_backend": info.embedder_backend,
    })


def set_meta(con: Any, rows: dict[str, str]) -> None:
    with con.cursor() as cur:
        cur.executemany("INSERT INTO meta(key, value) VALUES (%s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", list(rows.items()))


def counts(rows: dict[str, str]) -> dict[str, int]:
    return {k: int(rows.get(f"n_{k}", "0")) for k in COUNTS}


def _driver() -> Any:
    """psycopg, for its error classes (here a connection is open: it is installed, ``server.driver``)."""
    import psycopg

    return psycopg
