"""Query -> ranked ``Hit``s, in three modes over one ``Store``.

- ``dense``: cosine similarity of embeddings (the index's vector search over unit vectors);
- ``lexical``: BM25 over chunk text (SQLite FTS5, porter stemming);
- ``hybrid``: reciprocal-rank fusion of both lists (score = sum of w / (60 + rank), ``w`` 1 for
  the dense list and ``lexical_weight`` for BM25's), plus, with ``doc_weight`` > 0, a document
  signal: each chunk gains ``doc_weight`` times the fused scores of its document's other
  chunks in the pool (a document several of whose chunks match is more likely the right one).

Every hit also carries ``similarity``, the dense cosine with the query, whatever the
mode: ``answer`` uses it to decide whether the index holds evidence at all.
This module does not embed documents nor talk to the LLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .embedders import Embedder
from .errors import UsageError
from .index import IndexReader
from .types import PAGED_KINDS, Hit

if TYPE_CHECKING:
    import numpy as np

MODES = ("dense", "lexical", "hybrid")
RRF_K = 60  # the usual constant of reciprocal-rank fusion (Cormack et al., 2009)
LEXICAL_WEIGHT = 1.0  # BM25's list against the dense list in the fusion
DOC_WEIGHT = 0.0  # the document signal's weight (0: off)


def search(store: IndexReader, embedder: Embedder, query: str, k: int = 5, mode: str = "hybrid",
           query_vector: np.ndarray | None = None, *, lexical_weight: float = LEXICAL_WEIGHT,
           doc_weight: float = DOC_WEIGHT) -> list[Hit]:
    """The ``k`` best chunks for ``query``, best first."""
    import numpy as np

    if mode not in MODES:
        raise UsageError(f"unknown retrieval mode '{mode}'; use one of: {', '.join(MODES)}")
    if k <= 0:
        return []
    q = np.asarray(embedder.embed([query])[0] if query_vector is None else query_vector, dtype=np.float32)
    pool = max(k, 50) if mode == "hybrid" else k
    dense = store.dense(q, pool) if mode in ("dense", "hybrid") else []
    lexical = store.lexical(query, pool) if mode in ("lexical", "hybrid") else []
    if mode == "dense":
        ranked = dense
    elif mode == "lexical":
        ranked = lexical
    else:
        fused: dict[int, float] = {}
        for lst, w in ((dense, 1.0), (lexical, lexical_weight)):
            for rank, (cid, _) in enumerate(lst, start=1):
                fused[cid] = fused.get(cid, 0.0) + w / (RRF_K + rank)
        pool_rows = store.chunks(list(fused)) if doc_weight else {}
        if pool_rows:
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
    rows = store.chunks([cid for cid, _ in ranked])
    hits = []
    for rank, (cid, score) in enumerate(ranked, start=1):
        if cid not in rows:
            raise store.damaged(f"chunk {cid} is in the vector index but not in the database")
        chunk, doc = rows[cid]
        hits.append(Hit(chunk, score, rank, cos[cid], paged=doc.kind in PAGED_KINDS, encoding=doc.encoding,
                        kind=doc.kind))
    return hits
