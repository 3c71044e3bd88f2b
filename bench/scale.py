"""How the index scales: 10k, 100k and 1M chunks through the real writer, one run.

Synthetic (no model needed): documents of short generated sentences, vectors drawn around
10,000 random centres in 384 dimensions, a chunk's nearest neighbours at cosine 0.6-0.7 as
with real sentence embeddings (uniform random unit vectors in 384-d have no near neighbours
at all: every point is at cosine about 0 from every other, and no index can beat exact
search on them). The index is grown in place, and at each size the script measures:

- in-process dense search over 200 held-out queries: p50/p99 latency and recall@10 of the
  index's own search against exact search (the same VectorSet, ``exact=True``);
- a 1,000-chunk batch committed into an index of that size (``commit_batch``), and the
  run's ``finish`` (segment merges, building or extending the approximate index);
- ``rag search`` and ``rag status`` as new processes (median of 5), with a hashing
  embedder of the same dimension so the embedder's own cost is nil;
- peak RSS of a new ``rag ingest`` adding 40 files (1,000+ chunks), and of ``rag search``;
- size on disk;
- scoped search (``--path``, resolved in the store before ranking): for a glob naming 1% and
  one naming 10% of the documents, scattered over the index (``*530.txt``, ``*30.txt``), p50/p99
  of resolving the scope plus the dense top 10, recall@10 against brute-force exact search
  over the allowed chunks only, and p50 of the scoped BM25 top 50.

    .venv/bin/python bench/scale.py                 # 10k, 100k, 1M: about 15 minutes on 2 cores
    .venv/bin/python bench/scale.py --sizes 10000   # a quick look
    .venv/bin/python bench/scale.py --search-only   # in-process search figures only (no `rag` processes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import CACHE, Stopwatch, machine, run_rag, table, write_report  # noqa: E402

DIM = 384
WORDS = ("alpha beta gamma delta kappa sigma omega river stone cloud maple orbit lantern copper "
         "meadow harbor signal velvet quartz falcon cedar ember glacier").split()
MODELS = f"""
[defaults]
embedder = "hash384"
[embedder.hash384]
description = "hashing embedder of the synthetic scale index"
source = "builtin"
backend = "hash"
dim = {DIM}
max_tokens = 256
"""


def clustered(rng, n: int, centres):
    import numpy as np

    c = centres[rng.integers(len(centres), size=n)]
    x = c + rng.normal(scale=0.035, size=(n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def batch_docs(rng, start: int, n_chunks: int, centres, per_doc: int = 10):
    """Synthetic documents, ``per_doc`` one-sentence chunks each, with their vectors."""
    from ragcli.index import NewDocument
    from ragcli.types import Chunk, Document, Page, Span

    vecs = clustered(rng, n_chunks, centres)
    out = []
    for d0 in range(0, n_chunks, per_doc):
        n = min(per_doc, n_chunks - d0)
        sents = [" ".join(rng.choice(WORDS, size=8)) + "." for _ in range(n)]
        text = " ".join(sents)
        chunks, pos = [], 0
        for s in sents:
            span = Span(1, pos, pos + len(s), 1, 1, s)
            chunks.append(Chunk(f"{start + d0:x}-{pos}", f"/synthetic/{start + d0}.txt", "0" * 64, 1, pos,
                                pos + len(s), 1, 1, s, (span,), "", s, 10))
            pos += len(s) + 1
        doc = Document(f"/synthetic/{start + d0}.txt", "0" * 64, "text", "utf-8", (Page(1, text),), len(text), 0.0)
        out.append(NewDocument(doc, "/synthetic", tuple(chunks), vecs[d0 : d0 + n]))
    return out


def grow(location: Path, target: int, rng, centres, info) -> dict:
    """Add chunks until the index holds ``target``; then one timed 1,000-chunk batch."""
    from ragcli import index

    store = index.open(location)
    have = 0
    if store.exists():
        with store.reader() as st:
            have = st.counts()["chunks"]
    with store.lock():
        w = store.writer(info)
        try:
            w.begin_run(["/synthetic"], False)
            t0 = time.perf_counter()
            while have < target - 1000:
                n = min(20_000, target - 1000 - have)
                w.commit_batch([], batch_docs(rng, have, n, centres))
                have += n
            fill_s = time.perf_counter() - t0
            docs = batch_docs(rng, have, 1000, centres)
            with Stopwatch() as commit:
                w.commit_batch([], docs)
            with Stopwatch() as finish:
                w.finish()
        finally:
            w.close()
    return {"fill_s": fill_s, "commit_1000_s": commit.s, "finish_s": finish.s}


SCOPES = {"1%": "*530.txt", "10%": "*30.txt"}  # document numbers are multiples of 10: 1 in 100, 1 in 10


def exact_top10(vs, queries, allowed=None) -> list[set[int]]:
    """Exact top-10 ids per query, one blockwise pass over the segments (tombstones skipped);
    ``allowed``: only these chunk ids (brute force, independent of the store's scoped search)."""
    import numpy as np

    best_s = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), 10), -1, dtype=np.int64)
    for seg in vs.segments:
        for lo in range(0, len(seg.ids), 65536):
            ids = np.asarray(seg.ids[lo : lo + 65536])
            scores = queries @ np.asarray(seg.vecs[lo : lo + 65536]).T
            if len(vs.dead):
                scores[:, np.isin(ids, vs.dead)] = -np.inf
            if allowed is not None:
                scores[:, ~np.isin(ids, allowed)] = -np.inf
            s_all = np.concatenate([best_s, scores], axis=1)
            i_all = np.concatenate([best_i, np.broadcast_to(ids, scores.shape)], axis=1)
            top = np.argpartition(-s_all, 9, axis=1)[:, :10]
            best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    return [set(row.tolist()) for row in best_i]


