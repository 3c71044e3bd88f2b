"""Would showing each offered sentence with its neighbours put the gold sentence before the model
more often than showing more of the best-ranked sentences? Up to the model only (no LLM run).

    .venv/bin/python bench/evidence_windows.py [--offset 0] [--limit 200] [--k 10]

COVID-QA dev questions (the seed-0 shuffle of bench/qa.py; default the first 200, the tuning
questions), through ``rag ask``'s retrieval and ``answer.offer``'s sentence ranking; each row is
a way of choosing what the prompt shows, scored as bench/qa.py scores "offered" (a shown sentence
overlaps the gold answer, ``ragcli.evaluate.hits_gold_span``), with the number of sentences
shown on average (the prompt's cost):

- ``top N``: the N best-ranked sentences (today: 5);
- ``top N + next`` / ``+ both``: the N best, each with the sentence after it (and before it) in
  its chunk, as a contiguous citation would show them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_EVAL, chunk_params, index_dir, machine, settings_for, table, write_report  # noqa: E402
from qa import MemoEmbedder, load_questions  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.answer import AnswerParams, offer  # noqa: E402
from ragcli.config import DEFAULT_MODE  # noqa: E402
from ragcli.evaluate import hits_gold_span  # noqa: E402
from ragcli.index import open as open_store  # noqa: E402
from ragcli.retrieval import search  # noqa: E402

WAYS = {"top 5": (5, 0, 0), "top 8": (8, 0, 0), "top 10": (10, 0, 0), "top 15": (15, 0, 0),
        "top 4 + both": (4, 1, 1), "top 5 + next": (5, 0, 1), "top 5 + both": (5, 1, 1)}  # (n, before, after)


def shown(evidence, hits, n: int, before: int, after: int) -> list[tuple[str, int, int]]:
    """(source, start, end) of the sentences a way shows: the ``n`` best and their neighbours."""
    where = {(h.chunk.source, s.start): (h.chunk.spans, i) for h in hits for i, s in enumerate(h.chunk.spans)}
    out: dict[tuple[str, int, int], None] = {}
    for e in evidence[:n]:
        spans, i = where.get((e.origin.path, e.span.start), ((e.span,), 0))
        for s in spans[max(0, i - before): i + after + 1]:
            out[(e.origin.path, s.start, s.end)] = None
    return list(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL, help="folder with covidqa/")
    ap.add_argument("--offset", type=int, default=0, help="skip this many shuffled dev questions")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--k", type=int, default=AnswerParams().k, help="candidate chunks (rag ask's -k)")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/evidence-windows-<time>.json)")
    args = ap.parse_args(argv)
    golds = [g for g in load_questions(args.data, args.limit, 0, 0, offset=args.offset) if g.spans]
    params = chunk_params("")
    index = index_dir("covidqa", params)
    settings = settings_for(index)
    pipeline.ingest([(args.data / "covidqa" / "docs").resolve()], settings, params=params)
    most = max(n for n, _, _ in WAYS.values())
    found = {w: 0 for w in WAYS}
    count = {w: 0 for w in WAYS}
    with open_store(index).reader() as st:
        emb = MemoEmbedder(pipeline.embedder_for_index(st, settings, None))
        for g in golds:
            qv = emb.embed_query([g.question])[0]
            hits = search(st, emb, g.question, args.k, DEFAULT_MODE, query_vector=qv)
            evidence, _ = offer(g.question, qv, hits, emb, AnswerParams(k=args.k, n_evidence=most, context_after=0))  # single sentences
            for way, (n, before, after) in WAYS.items():
                sentences = shown(evidence, hits, n, before, after)
                count[way] += len(sentences)
                found[way] += any(hits_gold_span(g, *s) for s in sentences)
    rows = [{"way": w, "offered": found[w] / len(golds), "sentences_shown": count[w] / len(golds)} for w in WAYS]
    report = {"bench": "evidence_windows", "machine": machine(), "embedder": emb.name, "offset": args.offset,
              "questions": len(golds), "k": args.k, "rows": rows}
    path = write_report("evidence-windows", report, args.out)
    print(table(rows, ["way", "offered", "sentences_shown"], {"offered": ".3f", "sentences_shown": ".1f"}))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
