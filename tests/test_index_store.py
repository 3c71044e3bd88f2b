"""The store interface (``ragcli.index.IndexReader`` / ``IndexWriter``), tested as a contract.

Every test takes a ``store`` fixture, a real ``index.Store`` (``index.open``) of each kind:
the SQLite + segments store, and PostgreSQL + pgvector on a real server the
session starts (``conftest.pg_server_url``; skipped, saying why, only when the ``postgres``
extra is not installed). Vectors are synthetic (clustered unit vectors), so the tests need
no model and can check search results exactly.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ragcli import index
from ragcli.index import IndexInfo, NewDocument, SqliteStore
from ragcli.index.sqlite.reader import SqliteReader
from ragcli.index.sqlite.writer import MAX_SEGMENTS, SqliteWriter
from ragcli.types import Chunk, Document, Page, Span

DIM = 32
INFO = IndexInfo("synthetic", "synthetic-32", DIM, {"chunk_tokens": 1})


@pytest.fixture(params=["postgres", "sqlite"])
def store(request, tmp_path: Path) -> index.Store:
    """A real store (``index.open``) of each kind, empty."""
    if request.param == "postgres":
        return index.open(request.getfixturevalue("pg_index"))
    return index.open(tmp_path / "idx")


def use_approximate_search(store: index.Store, monkeypatch) -> None:
    """Make the SQLite store build its approximate index at 4,000 rows (PostgreSQL's HNSW index is always there)."""
    if isinstance(store, SqliteStore):
        monkeypatch.setattr(SqliteWriter, "ann_min_rows", 4000)


def exact(reader, q, k: int) -> list[tuple[int, float]]:
    """The true ``k`` nearest, for recall."""
    if isinstance(reader, SqliteReader):
        return reader.vector_set.search(q, k, exact=True)
    return reader.dense(q, k, exact=True)


def docs(rng, start: int, n_docs: int, per_doc: int = 4, centres=None, tag: str = "doc"):
    """Documents ``{tag}{start}..`` of ``per_doc`` one-sentence chunks, with unit vectors."""
    out = []
    for d in range(start, start + n_docs):
        sents = [f"{tag} {d} sentence {j} about topic{d % 7}." for j in range(per_doc)]
        text = " ".join(sents)
        chunks, pos = [], 0
        for sent in sents:
            span = Span(1, pos, pos + len(sent), 1, 1, sent)
            chunks.append(Chunk(f"{d}-{pos}", f"/c/{tag}{d}.txt", "s" * 64, 1, pos, pos + len(sent), 1, 1, sent,
                                (span,), "", sent, 8))
            pos += len(sent) + 1
        if centres is None:
            v = rng.normal(size=(per_doc, DIM))
        else:
            v = centres[rng.integers(len(centres), size=per_doc)] + rng.normal(scale=0.04, size=(per_doc, DIM))
        v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        doc = Document(f"/c/{tag}{d}.txt", "s" * 64, "text", "utf-8", (Page(1, text),), len(text), 0.0)
        out.append(NewDocument(doc, "/c", tuple(chunks), v))
    return out


def write(store, *batches, remove=(), rebuild=False, finish=True):
    with store.lock():
        w = store.writer(INFO, rebuild=rebuild)
        try:
            w.begin_run(["/c"], rebuild)
            for i, b in enumerate(batches):
                w.commit_batch(remove if i == 0 else (), b)
            if not batches and remove:
                w.commit_batch(remove, [])
            if finish:
                w.finish()
            return w.documents()
        finally:
            w.close()


def test_a_committed_batch_reads_back_whole(store) -> None:
    rng = np.random.default_rng(0)
    batch = docs(rng, 0, 5)
    write(store, batch)
    with store.reader() as r:
        assert r.counts() == {"documents": 5, "chunks": 20, "spans": 20, "pages": 5}
        assert r.info.same_build(INFO) and r.info.generation >= 1
        for nd in batch:
            for chunk, vec in zip(nd.chunks, nd.vectors, strict=True):
                (cid, score), *_ = r.dense(vec, 1)
                got, doc = r.chunks([cid])[cid]
                assert got.text == chunk.text and doc.path == nd.doc.path and score == pytest.approx(1.0)
                np.testing.assert_allclose(r.vectors([cid])[0], vec, rtol=1e-6)
        assert r.lexical("doc 3 sentence", 3)


def test_removed_documents_never_come_back_from_search(store) -> None:
    rng = np.random.default_rng(1)
    batch = docs(rng, 0, 6)
    rows = write(store, batch)
    gone = [rows["/c/doc1.txt"].id, rows["/c/doc4.txt"].id]
    write(store, docs(rng, 6, 2), remove=gone)
    with store.reader() as r:
        assert r.counts()["documents"] == 6 and r.counts()["chunks"] == 24
        for nd in (batch[1], batch[4]):
            hits = r.dense(nd.vectors[0], 50)
            found = r.chunks([cid for cid, _ in hits])
            assert all(doc.path != nd.doc.path for _, doc in found.values())
        assert all(not t.startswith("doc 1 ") for t in
                   [c.text for c, _ in r.chunks([cid for cid, _ in r.lexical("doc 1 sentence", 50)]).values()])


def test_a_reader_keeps_its_snapshot_while_batches_commit(store) -> None:
    rng = np.random.default_rng(2)
    write(store, docs(rng, 0, 3))
    with store.reader() as before:
        write(store, docs(rng, 3, 3))
        assert before.counts()["documents"] == 3
        assert len(before.dense(np.ones(DIM, dtype=np.float32) / DIM**0.5, 100)) == 12
    with store.reader() as after:
        assert after.counts()["documents"] == 6


def test_many_small_batches_are_merged_and_old_readers_still_read(store) -> None:
    rng = np.random.default_rng(3)
    batches = [docs(rng, 5 * i, 5) for i in range(MAX_SEGMENTS + 4)]
    write(store, *batches[:3])
    with store.reader() as old:
        write(store, *batches[3:])  # finish merges: the files ``old`` mapped are deleted
        v = batches[0][0].vectors[0]
        assert old.dense(v, 1)[0][1] == pytest.approx(1.0)
    with store.reader() as r:
        d = r.describe()
        assert d["vectors"] == r.counts()["chunks"] == 4 * 5 * len(batches)
        if isinstance(store, SqliteStore):
            assert d["segments"] <= MAX_SEGMENTS
        for b in batches:
            assert r.dense(b[-1].vectors[-1], 1)[0][1] == pytest.approx(1.0)


def test_large_index_switches_to_approximate_search_with_high_recall(store, monkeypatch) -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(200, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    use_approximate_search(store, monkeypatch)
    rows = write(store, *[docs(rng, 250 * i, 250, centres=centres) for i in range(5)])  # 5,000 chunks
    gone = [rows[f"/c/doc{d}.txt"].id for d in range(0, 100)]
    write(store, docs(rng, 2000, 25, centres=centres), remove=gone)  # tombstones and an exact tail
    removed = {f"/c/doc{d}.txt" for d in range(100)}
    with store.reader() as r:
        d = r.describe()
        assert d["search"] == "approximate" and d.get("ann_recall_at_10", 1.0) >= 0.95
        queries = centres[rng.integers(len(centres), size=100)] + rng.normal(scale=0.04, size=(100, DIM))
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        hits = 0
        for q in queries:
            got = r.dense(q, 10)
            assert len(got) == 10
            assert not any(doc.path in removed for _, doc in r.chunks([c for c, _ in got]).values())
            hits += len({c for c, _ in got} & {c for c, _ in exact(r, q, 10)})
        assert hits / 1000 >= 0.95
        wide = r.dense(queries[0], 400)
        found = r.chunks([c for c, _ in wide])
        assert len(found) == len(wide) and not any(doc.path in removed for _, doc in found.values())


def test_a_rebuild_is_invisible_until_it_finishes(store) -> None:
    rng = np.random.default_rng(5)
    write(store, docs(rng, 0, 4))
    other = IndexInfo("synthetic", "synthetic-32b", DIM, {"chunk_tokens": 2})
    with store.lock():
        w = store.writer(other, rebuild=True)
        w.begin_run(["/c"], True)
        w.commit_batch([], docs(rng, 100, 2, tag="new"))
        with store.reader() as r:
            assert r.counts()["documents"] == 4 and r.info.embedder_id == "synthetic-32"
        w.finish()
        w.close()
    with store.reader() as r:
        assert r.counts()["documents"] == 2 and r.info.embedder_id == "synthetic-32b"


def test_a_format_1_index_is_upgraded_in_place_without_re_embedding(tmp_path: Path) -> None:
    """Format 1: vectors as SQLite blobs (and a FAISS file), no segments, no counts in meta."""
    rng = np.random.default_rng(6)
    loc = tmp_path / "v1"
    store = index.open(loc)
    batch = docs(rng, 0, 3)
    write(store, batch)
    # turn it into what ragcli 0.1 wrote
    con = sqlite3.connect(loc / "index.sqlite")
    con.execute("CREATE TABLE vectors (chunk_id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
    ids = [r[0] for r in con.execute("SELECT id FROM chunks ORDER BY id")]
    vecs = np.concatenate([nd.vectors for nd in batch])
    con.executemany("INSERT INTO vectors VALUES (?, ?)", [(i, v.tobytes()) for i, v in zip(ids, vecs, strict=True)])
    for t in ("segments", "tombstones", "runs"):
        con.execute(f"DROP TABLE {t}")
    con.execute("DELETE FROM meta WHERE key LIKE 'n\\_%' ESCAPE '\\' OR key = 'next_chunk_id'")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    con.commit()
    con.close()
    shutil.rmtree(loc / "segments")
    (loc / "vectors-1.faiss").write_bytes(b"old")
    with pytest.raises(index.StaleIndexError, match="rag ingest --index"):
        store.reader()
    with store.lock():
        w = store.writer(INFO)
        assert any("upgraded" in m for m in w.messages)
        w.close()
    assert not (loc / "vectors-1.faiss").exists()
    with store.reader() as r:
        assert r.counts() == {"documents": 3, "chunks": 12, "spans": 12, "pages": 3}
        assert r.dense(vecs[5], 1)[0] == (ids[5], pytest.approx(1.0))


class _InterruptAt:
    """A writer's connection that raises KeyboardInterrupt right after ``sql`` has run in the
    batch's own transaction (the one that names its segment; the intent committed before it
    is left alone): a Ctrl-C whose handler runs at the first bytecode after the statement returned."""

    def __init__(self, con: sqlite3.Connection, sql: str) -> None:
        self._con, self._sql, self._armed = con, sql, False

    def execute(self, sql, *args):
        cur = self._con.execute(sql, *args)
        self._armed = self._armed or sql.startswith("INSERT INTO segments")
        if self._armed and sql.startswith(self._sql):
            self._armed, self._sql = False, "-"  # once
            raise KeyboardInterrupt
        return cur

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("at", ["COMMIT", "INSERT INTO segments"])
def test_a_ctrl_c_right_after_a_statement_keeps_the_batch_whole_or_absent(tmp_path: Path, at: str) -> None:
    """After COMMIT the batch is the database's, files included (a Ctrl-C there once left a
    committed segment without its files); before it, the batch and its files are gone."""
    store = index.open(tmp_path / "idx")
    rng = np.random.default_rng(7)
    first, second = docs(rng, 0, 3), docs(rng, 10, 2, tag="late")
    write(store, first)
    with store.lock():
        w = store.writer(INFO)
        try:
            w.begin_run(["/c"], False)
            w.con = _InterruptAt(w.con, at)
            with pytest.raises(KeyboardInterrupt):
                w.commit_batch([], second)
            w.con = w.con._con
        finally:
            w.close()
    with store.reader() as r:  # opens every segment the database names
        expect = first + second if at == "COMMIT" else first
        assert r.counts()["documents"] == len(expect)
        for nd in expect:
            assert r.dense(nd.vectors[0], 1)[0][1] == pytest.approx(1.0)
    named = {row[0] for row in sqlite3.connect(store.location / "index.sqlite").execute("SELECT name FROM segments")}
    on_disk = {f.name.split(".")[0] for f in (store.location / "segments").iterdir()}
    assert on_disk == named


# BM25 beyond English: documents in scripts without spaces or with combining vowels, one sentence each
WORLD = {
    "zh": "东京是日本的首都，人口约一千四百万。",
    "ja": "大阪城は豊臣秀吉によって築かれました。",
    "th": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "hi": "दिल्ली भारत की राजधानी है और यमुना नदी के किनारे बसी है।",
    "ar": "القاهرة هي عاصمة مصر وأكبر مدنها.",
    "en": "Photosynthesis converts light energy into chemical energy.",
}


def world_docs(rng) -> list[NewDocument]:
    out = []
    for lang, sent in WORLD.items():
        span = Span(1, 0, len(sent), 1, 1, sent)
        chunk = Chunk(f"k-{lang}", f"/c/{lang}.txt", "s" * 64, 1, 0, len(sent), 1, 1, sent, (span,), "", sent, 8)
        doc = Document(f"/c/{lang}.txt", "s" * 64, "text", "utf-8", (Page(1, sent),), len(sent), 0.0)
        v = rng.normal(size=(1, DIM))
        out.append(NewDocument(doc, "/c", (chunk,), (v / np.linalg.norm(v)).astype(np.float32)))
    return out


@pytest.mark.parametrize(("query", "lang"), [
    ("日本的首都是哪里？", "zh"), ("豊臣秀吉", "ja"), ("เมืองหลวงของประเทศไทย", "th"),
    ("यमुना नदी", "hi"), ("ما هي عاصمة مصر؟", "ar"), ("light energy", "en"),
])
def test_bm25_finds_words_in_scripts_beyond_english(store, query: str, lang: str) -> None:
    write(store, world_docs(np.random.default_rng(1)))
    with store.reader() as r:
        hits = r.lexical(query, 3)
        assert hits, query
        got, doc = r.chunks([hits[0][0]])[hits[0][0]]
        assert doc.path == f"/c/{lang}.txt"


def test_an_index_from_before_lexical_text_is_re_indexed_for_bm25_without_re_embedding(tmp_path: Path) -> None:
    store = index.open(tmp_path / "idx")
    write(store, world_docs(np.random.default_rng(1)))
    db = store.current_db()
    con = sqlite3.connect(db)  # as an older ragcli wrote it: each chunk's text as it reads, no meta key
    con.execute("DELETE FROM chunks_fts")
    con.execute("INSERT INTO chunks_fts(rowid, embed) SELECT id, embed FROM chunks")
    con.execute("DELETE FROM meta WHERE key = 'lexical_text'")
    con.commit()
    con.close()
    with store.reader() as r:  # read as it is: the words it was indexed with
        assert not r.lexical("豊臣秀吉", 3)
        assert r.lexical("light energy", 3)
    with store.lock():
        w = store.writer(INFO)
        assert any("re-indexed 4 chunks for BM25" in m for m in w.messages), w.messages
        w.close()
    with store.reader() as r:
        (cid, _), *_ = r.lexical("豊臣秀吉", 3)
        assert r.chunks([cid])[cid][1].path == "/c/ja.txt"


def test_a_postgres_index_from_before_lex_is_migrated_in_place(pg_server_url: str, pg_index: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    store = index.open(pg_index)
    write(store, world_docs(np.random.default_rng(1)))
    schema = pg_index.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_server_url, autocommit=True) as con:  # as schema version 2 left it
        con.execute(f'ALTER TABLE "{schema}".chunks DROP COLUMN lex_tsv, DROP COLUMN lex')
        con.execute(f'DELETE FROM "{schema}".schema_migrations WHERE version = 3')
    with pytest.raises(index.StaleIndexError, match="rag ingest"):
        store.reader()
    with store.lock():
        w = store.writer(INFO)
        assert any("schema version 3" in m for m in w.messages), w.messages
        w.close()
    with store.reader() as r:
        (cid, _), *_ = r.lexical("豊臣秀吉", 3)
        assert r.chunks([cid])[cid][1].path == "/c/ja.txt"


def test_open_reads_the_location_once_and_a_directory_never_loads_the_server_driver(tmp_path: Path) -> None:
    """``index.open`` picks the store by the location alone, touching nothing; the SQLite path
    (and ``rag --help``) import neither the PostgreSQL store nor psycopg."""
    import subprocess
    import sys

    code = ("import sys; from ragcli.cli import app; from ragcli import index; "
            f"s = index.open({str(tmp_path / 'idx')!r}); assert not s.exists() and s.recorded_roots() == []; "
            "bad = [m for m in ('psycopg', 'pgvector', 'ragcli.index.postgres') if m in sys.modules]; "
            "assert not bad, bad; print(type(s).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "SqliteStore", out.stderr
    assert not (tmp_path / "idx").exists()
    url = index.open("postgresql://me:secret@nowhere.invalid/db")  # no connection yet
    assert type(url).__name__ == "PostgresStore" and url.shown == "postgresql://me:***@nowhere.invalid/db"
    assert url.directory is None and index.open(tmp_path).directory == tmp_path


def test_what_an_index_was_built_with_takes_one_connection_to_a_server(store, monkeypatch) -> None:
    assert store.built_with() is None  # nothing there yet
    write(store, docs(np.random.default_rng(8), 0, 2))
    if not isinstance(store, SqliteStore):
        from ragcli.index.postgres import server

        opened = []
        connect = server.connect
        monkeypatch.setattr(server, "connect", lambda *a: opened.append(a) or connect(*a))
        assert store.built_with().same_build(INFO) and len(opened) == 1
    assert store.built_with().same_build(INFO)
