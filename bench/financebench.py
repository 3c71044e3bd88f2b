"""FinanceBench (dev part) through ragcli's own ingest and search: is the evidence page found?

    .venv/bin/python bench/financebench.py [--data ../shared/eval/financebench] [--k 10]
                                           [--chunking field=value,...] [--limit N]

The 39 SEC filings under ``pdfs/`` are ingested as a user would (``pipeline.ingest``, the
code of `rag ingest`, worker processes and all) into bench/.cache/financebench/index-<build>,
one index per chunking (``--chunking``: ChunkParams fields over today's defaults), reused
while the build is the same. Each of the 63 questions (company, fiscal year and figure named
in the question) goes through ``ragcli.retrieval.search``, what `rag search` runs, in the
default mode (``--lexical-weights`` / ``--doc-weights``: a row per fusion setting).
Scored by ``ragcli.evaluate.found_at``:

- evidence page in top 5 / top 10: a result from the question's filing on one of its evidence
  pages (``evidence_page_num`` is 0-based; ragcli pages are 1-based);
- right filing in top 5 / first: a result from the question's filing.

No threshold is tuned on these questions in this script; the report says which build ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_EVAL,
    Stopwatch,
    chunk_params,
    index_dir,
    machine,
    settings_for,
    table,
    write_report,
)

import ragcli  # noqa: E402
from ragcli import pipeline  # noqa: E402
from ragcli.config import DEFAULT_MODE  # noqa: E402
from ragcli.evaluate import found_at, percentile  # noqa: E402
from ragcli.index import open as open_store  # noqa: E402
from ragcli.retrieval import DOC_WEIGHT, LEXICAL_WEIGHT, NAME_WEIGHT, search  # noqa: E402

METRICS = ("page@5", "page@10", "filing@5", "filing@1")


def load_questions(data: Path) -> list[dict]:
    with open(data / "questions.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score_question(q: dict, ranked: list[tuple[str, int | None]]) -> dict[str, bool]:
    source = f"{q['doc_name']}.pdf"
    pages = [e["evidence_page_num"] + 1 for e in q["evidence"]]  # 0-based in the data
    return {"page@5": found_at(ranked, source, pages, 5), "page@10": found_at(ranked, source, pages, 10),
            "filing@5": found_at(ranked, source, None, 5), "filing@1": found_at(ranked, source, None, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL / "financebench", help="folder with pdfs/ and questions.jsonl")
    ap.add_argument("--k", type=int, default=10, help="results per search (>= 10)")
    ap.add_argument("--mode", default=None, help="retrieval mode (default: rag search's)")
    ap.add_argument("--chunking", default="",
                    help="ChunkParams fields over today's defaults, e.g. page_headings=0 (an index per chunking)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--lexical-weights", default=str(LEXICAL_WEIGHT), help="hybrid: BM25's weights in the fusion")
    ap.add_argument("--doc-weights", default=str(DOC_WEIGHT), help="hybrid: weights of the document signal")
    ap.add_argument("--name-weights", default=str(NAME_WEIGHT), help="hybrid: weights of the file-name list")
    ap.add_argument("--filings", default="", help="only questions about filings whose name sorts in this range, "
                    "e.g. 1-18 or 19-39 (1-based, by name): tune on one part, report the other")
    ap.add_argument("--index", type=Path, help="score this index as it is, no ingest (e.g. a copy kept to some "
                    "filings); only the questions about filings it holds are asked")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/financebench-<time>.json)")
    args = ap.parse_args(argv)

    params = chunk_params(args.chunking)
    index = args.index or index_dir("financebench", params)
    settings = settings_for(index)
    with Stopwatch() as t_ing:
        rep = None if args.index else pipeline.ingest(
            [(args.data / "pdfs").resolve()], settings, params=params, on_message=lambda m: print(m, file=sys.stderr))
    if rep and rep.failed:
        print(f"warning: {len(rep.failed)} files failed, e.g. {rep.failed[0]}", file=sys.stderr)
    questions = all_questions = load_questions(args.data)
    if args.index:
        with open_store(index).reader() as st:
            held = {Path(d.path).stem for d in st.documents()}
            params = chunk_params(",".join(f"{k}={int(v) if isinstance(v, bool) else v}"
                                           for k, v in st.info.chunking.items()))
        questions = [q for q in questions if q["doc_name"] in held]
    if args.filings:
        lo, hi = (int(x) for x in args.filings.split("-"))
        names = sorted({q["doc_name"] for q in all_questions}, key=str.lower)[lo - 1: hi]
        questions = [q for q in questions if q["doc_name"] in names]
    if args.limit:
        questions = questions[: args.limit]
    mode = args.mode or DEFAULT_MODE
    rows, per_setting = [], {}
    with open_store(index).reader() as st:
        emb = pipeline.embedder_for_index(st, settings, None)
        counts = st.counts()
        print(f"ragcli {ragcli.__file__}; financebench: {counts['documents']} filings, {counts['pages']} pages, "
              f"{counts['chunks']} chunks (ingest {t_ing.s:.1f}s, {rep.chunks if rep else 0} embedded; chunking "
              f"{params.as_dict()}); {len(questions)} questions", file=sys.stderr)
        qvs = emb.embed_query([q["question"] for q in questions])  # (n_questions, dim), once for every setting
        grid = [(lw, dw, nw) for lw in map(float, args.lexical_weights.split(","))
                         for dw in map(float, args.doc_weights.split(",")) for nw in map(float, args.name_weights.split(","))]
        for lw, dw, nw in grid:
            per_q, lat = [], []
            for q, qv in zip(questions, qvs, strict=True):
                t0 = time.perf_counter()
                hits = search(st, emb, q["question"], max(10, args.k), mode, query_vector=qv,
                              lexical_weight=lw, doc_weight=dw, name_weight=nw)
                lat.append(time.perf_counter() - t0)
                ranked = [(h.chunk.source, h.chunk.page) for h in hits]
                per_q.append({"id": q["financebench_id"], "doc": q["doc_name"], **score_question(q, ranked),
                              "top": [f"{Path(s).stem}:{p}" for s, p in ranked[:5]]})
            row = {"mode": mode, "lexical_weight": lw, "doc_weight": dw, "name_weight": nw, "questions": len(per_q),
                   **{m: sum(r[m] for r in per_q) / len(per_q) for m in METRICS},
                   "search_p50_s": percentile(lat, 50)}
            rows.append(row)
            per_setting[f"lw={lw},dw={dw},nw={nw}"] = per_q
            print(f"  lw={lw} dw={dw} nw={nw}: " + "  ".join(f"{m} {row[m]:.3f}" for m in METRICS), file=sys.stderr)
    report = {"bench": "financebench", "machine": machine(), "embedder": emb.name, "chunking": params.as_dict(),
              "filings_range": args.filings or "all",
              "filings": counts["documents"], "pages": counts["pages"], "chunks": counts["chunks"],
              "ingest_s": t_ing.s if rep and rep.chunks else None, "index": str(index) if args.index else None,
              "rows": rows, "questions": per_setting}
    path = write_report("financebench", report, args.out)
    print(table(rows, ["mode", "lexical_weight", "doc_weight", "name_weight", "questions", *METRICS, "search_p50_s"],
                {"search_p50_s": ".2f"}))
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
