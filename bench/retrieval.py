"""BEIR-format retrieval through ragcli's own ingest and search: nDCG@10, recall@10/100, QPS.

    .venv/bin/python bench/retrieval.py [--data ../shared/eval/scifact] [--limit N]
                                        [--embedders all-minilm-l6-v2,all-minilm-l6-v2-int8-mixed]

Each corpus document becomes a markdown file ("# title" + text) under bench/.cache and is
ingested with `rag ingest`'s code, so the real chunking and embedder are measured (one index
per embedder, each ingest timed). A document's score is its best chunk's (max-passage): each
query retrieves enough chunks for 100 distinct documents. One row per embedder and retrieval
mode; all scored by ``ragcli.evaluate``. With several embedders the report also gives each
one's nDCG@10 against the first's, mode by mode: the int8 embedder is ragcli's default only
if it loses at most 0.005 in the default (hybrid) mode.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, DEFAULT_EVAL, Stopwatch, chunk_params, index_dir, machine, settings_for, table, write_report  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.config import MODES  # noqa: E402
from ragcli.evaluate import ndcg_at_k, recall_at_k  # noqa: E402
from ragcli.index import open as open_store  # noqa: E402
from ragcli.retrieval import DOC_WEIGHT, LEXICAL_WEIGHT, search  # noqa: E402

PUBLISHED = {"dense": 0.645, "lexical": 0.665}  # BEIR paper / SBERT: all-MiniLM-L6-v2, BM25


def load_beir(data: Path, split: str = "test") -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, float]]]:
    corpus = {}
    with open(data / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[str(d["_id"])] = d
    queries = {}
    qfile = data / "queries_test.jsonl" if split == "test" and (data / "queries_test.jsonl").exists() \
        else data / "queries.jsonl"
    with open(qfile, encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, float]] = {}
    with open(data / "qrels" / f"{split}.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = float(row["score"])
    queries = {q: t for q, t in queries.items() if q in qrels}
    return corpus, queries, qrels


def write_docs(corpus: dict[str, dict], docs: Path) -> None:
    """One markdown file per document; unchanged files keep their mtime (incremental ingest)."""
    docs.mkdir(parents=True, exist_ok=True)
    for did, d in corpus.items():
        p = docs / f"{did}.md"
        title = " ".join(str(d.get("title", "")).split())
        body = f"# {title}\n\n{d['text']}\n" if title else f"{d['text']}\n"
        if not p.exists() or p.read_text(encoding="utf-8") != body:
            p.write_text(body, encoding="utf-8")


def doc_ranking(hits, n: int = 100) -> list[str]:
    """Distinct document ids in order of their best chunk."""
    out: list[str] = []
    for h in hits:
        did = Path(h.chunk.source).stem
        if did not in out:
            out.append(did)
            if len(out) == n:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL / "scifact", help="BEIR folder (corpus.jsonl, ...)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N test queries")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: dense,lexical,hybrid")
    ap.add_argument("--chunks", type=int, default=300, help="chunks retrieved per query (for 100 documents)")
    ap.add_argument("--embedders", default="all-minilm-l6-v2,all-minilm-l6-v2-int8-mixed",
                    help="comma-separated registry names; the first is the reference of the deltas")
    ap.add_argument("--split", default="test", help="qrels split: test (reported) or train (for tuning)")
    ap.add_argument("--lexical-weights", default=str(LEXICAL_WEIGHT),
                    help="hybrid: comma-separated weights of BM25's list in the fusion (one row each)")
    ap.add_argument("--doc-weights", default=str(DOC_WEIGHT),
                    help="hybrid: comma-separated weights of the document signal (one row each)")
    ap.add_argument("--chunking", default="",
                    help="ChunkParams fields over today's defaults, e.g. name_in_header=0 (an index per chunking)")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/retrieval-<time>.json)")
    args = ap.parse_args(argv)
    params = chunk_params(args.chunking)

    corpus, queries, qrels = load_beir(args.data, args.split)
    qids = sorted(queries, key=lambda q: int(q) if q.isdigit() else q)
    if args.limit:
        qids = qids[: args.limit]
    name = args.data.name
    docs = CACHE / name / "docs"
    write_docs(corpus, docs)
    rows, ingests = [], {}
    for emb_name in args.embedders.split(","):
        index = index_dir(name, params, emb_name)
        settings = settings_for(index, embedder=emb_name)
        with Stopwatch() as t_ing:
            rep = pipeline.ingest([docs], settings, params=params, on_message=lambda m: print(m, file=sys.stderr))
        if rep.failed:
            print(f"warning: {len(rep.failed)} documents failed, e.g. {rep.failed[0]}", file=sys.stderr)
        print(f"{name} / {emb_name}: {len(corpus)} documents, {len(qids)} queries; ingest {t_ing.s:.1f}s "
              f"({rep.chunks} chunks embedded, {len(rep.unchanged)} unchanged)", file=sys.stderr)
        with open_store(index).reader() as st:
            emb = pipeline.embedder_for_index(st, settings, None)
            counts = st.counts()
            ingests[emb_name] = {"s": t_ing.s, "chunks_embedded": rep.chunks, "chunks": counts.get("chunks"),
                                 "embed_s": rep.timings.get("embed_s"), "backend": emb.backend, "id": emb.id}
            emb.embed(["warm up"])
            runs = [(m, LEXICAL_WEIGHT, DOC_WEIGHT) for m in args.modes.split(",") if m != "hybrid"]
            if "hybrid" in args.modes.split(","):
                runs += [("hybrid", float(lw), float(dw)) for lw in args.lexical_weights.split(",")
                         for dw in args.doc_weights.split(",")]
            for mode, lw, dw in runs:
                ndcg, r10, r100 = [], [], []
                t0 = time.perf_counter()
                for q in qids:
                    ranked = doc_ranking(search(st, emb, queries[q], args.chunks, mode, lexical_weight=lw,
                                                doc_weight=dw))
                    ndcg.append(ndcg_at_k(ranked, qrels[q], 10))
                    r10.append(recall_at_k(ranked, qrels[q], 10))
                    r100.append(recall_at_k(ranked, qrels[q], 100))
                secs = time.perf_counter() - t0
                row = {"embedder": emb_name, "mode": mode, "lexical_weight": lw if mode == "hybrid" else None,
                       "doc_weight": dw if mode == "hybrid" else None, "ndcg@10": sum(ndcg) / len(ndcg),
                       "recall@10": sum(r10) / len(r10), "recall@100": sum(r100) / len(r100),
                       "qps": len(qids) / secs, "published_ndcg@10": PUBLISHED.get(mode)}
                rows.append(row)
                print(f"  {emb_name} {mode} lw={lw} dw={dw}: nDCG@10 {row['ndcg@10']:.4f}  R@10 {row['recall@10']:.3f}  "
                      f"R@100 {row['recall@100']:.3f}  {row['qps']:.1f} q/s", file=sys.stderr)
    def key(r: dict) -> tuple:
        return r["mode"], r["lexical_weight"], r["doc_weight"]

    ref = {key(r): r["ndcg@10"] for r in rows if r["embedder"] == rows[0]["embedder"]}
    for r in rows:  # against the first embedder's row of the same mode and weights
        r["ndcg@10_vs_first"] = r["ndcg@10"] - ref[key(r)] if key(r) in ref else None

    report = {"bench": "retrieval", "dataset": name, "machine": machine(), "embedders": args.embedders.split(","),
              "chunking": params.as_dict(), "split": args.split,
              "documents": len(corpus), "queries": len(qids), "chunks_per_query": args.chunks,
              "ingests": ingests, "rows": rows}
    path = write_report(f"retrieval-{name}", report, args.out)
    print(table(rows, ["embedder", "mode", "lexical_weight", "doc_weight", "ndcg@10", "ndcg@10_vs_first", "recall@10", "recall@100", "qps",
                       "published_ndcg@10"], {"qps": ".1f", "ndcg@10_vs_first": "+.4f"}))
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
