"""Scoped queries (``--path``, ``--type``, ``--since``): resolved in the store before ranking.

The key property, on SQLite and on PostgreSQL alike (the ``store`` fixture of the store
contract suite): a scoped search returns ``k`` hits from the allowed documents even when
none of them is in the unscoped top ``k``, for dense search (exact, the approximate index's
bitmap path, pgvector's HNSW) and for full-text search. Then the flags through real ``rag``
processes, the ``Index`` API, and ``rag ask --batch`` with a filter on one line.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ragcli.errors import EmptyScopeError, UsageError
from ragcli.index import NewDocument, SqliteStore
from ragcli.index.sqlite import vectors as vector_module
from ragcli.scope import KINDS, parse_scope
from ragcli.types import Chunk, Document, Page, Span

from .conftest import SAMPLE, rag
from .test_index_store import DIM, store, use_approximate_search, write  # noqa: F401  (``store`` is a fixture)


def _doc(path: str, vecs: np.ndarray, kind: str = "text", mtime: float = 0.0, word: str = "report") -> NewDocument:
    """One document at ``path`` with a chunk per row of ``vecs``, each sentence holding ``word``."""
    chunks, pos, sents = [], 0, []
    for j in range(len(vecs)):
        s = f"{word} section {j} of {Path(path).stem}."
        sents.append(s)
        chunks.append(Chunk(f"{path}-{j}", path, "s" * 64, 1, pos, pos + len(s), 1, 1, s,
                            (Span(1, pos, pos + len(s), 1, 1, s),), "", s, 6))
        pos += len(s) + 1
    text = " ".join(sents)
    return NewDocument(Document(path, "s" * 64, kind, "utf-8", (Page(1, text),), len(text), mtime), "/c",
                       tuple(chunks), vecs.astype(np.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _corpus(rng, n_near: int = 60, per_doc: int = 8):
    """A query, ``n_near`` documents close to it, and three far from it (``/c/far*``, the scope)."""
    q = _unit(rng.normal(size=DIM))
    near = [_doc(f"/c/near{i}.txt", _unit(q + rng.normal(scale=0.05, size=(per_doc, DIM))))
            for i in range(n_near)]
    far = [_doc(f"/c/far{i}.txt", _unit(-q + rng.normal(scale=0.5, size=(per_doc, DIM)))) for i in range(3)]
    return q, near, far


def _paths(reader, hits) -> set[str]:
    return {doc.path for _, doc in reader.chunks([c for c, _ in hits]).values()}


def _far_top(far, q, k: int) -> list[str]:
    """Brute force over the far documents' own vectors: the keys of their ``k`` best chunks."""
    scored = [(float(v @ q), c.key) for nd in far for c, v in zip(nd.chunks, nd.vectors, strict=True)]
    return [key for _, key in sorted(scored, reverse=True)[:k]]


def _keys(reader, hits) -> list[str]:
    rows = reader.chunks([c for c, _ in hits])
    return [rows[c][0].key for c, _ in hits]