def search_figures(location: Path, rng, centres, n_queries: int = 200) -> dict:
    import numpy as np

    from ragcli import index

    queries = clustered(rng, n_queries, centres)
    with index.open(location).reader() as st:
        vs = st.vector_set
        for q in queries[:5]:  # warm the page cache as a second search would find it
            vs.search(q, 10)
        lat, got = [], []
        for q in queries:
            t0 = time.perf_counter()
            got.append({i for i, _ in vs.search(q, 10)})
            lat.append(time.perf_counter() - t0)
        truth = exact_top10(vs, queries)
        hits = sum(len(g & t) for g, t in zip(got, truth, strict=True))
        out = {"search_p50_ms": 1000 * float(np.percentile(lat, 50)),
               "search_p99_ms": 1000 * float(np.percentile(lat, 99)),
               "recall_at_10": hits / (10 * n_queries), **st.describe()}
        for share, glob in SCOPES.items():
            out.update(scoped_figures(st, queries, share, glob))
        return out


def scoped_figures(st, queries, share: str, glob: str) -> dict:
    """Scoped dense search as ``rag search --path GLOB`` runs it: the scope resolved in SQL
    (allowed documents, their chunk ids), then the store's restricted search, every query."""
    import numpy as np

    from ragcli.scope import parse_scope

    scope = parse_scope([glob])
    lat, resolve, got, lex = [], [], [], []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        within = st.scoped(scope)
        resolve.append(time.perf_counter() - t0)
        got.append({c for c, _ in st.dense(q, 10, within=within)})
        lat.append(time.perf_counter() - t0)
        if i < 50:
            t0 = time.perf_counter()
            st.lexical("river stone glacier", 50, within=st.scoped(scope))
            lex.append(time.perf_counter() - t0)
    truth = exact_top10(st.vector_set, queries, within.chunk_ids)
    hits = sum(len(g & t) for g, t in zip(got, truth, strict=True))
    short = sum(len(g) < 10 for g in got)
    return {f"scoped{share}_docs": len(within.doc_ids), f"scoped{share}_chunks": within.n_chunks,
            f"scoped{share}_p50_ms": 1000 * float(np.percentile(lat, 50)),
            f"scoped{share}_resolve_p50_ms": 1000 * float(np.percentile(resolve, 50)),
            f"scoped{share}_p99_ms": 1000 * float(np.percentile(lat, 99)),
            f"scoped{share}_recall_at_10": hits / (10 * len(queries)), f"scoped{share}_short_results": short,
            f"scoped{share}_bm25_p50_ms": 1000 * float(np.percentile(lex, 50))}


