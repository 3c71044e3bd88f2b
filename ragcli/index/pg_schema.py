"""The PostgreSQL layout of an index, as versioned migrations, and nothing else.

One index is one PostgreSQL schema (``ragcli`` unless the URL says ``?schema=NAME``)::

    schema_migrations  version, description, applied_at: which steps below have run
    meta               key/value: embedder, dim, chunking, generation, counts (as SQLite's ``meta``)
    documents          one row per document: path, root, sha256, kind, encoding, size, mtime
    pages              each page's text, its sha256, extraction, title, block offsets: what lets a
                       machine without the source files still verify a quote (``verify``)
    chunks             chunk rows; ``embedding vector(dim)`` (pgvector) with an HNSW index
                       (cosine), ``tsv`` a generated tsvector (english) with a GIN index
    spans              sentence spans with their offsets into the page text
    runs               one row per ``rag ingest``: started, finished (NULL: interrupted), host, pid

Chunk ids come from a sequence, so a deleted chunk's id is never reused. A ``--rebuild``
writes the same tables in ``<schema>__staging`` and ``finish`` renames it into place.
``migrate`` runs the steps not yet applied, each in its own transaction; the schema is
created by the first ingest. The dimension is part of the column type, so it is a
parameter of the first step.
"""

from __future__ import annotations

import json
from typing import Any

from .base import FORMAT_VERSION, IndexInfo

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
)
LATEST = MIGRATIONS[-1][0]
COUNTS = ("documents", "chunks", "spans", "pages")


def ident(name: str) -> str:
    """A schema name as an SQL identifier (names are checked by ``locations.split``)."""
    return '"' + name.replace('"', '""') + '"'


def exists(con: Any, schema: str) -> bool:
    return con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def version(con: Any, schema: str) -> int:
    """The last migration applied to ``schema`` (0: none, or no schema)."""
    row = con.execute("SELECT to_regclass(%s)", (f"{ident(schema)}.schema_migrations",)).fetchone()
    if row[0] is None:
        return 0
    return con.execute(f"SELECT COALESCE(MAX(version), 0) FROM {ident(schema)}.schema_migrations").fetchone()[0]


def migrate(con: Any, schema: str, info: IndexInfo) -> list[int]:
    """Create ``schema`` if needed and apply the missing steps, one transaction each; the
    versions applied. The first step also records ``info`` (generation 0: nothing built yet)."""
    applied = []
    s = ident(schema)
    for number, description, sql in MIGRATIONS:
        with con.transaction():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version integer PRIMARY KEY, "
                        "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            con.execute(f"LOCK TABLE {s}.schema_migrations IN EXCLUSIVE MODE")  # two first ingests at once
            if con.execute(f"SELECT 1 FROM {s}.schema_migrations WHERE version = %s", (number,)).fetchone():
                continue
            con.execute(f"SET LOCAL search_path TO {s}, public")
            con.execute(sql.format(dim=int(info.dim)))
            if number == 1:
                write_info(con, info)
            con.execute(f"INSERT INTO {s}.schema_migrations(version, description) VALUES (%s, %s)",
                        (number, description))
            applied.append(number)
    return applied


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
