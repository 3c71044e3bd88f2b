"""Why ragcli's SciFact figures differ from the published ones (0.645 dense, 0.665 BM25).

    .venv/bin/python bench/retrieval_gap.py [--data ../shared/eval/scifact]

Run after bench/retrieval.py: it reuses that index (bench/.cache/scifact/index) and changes
one thing at a time, scored by the same ``ragcli.evaluate`` functions:

- dense, first chunk only: each document is its first chunk (title + the first ~200
  wordpieces), close to the published setup, where a document is one embedding of its
  text truncated to the model's window; against ragcli's max-passage (best of all chunks);
- BM25 over whole documents with ragcli's own FTS5 tokenizer (porter, unicode61) and query
  terms, no chunking; against the published Elasticsearch BM25.

The vectors are the stored ones; only the 300 queries are embedded here.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, DEFAULT_EVAL, machine, settings_for, table, write_report  # noqa: E402
from retrieval import load_beir  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.evaluate import ndcg_at_k, recall_at_k  # noqa: E402
from ragcli.index import fts_terms  # noqa: E402
from ragcli.index import open as open_store  # noqa: E402


def scores(rankings: dict[str, list[str]], qrels: dict[str, dict[str, float]]) -> dict:
    n = len(rankings)
    return {"ndcg@10": sum(ndcg_at_k(r, qrels[q], 10) for q, r in rankings.items()) / n,
            "recall@10": sum(recall_at_k(r, qrels[q], 10) for q, r in rankings.items()) / n,
            "recall@100": sum(recall_at_k(r, qrels[q], 100) for q, r in rankings.items()) / n}


def dense_rankings(index: Path, queries: dict[str, str], first_only: bool) -> dict[str, list[str]]:
    """Documents by their best chunk, or by their first chunk only."""
    import numpy as np

    settings = settings_for(index)
    with open_store(index).reader() as st:
        rows = st.con.execute("SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id "
                              "ORDER BY d.path, c.page, c.start").fetchall()
        if first_only:
            rows = [r for i, r in enumerate(rows) if i == 0 or rows[i - 1][1] != r[1]]
        mat = np.asarray(st.vectors([r[0] for r in rows]))  # (n_chunks, dim), as stored
        emb = pipeline.embedder_for_index(st, settings, None)
    docs = [Path(r[1]).stem for r in rows]
    qids = list(queries)
    sims = emb.embed_query([queries[q] for q in qids]) @ mat.T  # (n_queries, n_chunks)
    out = {}
    for i, q in enumerate(qids):
        ranked: list[str] = []
        for j in np.argsort(-sims[i], kind="stable"):
            if docs[j] not in ranked:
                ranked.append(docs[j])
                if len(ranked) == 100:
                    break
        out[q] = ranked
    return out


def bm25_whole_docs(corpus: dict[str, dict], queries: dict[str, str]) -> dict[str, list[str]]:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE f USING fts5(did UNINDEXED, body, tokenize='porter unicode61')")
    con.executemany("INSERT INTO f VALUES (?, ?)",
                    [(did, f"{d.get('title', '')}\n\n{d['text']}") for did, d in corpus.items()])
    out = {}
    for q, text in queries.items():
        match = " OR ".join(f'"{t}"' for t in fts_terms(text))
        out[q] = [r[0] for r in con.execute("SELECT did FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT 100", (match,))]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL / "scifact", help="BEIR folder (corpus.jsonl, ...)")
    args = ap.parse_args(argv)
    index = CACHE / args.data.name / "index"
    if not open_store(index).exists():
        raise SystemExit(f"no index at {index}: run .venv/bin/python bench/retrieval.py first")
    corpus, queries, qrels = load_beir(args.data)
    rows = [
        {"setup": "dense, max-passage (ragcli)", **scores(dense_rankings(index, queries, False), qrels),
         "published": 0.645},
        {"setup": "dense, first chunk only", **scores(dense_rankings(index, queries, True), qrels), "published": 0.645},
        {"setup": "BM25 (FTS5), whole documents", **scores(bm25_whole_docs(corpus, queries), qrels),
         "published": 0.665},
    ]
    print(table(rows, ["setup", "ndcg@10", "recall@10", "recall@100", "published"]))
    path = write_report(f"retrieval-gap-{args.data.name}", {"bench": "retrieval_gap", "machine": machine(),
                                                             "queries": len(queries), "rows": rows}, None)
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
