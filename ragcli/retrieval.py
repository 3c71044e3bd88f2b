"""Query -> ranked ``Hit``s, in three modes over one ``Store``.

- ``dense``: cosine similarity of embeddings (the index's vector search over unit vectors);
- ``lexical``: BM25 over chunk text (SQLite FTS5, porter stemming);
- ``hybrid``: reciprocal-rank fusion of both lists (score = sum of w / (60 + rank), ``w`` 1 for
  the dense list and ``lexical_weight`` for BM25's), plus, with ``doc_weight`` > 0, a document
  signal: each chunk gains ``doc_weight`` times the fused scores of its document's other
  chunks in the pool (a document several of whose chunks match is more likely the right one),
  and a third list, weighted ``name_weight``: the pooled chunks of documents whose file name
  shares words with the query ("3M" and "FY2018" -> ``3M_2018_10K.pdf``), best match first
  (IDF-weighted over the pool's documents), ties by the fused score. A query that names no
  file, or files named by numbers or hashes (``chunking.name_words`` gives them no words),
  leaves the ranking as it was.

Every hit also carries ``similarity``, the dense cosine with the query, whatever the
mode: ``answer`` uses it to decide whether the index holds evidence at all.
This module does not embed documents nor talk to the LLM.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .chunking import name_words
from .config import DEFAULT_K, DEFAULT_MODE, as_mode
from .index import IndexReader, fts_terms
from .models.embedders import Embedder
from .types import Hit

if TYPE_CHECKING:
    import numpy as np

    from .index.scoping import Scoped

RRF_K = 60  # the usual constant of reciprocal-rank fusion (Cormack et al., 2009)
LEXICAL_WEIGHT = 1.0  # BM25's list against the dense list in the fusion
DOC_WEIGHT = 0.0  # the document signal's weight (0: off)
NAME_WEIGHT = 2.0  # the file-name list's weight in the fusion (0: off): as much as dense and BM25 together


def search(store: IndexReader, embedder: Embedder, query: str, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
           query_vector: np.ndarray | None = None, *, lexical_weight: float = LEXICAL_WEIGHT,
           doc_weight: float = DOC_WEIGHT, name_weight: float = NAME_WEIGHT,
           within: Scoped | None = None) -> list[Hit]:
    """The ``k`` best chunks for ``query``, best first; ``within``: only from the documents of
    a resolved scope (``store.scoped``), which both searches apply before they rank."""
    import numpy as np

    mode = as_mode(mode)
    if k <= 0:
        return []
    q = np.asarray(embedder.embed_query([query])[0] if query_vector is None else query_vector, dtype=np.float32)
    pool = max(k, 50) if mode == "hybrid" else k
    dense = store.dense(q, pool, within=within) if mode in ("dense", "hybrid") else []
    lexical = store.lexical(query, pool, within=within) if mode in ("lexical", "hybrid") else []
    pool_rows: dict = {}  # hybrid with a name or document signal: the pooled chunks' rows, reused below
    if mode == "dense":
        ranked = dense
    elif mode == "lexical":
        ranked = lexical
    else:
        fused: dict[int, float] = {}
        for lst, w in ((dense, 1.0), (lexical, lexical_weight)):
            for rank, (cid, _) in enumerate(lst, start=1):
                fused[cid] = fused.get(cid, 0.0) + w / (RRF_K + rank)
        if doc_weight or name_weight:
            pool_rows = store.chunks(list(fused))
        if name_weight and pool_rows:
            by_name = name_ranking(query, {cid: row[1].path for cid, row in pool_rows.items()}, fused)
            for rank, cid in enumerate(by_name, start=1):
                fused[cid] += name_weight / (RRF_K + rank)
        if doc_weight and pool_rows:
            per_doc: dict[int, float] = {}
            for cid, sc in fused.items():
                if cid in pool_rows:
                    per_doc[pool_rows[cid][1].id] = per_doc.get(pool_rows[cid][1].id, 0.0) + sc
            fused = {cid: sc + doc_weight * (per_doc[pool_rows[cid][1].id] - sc) if cid in pool_rows else sc
                     for cid, sc in fused.items()}
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
    ranked = ranked[:k]
    cos = dict(dense)
    missing = [cid for cid, _ in ranked if cid not in cos]
    if missing:  # lexical-only hits: cosine from the stored vector
        cos.update(zip(missing, (store.vectors(missing) @ q).tolist(), strict=True))
    rows = pool_rows or store.chunks([cid for cid, _ in ranked])
    hits = []
    for rank, (cid, score) in enumerate(ranked, start=1):
        if cid not in rows:
            raise store.damaged(f"chunk {cid} is in the vector index but not in the database")
        chunk, doc = rows[cid]
        hits.append(Hit(chunk, score, rank, cos[cid], doc.origin))
    return hits


def name_ranking(query: str, paths: dict[int, str], scores: dict[int, float]) -> list[int]:
    """The chunk ids of ``paths`` (chunk id -> its file's path) whose file name shares a word
    with ``query``, best match first: a document scores the IDF over these documents of each
    name word the query has, exactly, as a prefix of three letters or more ("JPM" ->
    "JPMORGAN"), or as two query words written together ("Coca Cola" -> "COCACOLA"); query
    words are BM25's (``index.fts_terms``: "FY2018" is also "2018"). Ties go by ``scores``.

    >>> name_ranking("FY2018 capex for 3M", {1: "/f/3M_2022_10K.pdf", 2: "/f/3M_2018_10K.pdf",
    ...                                       3: "/f/AMD_2018_10K.pdf", 4: "/f/1545.txt"}, {1: .3, 2: .1, 3: .2, 4: .9})
    [2, 1, 3]
    """
    words = fts_terms(query)  # BM25's query words: stop words dropped, "FY2018" also as "2018"
    terms, joined = set(words), {a + b for a, b in zip(words, words[1:], strict=False)}
    names = {}
    for path in set(paths.values()):
        name = {w.lower() for w in name_words(path).split()}
        names[path] = {n for n in name if n in terms or n in joined
                       or any(len(t) >= 3 and not t.isdigit() and n.startswith(t) for t in terms)}
    df: dict[str, int] = {}
    for matched in names.values():
        for n in matched:
            df[n] = df.get(n, 0) + 1
    n_docs = len(names)
    doc_score = {p: sum(math.log(1 + n_docs / df[n]) for n in m) for p, m in names.items()}
    hits = [cid for cid, p in paths.items() if doc_score[p] > 0]
    return sorted(hits, key=lambda cid: (-doc_score[paths[cid]], -scores.get(cid, 0.0)))