@pytest.mark.parametrize("approximate", [False, True], ids=["exact", "approximate"])
def test_a_scoped_search_returns_k_hits_from_documents_outside_the_unscoped_top_k(
        store, monkeypatch, approximate: bool) -> None:  # noqa: F811
    rng = np.random.default_rng(7)
    if approximate:  # SQLite: an IVF index, and the allowed chunks through its bitmap selector
        use_approximate_search(store, monkeypatch)
        monkeypatch.setattr(vector_module, "EXACT_SUBSET", 8)
        q, near, far = _corpus(rng, n_near=600)  # 4,824 chunks
    else:
        q, near, far = _corpus(rng)
    write(store, near[: len(near) // 2], near[len(near) // 2 :] + far)
    with store.reader() as r:
        if approximate and isinstance(store, SqliteStore):
            assert r.describe()["search"] == "approximate"
        unscoped = r.dense(q, 10)
        assert not any(p.startswith("/c/far") for p in _paths(r, unscoped))  # far down the unscoped ranking
        scoped = r.scoped(parse_scope(["/c/far*"]))
        assert len(scoped.doc_ids) == 3 and scoped.n_chunks == 24
        got = r.dense(q, 10, within=scoped)
        assert len(got) == 10 and _paths(r, got) <= {"/c/far0.txt", "/c/far1.txt", "/c/far2.txt"}
        assert _keys(r, got) == _far_top(far, q, 10)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        assert len(r.lexical("report section", 10)) == 10
        assert not any(p.startswith("/c/far") for p in _paths(r, r.lexical("near0 report", 10)))
        lex = r.lexical("near0 report", 10, within=scoped)  # "near0" is in none of them, "report" in all
        assert len(lex) == 10 and _paths(r, lex) <= {"/c/far0.txt", "/c/far1.txt", "/c/far2.txt"}
        even = r.scoped(parse_scope(["/c/near*[02468].txt"]))  # 30 runs of chunk ids: the joined query
        lex = r.lexical("near1 report", 10, within=even)
        assert len(lex) == 10 and all(p[-5] in "02468" for p in _paths(r, lex))
        assert [s for _, s in lex] == sorted((s for _, s in lex), reverse=True)


def test_type_since_and_paths_select_in_the_store(store) -> None:  # noqa: F811
    rng = np.random.default_rng(8)
    v = lambda: _unit(rng.normal(size=(2, DIM)))  # noqa: E731
    jan, jun = datetime(2026, 1, 1).timestamp(), datetime(2026, 6, 1).timestamp()
    write(store, [_doc("/c/a/COCACOLA_2022_10K.pdf", v(), "pdf", jan), _doc("/c/a/scan.pdf", v(), "pdf+ocr", jun),
                  _doc("/c/b/notes.md", v(), "text", jun), _doc("/c/b/tool.py", v(), "text", jan),
                  _doc("/c/b/deck.pptx", v(), "pptx", jun), _doc("/c/ab.txt", v(), "text", jun)])

    def paths(*args, **kw) -> set[str]:
        with store.reader() as r:
            ids = set(r.scoped(parse_scope(*args, **kw)).doc_ids)
            return {d.path for d in r.documents() if d.id in ids}

    assert paths(["*COCA*"]) == {"/c/a/COCACOLA_2022_10K.pdf"}
    assert paths(["*coca*"]) == set()  # case-sensitive, as the file system and `rag ls` are
    assert paths(["/c/a"]) == paths(["/c/a/"]) == {"/c/a/COCACOLA_2022_10K.pdf", "/c/a/scan.pdf"}  # not /c/ab.txt
    assert paths(["/c/b/notes.md", "*.pptx"]) == {"/c/b/notes.md", "/c/b/deck.pptx"}
    assert paths(["/c/?/[!n]*"]) == {"/c/a/COCACOLA_2022_10K.pdf", "/c/a/scan.pdf", "/c/b/tool.py",
                                     "/c/b/deck.pptx"}
    assert paths(types="pdf") == {"/c/a/COCACOLA_2022_10K.pdf", "/c/a/scan.pdf"}  # OCR'd PDFs are PDFs
    assert paths(types="md,PPTX") == {"/c/b/notes.md", "/c/b/deck.pptx"}
    assert paths(types=["py"]) == {"/c/b/tool.py"}
    assert paths(since="2026-03-01") == {"/c/a/scan.pdf", "/c/b/notes.md", "/c/b/deck.pptx", "/c/ab.txt"}
    assert paths(["/c/b"], "text", "2026-03-01") == {"/c/b/notes.md"}  # every part must hold
    assert paths(since="2027-01-01") == set()
    with store.reader() as r:
        miss = r.scoped(parse_scope(["*coca*"]))
        assert miss.empty and miss.near == ("/c/a/COCACOLA_2022_10K.pdf",)
        assert "ignoring case it would match /c/a/COCACOLA_2022_10K.pdf" in \
            miss.scope.nothing_matches(miss.n_documents, miss.near)
        none = r.scoped(parse_scope(["*COCA*"], "docx"))
        assert none.empty and r.dense(rng.normal(size=DIM).astype(np.float32), 5, within=none) == []
        assert r.lexical("report", 5, within=none) == []


@pytest.mark.parametrize("kw,msg", [
    ({"since": "2026-13-01"}, "ISO date"),
    ({"since": "last week"}, "ISO date"),
    ({"types": "pdf,foo"}, "unknown document type 'foo'; known types: text, docx"),
    ({"types": ","}, "names no type"),
    ({"paths": [""]}, "--path takes"),
])
def test_bad_filters_are_usage_errors_that_say_what_is_known(kw: dict, msg: str) -> None:
    with pytest.raises(UsageError, match=msg.replace("(", r"\(")):
        parse_scope(**kw)


def test_a_scope_reads_back_as_the_flags_that_give_it() -> None:
    s = parse_scope(["*COCA*", "docs/"], ".PDF,md", "2026-01-01T09:30+00:00")
    assert s.types == ("pdf", "md") and s.kinds == ("pdf", "pdf+ocr") and s.suffixes == (".md",)
    assert s.since == datetime.fromisoformat("2026-01-01T09:30+00:00").timestamp()
    assert s.describe() == "--path '*COCA*' --path docs/ --type pdf,md --since 2026-01-01T09:30+00:00"
    assert s.to_json() == {"path": ["*COCA*", "docs/"], "type": ["pdf", "md"], "since": "2026-01-01T09:30+00:00"}
    assert not parse_scope() and "pptx" in KINDS


# -- through the front doors ------------------------------------------------------------------


@pytest.fixture
def env(sample_env: dict) -> dict:
    return sample_env


def _rows(r) -> list[dict]:
    return [json.loads(x) for x in r.stdout.decode().splitlines()]


def test_search_flags_restrict_the_passages_and_json_echoes_them(env: dict) -> None:
    q = "tokens context window quantization"
    unscoped = _rows(rag("search", q, "--json", "-k", "5", env=env))
    assert not any(h["source"].endswith("rag_and_citations.txt") for h in unscoped)
    r = rag("search", q, "--path", "*citations*", "--json", "-k", "5", env=env)
    assert r.returncode == 0, r.stderr
    rows = _rows(r)
    assert len(rows) == 5 and all(h["source"].endswith("rag_and_citations.txt") for h in rows)
    assert rows[0]["filters"] == {"path": ["*citations*"], "type": [], "since": None}
    rows = _rows(rag("search", q, "--type", "pdf", "--type", "docx", "--json", "-k", "8", env=env))
    assert rows and {Path(h["source"]).suffix for h in rows} <= {".pdf", ".docx"}
    rows = _rows(rag("search", q, "--type", "md", "--since", "2000-01-01", "--json", env=env))
    assert rows and all(h["source"].endswith(".md") for h in rows)
    human = rag("search", q, "--path", "*sampling*", env=env)
    assert human.returncode == 0 and "sampling_notes.txt" in human.stdout.decode()


@pytest.mark.parametrize("cmd", ["search", "ask"])
def test_a_filter_that_names_no_document_exits_4_with_the_reason(env: dict, cmd: str) -> None:
    r = rag(cmd, "what is a context window", "--path", "*COCA*", env=env)
    assert r.returncode == 4
    assert "no indexed document matches --path '*COCA*' (the index holds 9 documents" in r.stderr.decode()
    j = rag(cmd, "what is a context window", "--since", "2999-01-01", "--json", env=env)
    assert j.returncode == 4
    (out,) = _rows(j)
    assert out["filters"] == {"path": [], "type": [], "since": "2999-01-01"}
    assert "no indexed document matches --since 2999-01-01" in out.get("reason", out.get("error", ""))


@pytest.mark.parametrize("args,msg", [
    (("--type", "pdf,spreadsheet"), "unknown document type 'spreadsheet'; known types:"),
    (("--since", "yesterday"), "--since takes an ISO date"),
])
@pytest.mark.parametrize("cmd", ["search", "ask"])
def test_bad_filters_exit_2(env: dict, cmd: str, args: tuple, msg: str) -> None:
    r = rag(cmd, "context window", *args, env=env)
    assert r.returncode == 2 and msg in r.stderr.decode(), r.stderr


def test_index_api_and_a_batch_line_with_its_own_filter(tmp_path: Path) -> None:
    from ragcli.answer import AnswerParams
    from ragcli.api import Index
    from ragcli.batch import run_batch
    from ragcli.models.embedders import HashEmbedder
    from ragcli.models.generators import ScriptedGenerator

    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    reply = '{"answer": "The K stands for the k-quant family.", "evidence": [1]}'
    with Index(tmp_path / "idx", embedder=HashEmbedder(), generator=ScriptedGenerator(reply)) as idx:
        idx.ingest([docs])
        res = idx.search("K-quant Q4_K_M", k=4, path=f"{docs}/*.txt")
        assert len(res.hits) == 4 and all(h.chunk.source.endswith(".txt") for h in res.hits)
        assert res.scope is not None and res.scope.paths == (f"{docs}/*.txt",)
        assert all(h.origin.kind == "pdf" for h in idx.search("K-quant", k=3, type="pdf", since=datetime(2000, 1, 1)).hits)
        with pytest.raises(EmptyScopeError, match="no indexed document matches --type eml"):
            idx.search("K-quant", type="eml")
        with pytest.raises(UsageError, match="unknown document type"):
            idx.ask("K-quant?", type="xls")
        out: list[dict] = []
        q = "What does the K in Q4_K_M stand for?"
        lines = [json.dumps({"id": 1, "question": q}), json.dumps({"id": 2, "question": q, "path": "*COCA*"}),
                 json.dumps({"id": 3, "question": q, "type": "xls"}), json.dumps({"id": 4, "question": q, "type": []})]
        s = run_batch(lines, idx, out.append, params=AnswerParams(min_sentence_similarity=0.0),
                      scope=parse_scope(types="md"))
    assert [o["status"] for o in out] == ["answered", "no_evidence", "error", "answered"]
    assert all(c["source"].endswith(".md") for c in out[0]["citations"]) and out[0]["filters"]["type"] == ["md"]
    assert "no indexed document matches --path '*COCA*' --type md" in out[1]["reason"]
    assert out[1]["filters"] == {"path": ["*COCA*"], "type": ["md"], "since": None}
    assert "line 3: unknown document type 'xls'" in out[2]["error"]
    assert "filters" not in out[3]  # the line's own empty "type" replaces the flag's
    assert s.questions == 4 and s.no_evidence == 1 and s.errors == 1


def test_an_index_without_chunk_ranges_is_scoped_the_same_and_gets_them_at_the_next_write(tmp_path: Path) -> None:
    import sqlite3

    from ragcli import index

    from .test_index_store import INFO

    st = index.open(tmp_path / "idx")
    rng = np.random.default_rng(9)
    q, near, far = _corpus(rng, n_near=20)
    write(st, near + far)
    with st.reader() as r:
        want = r.scoped(parse_scope(["/c/far*", "/c/near1*"]))
    con = sqlite3.connect(st.current_db())
    con.execute("DROP TABLE chunk_ranges")  # as an index an earlier ragcli wrote
    con.commit()
    con.close()
    with st.reader() as r:
        got = r.scoped(parse_scope(["/c/far*", "/c/near1*"]))
        assert got.doc_ids == want.doc_ids and got.chunk_ids.tolist() == want.chunk_ids.tolist()
        assert len(r.dense(q, 10, within=got)) == 10
    with st.lock():
        st.writer(INFO).close()  # a writer adds the table, filled from chunks
    con = sqlite3.connect(st.current_db())
    assert con.execute("SELECT count(*), sum(n) FROM chunk_ranges").fetchone() == (23, 23 * 8)
    con.close()
