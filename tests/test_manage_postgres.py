"""``rag rm`` on a real PostgreSQL server, checked in the server's own tables: the documents
named (a glob and a folder) leave with their pages, chunks, sentences and vectors (pgvector
``embedding`` rows), no orphan is left, the counts it reports are the rows that went, a
dense search no longer finds them; removing again removes nothing and is not an error.

A throwaway server (``conftest.pg_server_url``), a schema of its own per test, the real
``rag`` command, the hashing embedder. (``test_manage.py`` runs the same commands on both
stores and compares with ``rag status``; this file looks underneath.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import SAMPLE, rag

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def indexed(pg_index: str, hash_models: Path, tmp_path: Path) -> tuple[dict, Path]:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    (docs / "sub").mkdir()
    (docs / "sub" / "llamas.md").write_text("# Llamas\n\nA llama named Nube guards the alpacas at night.\n\n"
                                            "Llamas spit when they are annoyed, mostly at other llamas.\n")
    env = {"RAG_MODELS": str(hash_models), "RAG_INDEX": pg_index}
    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 0, r.stderr
    return env, docs


def _sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(url.split("?")[0], autocommit=True) as con:
        con.execute(f'SET search_path TO "{schema}", public')
        return con.execute(query, params).fetchall()


def _rows(url: str, paths: list[str]) -> dict[str, int]:
    """Rows in each table that belong to the documents at ``paths``."""
    ids = [i for (i,) in _sql(url, "SELECT id FROM documents WHERE path = ANY(%s)", (paths,))]
    one = lambda q: _sql(url, q, (ids,))[0][0]  # noqa: E731
    return {"documents": len(ids),
            "pages": one("SELECT count(*) FROM pages WHERE doc_id = ANY(%s)"),
            "chunks": one("SELECT count(*) FROM chunks WHERE doc_id = ANY(%s)"),
            "vectors": one("SELECT count(embedding) FROM chunks WHERE doc_id = ANY(%s)"),
            "spans": one("SELECT count(*) FROM spans s JOIN chunks c ON c.id = s.chunk_id WHERE c.doc_id = ANY(%s)")}


def _totals(url: str) -> dict[str, int]:
    return {t: _sql(url, f"SELECT count(*) FROM {t}")[0][0] for t in ("documents", "pages", "chunks", "spans")}


def test_rm_on_postgres_takes_pages_chunks_sentences_and_vectors_and_reports_them(indexed: tuple[dict, Path]) -> None:
    env, docs = indexed
    url = env["RAG_INDEX"]
    gone = sorted([str(p) for p in docs.glob("*.txt")] + [str(docs / "sub" / "llamas.md")])
    before, total = _rows(url, gone), _totals(url)
    assert before["documents"] == 3 and before["chunks"] > 0 and before["vectors"] == before["chunks"]
    assert before["spans"] > 0 and before["pages"] > 0

    r = rag("rm", "--json", "*.txt", str(docs / "sub"), env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["removed"]) == gone and out["documents"] == 3
    assert (out["chunks"], out["sentences"], out["pages"]) == (before["chunks"], before["spans"], before["pages"])

    assert _rows(url, gone) == dict.fromkeys(before, 0)
    after = _totals(url)
    assert after == {"documents": total["documents"] - 3, "pages": total["pages"] - before["pages"],
                     "chunks": total["chunks"] - before["chunks"], "spans": total["spans"] - before["spans"]}
    assert _sql(url, "SELECT count(*) FROM spans WHERE chunk_id NOT IN (SELECT id FROM chunks)") == [(0,)]
    assert _sql(url, "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)") == [(0,)]
    assert _sql(url, "SELECT count(embedding) FROM chunks") == [(after["chunks"],)]
    status = json.loads(rag("status", "--json", env=env).stdout)
    assert (status["documents"], status["chunks"], status["spans"]) == (after["documents"], after["chunks"],
                                                                        after["spans"])
    r = rag("search", "--json", "--mode", "dense", "-k", "50", "a llama named Nube guards the alpacas", env=env)
    assert r.returncode == 0, r.stderr
    sources = {json.loads(line)["source"] for line in r.stdout.decode().splitlines()}
    assert sources and not sources & set(gone)  # the vectors went too: dense search cannot reach them


def test_rm_on_postgres_is_idempotent(indexed: tuple[dict, Path]) -> None:
    env, docs = indexed
    url = env["RAG_INDEX"]
    target = str(docs / "tokenization.md")
    r = rag("rm", target, env=env)
    assert r.returncode == 0, r.stderr
    assert "removed: " in r.stdout.decode() and "1 documents removed" in r.stdout.decode()
    total = _totals(url)
    for again in ([target], ["*.nothing"], [str(docs / "no-such-folder")]):
        r = rag("rm", *again, env=env)
        assert r.returncode == 0, r.stderr
        assert "0 documents removed (0 chunks, 0 sentences, 0 pages)" in r.stdout.decode()
        assert _totals(url) == total
    assert (docs / "tokenization.md").exists()  # the file itself is left alone