def timed_rag(args: list[str], env: dict) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one new ``rag`` process."""
    wall, code, rss, _, err = run_rag(args, env)
    if code not in (0, 3):
        raise SystemExit(f"rag {' '.join(args)} failed ({code}): {err}")
    return wall, rss


def process_figures(location: Path, env: dict, work: Path, size: int) -> dict:
    import statistics

    search = [timed_rag(["search", "river stone glacier", "--mode", "dense", "--index", str(location)], env)
              for _ in range(5)]
    status = [timed_rag(["status", "--index", str(location)], env) for _ in range(5)]
    docs = work / f"ingest-{size}"
    docs.mkdir(parents=True, exist_ok=True)
    import random

    r = random.Random(size)
    for i in range(40):  # about 1,100 chunks
        (docs / f"f{i}.txt").write_text(" ".join(
            " ".join(r.choice(WORDS) for _ in range(9)).capitalize() + "." for _ in range(120)))
    ingest_wall, ingest_rss = timed_rag(["ingest", str(docs), "--index", str(location)], env)
    return {
        "rag_search_s": statistics.median(w for w, _ in search),
        "rag_search_rss_mb": max(m for _, m in search),
        "rag_status_s": statistics.median(w for w, _ in status),
        "rag_ingest_1k_s": ingest_wall,
        "rag_ingest_rss_mb": ingest_rss,
    }


def disk_mb(location: Path) -> float:
    return sum(p.stat().st_size for p in location.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--work", type=Path, default=CACHE / "scale")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--search-only", action="store_true", help="skip the `rag` process figures")
    ap.add_argument("--keep", action="store_true",
                    help="measure the index --work already holds (grown to the largest of --sizes) again")
    args = ap.parse_args()
    import numpy as np

    from ragcli import index
    from ragcli.index import IndexInfo

    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    models = args.work / "models.toml"
    models.write_text(MODELS)
    env = {**os.environ, "RAG_MODELS": str(models), "HF_HUB_OFFLINE": "1"}
    from ragcli.chunking import ChunkParams
    from ragcli.models.embedders import HashEmbedder

    emb = HashEmbedder(dim=DIM, name="hash384")
    info = IndexInfo(emb.name, emb.id, DIM, ChunkParams().as_dict())
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10_000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    location = args.work / "index"
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        if args.keep:
            with index.open(location).reader() as st:
                row = {"chunks": st.counts()["chunks"]}
        else:
            print(f"growing the index to {size:,} chunks ...", file=sys.stderr, flush=True)
            row = {"chunks": size, **grow(location, size, rng, centres, info)}
        row.update(search_figures(location, rng, centres))
        if not args.search_only:
            row.update(process_figures(location, env, args.work, size))
        row["disk_mb"] = disk_mb(location)
        rows.append(row)
        print(table([row], list(row)), file=sys.stderr, flush=True)
    cols = ["chunks", "search", "search_p50_ms", "search_p99_ms", "recall_at_10", "commit_1000_s", "finish_s",
            "rag_search_s", "rag_status_s", "rag_ingest_1k_s", "rag_ingest_rss_mb", "rag_search_rss_mb", "disk_mb"]
    cols = [c for c in cols if c in rows[0]]
    print(table(rows, cols, {"search_p50_ms": ".1f", "search_p99_ms": ".1f", "disk_mb": ".0f",
                             "rag_ingest_rss_mb": ".0f", "rag_search_rss_mb": ".0f"}))
    scoped = ["chunks", *(f"scoped{s}_{f}" for s in SCOPES for f in (
        "chunks", "p50_ms", "resolve_p50_ms", "p99_ms", "recall_at_10", "short_results", "bm25_p50_ms"))]
    print(table(rows, scoped, {c: ".1f" for c in scoped if c.endswith("_ms")}))
    path = write_report("scale", {"machine": machine(), "dim": DIM, "rows": rows}, args.out)
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
