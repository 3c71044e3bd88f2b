"""The same synthetic corpus in both stores: SQLite + segments, and PostgreSQL + pgvector.

Synthetic (no model): ``bench/scale.py``'s clustered 384-d vectors and generated sentences.
For each store the script measures

- ingest throughput: N chunks through the real writer, 1,000-chunk batches, ``finish`` included;
- search latency in-process over 200 held-out queries: dense (p50/p95) and lexical (p50/p95);
- recall@10 of the store's dense search against exact search (PostgreSQL: HNSW vs a
  sequential scan, ``enable_indexscan = off``; SQLite: its own exact/approximate choice);
- 4 concurrent clients, each a process with its own reader (its own connection), 100 dense
  queries each plus fetching the 10 chunks: p50/p95 per query, and queries/s from the first
  query of any client to the last (process start-up excluded);
- lexical agreement: how many of SQLite FTS5's BM25 top-10 PostgreSQL's ts_rank_cd also ranks top-10.

    .venv/bin/python bench/pgstore.py                     # 20,000 chunks, a throwaway server
    .venv/bin/python bench/pgstore.py --chunks 100000 --url postgresql://me@db/bench
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import machine, postgres_server, table, with_schema, write_report  # noqa: E402
from bench.scale import DIM, WORDS, batch_docs, clustered  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs) * 1000, q))


def fill(location, n: int, seed: int) -> dict:
    import numpy as np

    from ragcli import index
    from ragcli.index import IndexInfo

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(10, n // 20), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    info = IndexInfo("hash384", "bench", DIM, {"synthetic": True})
    t0 = time.perf_counter()
    store = index.open(location)
    with store.lock():
        w = store.writer(info)
        try:
            w.begin_run(["/synthetic"], False)
            for start in range(0, n, 1000):
                w.commit_batch([], batch_docs(rng, start, min(1000, n - start), centres))
            t_batches = time.perf_counter() - t0
            w.finish()
        finally:
            w.close()
    total = time.perf_counter() - t0
    return {"ingest_s": total, "batches_s": t_batches, "chunks_per_s": n / total, "centres": centres}


def _client(location, queries, out) -> None:
    from ragcli import index

    lat = []
    with index.open(location).reader() as r:
        t_first = time.time()
        for q in queries:
            t0 = time.perf_counter()
            r.chunks([c for c, _ in r.dense(q, 10)])
            lat.append(time.perf_counter() - t0)
    out.put((lat, t_first, time.time()))


def measure(location, centres, n_queries: int, seed: int) -> tuple[dict, dict]:
    import numpy as np

    from ragcli import index

    rng = np.random.default_rng(seed + 1)
    queries = clustered(rng, n_queries, centres)
    words = [" ".join(rng.choice(WORDS, size=3)) for _ in range(n_queries)]
    row: dict = {}
    lexical_top: dict = {}
    with index.open(location).reader() as r:
        dense, lex, hits = [], [], 0
        for q, w in zip(queries, words, strict=True):
            t0 = time.perf_counter()
            got = r.dense(q, 10)
            dense.append(time.perf_counter() - t0)
            exact = r.dense(q, 10, exact=True) if hasattr(r, "url") else r.vector_set.search(q, 10, exact=True)
            hits += len({c for c, _ in got} & {c for c, _ in exact})
            t0 = time.perf_counter()
            top = r.lexical(w, 10)
            lex.append(time.perf_counter() - t0)
            lexical_top[w] = {c.key for c, _ in r.chunks([c for c, _ in top]).values()}
        row.update(dense_p50_ms=pct(dense, 50), dense_p95_ms=pct(dense, 95), lexical_p50_ms=pct(lex, 50),
                   lexical_p95_ms=pct(lex, 95), recall_at_10=hits / (10 * n_queries),
                   search=r.describe()["search"], size_mb=r.size_bytes() / 1e6)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    parts = np.array_split(queries[:400] if len(queries) >= 400 else queries, 4)
    procs = [ctx.Process(target=_client, args=(location, p, out)) for p in parts]
    for p in procs:
        p.start()
    got = [out.get() for _ in procs]
    for p in procs:
        p.join()
    lat = [x for g in got for x in g[0]]
    wall = max(g[2] for g in got) - min(g[1] for g in got)  # first query of any client to the last
    row.update(clients4_p50_ms=pct(lat, 50), clients4_p95_ms=pct(lat, 95), clients4_qps=len(lat) / wall)
    return row, lexical_top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--url", help="an existing PostgreSQL (with CREATE EXTENSION vector done); default: a throwaway one")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import contextlib

    tmp = Path(tempfile.mkdtemp(prefix="pgstore-bench-"))
    rows, tops = [], {}
    try:
        with contextlib.ExitStack() as stack:
            url = with_schema(postgres_server(stack, args.url, tmp), f"bench_{int(time.time())}")
            for name, location in (("sqlite", tmp / "sqlite"), ("postgres", url)):
                print(f"{name}: ingesting {args.chunks} chunks ...", file=sys.stderr)
                f = fill(location, args.chunks, seed=7)
                row, tops[name] = measure(location, f.pop("centres"), args.queries, seed=7)
                rows.append({"store": name, "chunks": args.chunks, **{k: v for k, v in f.items()}, **row})
                print(rows[-1], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    agree = [len(tops["sqlite"][w] & tops["postgres"][w]) / max(1, len(tops["sqlite"][w])) for w in tops["sqlite"]]
    report = {"bench": "pgstore", "machine": machine(), "chunks": args.chunks, "queries": args.queries,
              "rows": rows, "lexical_top10_overlap_with_bm25": sum(agree) / len(agree)}
    cols = ["store", "chunks", "chunks_per_s", "dense_p50_ms", "dense_p95_ms", "recall_at_10", "lexical_p50_ms",
            "lexical_p95_ms", "clients4_p50_ms", "clients4_p95_ms", "clients4_qps", "size_mb"]
    print(table(rows, cols, {"chunks_per_s": ".0f", "clients4_qps": ".0f", "size_mb": ".1f"}))
    print(f"\nlexical: ts_rank_cd top-10 holds {report['lexical_top10_overlap_with_bm25']:.0%} of BM25's top-10")
    print(write_report("pgstore", report, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
