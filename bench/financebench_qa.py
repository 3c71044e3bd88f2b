"""FinanceBench (dev part) end to end: `rag ask` on the 63 questions over one index of the 39 filings.

    .venv/bin/python bench/financebench_qa.py [--data ../shared/eval/financebench] [--new-process]
                                              [--chunking field=value,...] [--limit N]

The index is bench/financebench.py's (bench/.cache/financebench/index-<build>, built by
``pipeline.ingest`` and reused while the build is the same: about 15 minutes the first time).
Each question is asked as it is written in the data, through ``ragcli.Index.ask`` (the code of
`rag ask`, models loaded once; ``--new-process``: ``rag ask --json`` per question). Graded on
the answer text by ``ragcli.evaluate.grade_gold_text``, one rule for every question:

- a gold answer that is one figure ("$1577.00", "24.26", "1.9%", "-3.7"): the answer states it
  (``number_match``: separators, $, unit words such as million/billion, rounding to the gold's
  precision or the gold rounded to the answer's coarser one within 1%, a percent as a fraction,
  a negative in parentheses; a sign that differs is wrong);
- a gold opening with "Yes"/"No": the answer opens with the same word;
- any other gold: the answer holds at least half of the key terms of the gold's first
  sentence (its content words that the question does not already say).

Outcomes as the FinanceBench paper reports them: right, (confidently) wrong, refused
(no_evidence). Beside them: a citation from the question's filing, and one on its evidence
page (``evidence_page_num`` is 0-based; ragcli's pages are 1-based); quotes re-read by
``ragcli.verify``. The report keeps every answer with its gold, so the rule can be checked by eye.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_EVAL,
    ROOT,
    Stopwatch,
    chunk_params,
    index_dir,
    machine,
    run_rag,
    settings_for,
    table,
    write_report,
)
from financebench import load_questions  # noqa: E402

import ragcli  # noqa: E402
from ragcli import pipeline  # noqa: E402
from ragcli.evaluate import (  # noqa: E402
    answer_text,
    cites,
    grade_gold_text,
    outcome,
    percentile,
    quote_is_exact,
)

PAPER = {  # FinanceBench paper (arXiv 2311.11944), GPT-4 Turbo, shares of its 150 questions
    "gpt-4-turbo, one vector store for all filings": {"right": 0.19, "wrong": 0.13, "refused": 0.68},
    "gpt-4-turbo, one vector store per filing": {"right": 0.50, "wrong": 0.11, "refused": 0.39},
}
PAPER_NAMES = {"right": "right", "wrong": "wrong", "abstained_wrong": "refused"}


def rates(rows: list[dict]) -> dict:
    n = len(rows)
    c = Counter(r["outcome"] for r in rows)
    n_cit = sum(r["citations"] for r in rows)
    lat = [r["latency_s"] for r in rows]
    return {"questions": n, **{PAPER_NAMES[k]: c.get(k, 0) for k in PAPER_NAMES},
            **{f"{PAPER_NAMES[k]}_rate": c.get(k, 0) / n if n else None for k in PAPER_NAMES},
            "right_citing_filing": sum(r["outcome"] == "right" and r["cites_filing"] for r in rows),
            "answered_citing_filing": sum(r["cites_filing"] for r in rows if r["status"] == "answered"),
            "answered_citing_evidence_page": sum(r["cites_evidence_page"] for r in rows if r["status"] == "answered"),
            "cites_evidence_page_rate": sum(r["cites_evidence_page"] for r in rows) / n if n else None,
            "quote_verified": sum(r["verified"] for r in rows) / n_cit if n_cit else None, "citations": n_cit,
            "latency_p50_s": percentile(lat, 50), "latency_p95_s": percentile(lat, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL / "financebench", help="folder with pdfs/ and questions.jsonl")
    ap.add_argument("--chunking", default="", help="ChunkParams fields over today's defaults (an index per chunking)")
    ap.add_argument("--new-process", action="store_true", help="`rag ask --json` in a new process per question")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--regrade", type=Path, help="grade the answers of this report again (no model run): "
                    "after a change of the grading rule")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/financebench-qa-<time>.json)")
    args = ap.parse_args(argv)
    if args.regrade:
        return regrade(args.regrade, args.data, args.out)

    params = chunk_params(args.chunking)
    index = index_dir("financebench", params)
    with Stopwatch() as t_ing:
        rep = pipeline.ingest([(args.data / "pdfs").resolve()], settings_for(index), params=params,
                              on_message=lambda m: print(m, file=sys.stderr))
    questions = load_questions(args.data)[: args.limit or None]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    idx = None if args.new_process else ragcli.Index(index)
    rows, models = [], {}
    for n, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        if idx is not None:
            ans = idx.ask(q["question"])
            out, wall, note = ans.to_json(), time.perf_counter() - t0, ans.reason
        else:
            wall, rc, _rss, stdout, stderr = run_rag(["ask", "--json", "--index", str(index), q["question"]], env)
            try:
                out = json.loads(stdout.strip().splitlines()[-1])
            except (json.JSONDecodeError, IndexError):
                out = {"status": f"error (exit {rc})", "answer": "", "citations": []}
            note = stderr.strip()[-2000:]
        models = models or {k: out[k] for k in ("model", "embedder") if k in out}
        text = answer_text(out)
        answered = out.get("status") == "answered"
        right, rule = grade_gold_text(text, q["answer"], q["question"])
        source = f"{q['doc_name']}.pdf"
        pages = [e["evidence_page_num"] + 1 for e in q["evidence"]]
        cits = out.get("citations") or []
        rows.append({"id": q["financebench_id"], "doc": q["doc_name"], "type": q["question_type"],
                     "question": q["question"], "gold": q["answer"], "rule": rule,
                     "outcome": outcome(answered, True, answered and right), "status": out.get("status"),
                     "answer": text, "note": note, "cites_filing": cites(out, source),
                     "cites_evidence_page": cites(out, source, pages), "evidence_pages": pages,
                     "citations": len(cits), "verified": sum(quote_is_exact(c) for c in cits),
                     "cited": [{"source": Path(c["source"]).name, "page": c.get("page"), "quote": c["quote"]}
                               for c in cits], "latency_s": wall})
        print(f"  [{n}/{len(questions)}] {q['financebench_id']} {rows[-1]['outcome']:<16} {wall:5.1f}s "
              f"{text[:60]!r} (gold {q['answer'][:30]!r})", file=sys.stderr)
    if idx is not None:
        idx.close()

    summary = summarize(rows)
    report = {"bench": "financebench-qa", "machine": machine(), "commit": _commit(), **models,
              "how": "rag ask --json, a new process per question" if args.new_process else "ragcli.Index.ask, in process",
              "chunking": params.as_dict(), "index": str(index), "ingest_s": t_ing.s if rep.chunks else None,
              "paper": PAPER, "summary": summary, "questions": [for_report(r) for r in rows]}
    path = write_report("financebench-qa", report, args.out)
    print_summary(summary, path)
    return 0


def summarize(rows: list[dict]) -> dict:
    return {"overall": rates(rows),
            **{f"type:{t}": rates([r for r in rows if r["type"] == t]) for t in sorted({r["type"] for r in rows})},
            **{f"rule:{t}": rates([r for r in rows if r["rule"] == t]) for t in sorted({r["rule"] for r in rows})}}


def print_summary(summary: dict, path: Path) -> None:
    print(table([{"set": k, **v} for k, v in summary.items()],
                ["set", "questions", "right_rate", "wrong_rate", "refused_rate", "right_citing_filing",
                 "cites_evidence_page_rate", "quote_verified", "latency_p50_s"], {"latency_p50_s": ".1f"}))
    print(f"\nreport: {path}")


def for_report(row: dict) -> dict:
    """A row without the data set's question and gold answer (evaluation data stays in
    ../shared/eval; ``id`` finds them there) and with quotes cut to 400 characters."""
    return {**{k: v for k, v in row.items() if k not in ("question", "gold")},
            "cited": [{**c, "quote": c["quote"][:400]} for c in row["cited"]]}


def regrade(report_path: Path, data: Path, out: Path | None) -> int:
    """The report's answers graded by today's ``grade_gold_text`` (questions and gold answers
    read from ``data`` by id); everything else kept."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    golds = {q["financebench_id"]: q for q in load_questions(data)}
    for r in report["questions"]:
        q = golds[r["id"]]
        right, r["rule"] = grade_gold_text(r["answer"], q["answer"], q["question"])
        r["outcome"] = outcome(r["status"] == "answered", True, r["status"] == "answered" and right)
    report["questions"] = [for_report({**r, "cited": r.get("cited", [])}) for r in report["questions"]]
    report["summary"] = summarize(report["questions"])
    report["regraded"] = f"{time.strftime('%Y-%m-%d')} from {report_path.name} by {_commit()}"
    path = write_report("financebench-qa", report, out or report_path)
    print_summary(report["summary"], path)
    return 0


def _commit() -> str:
    import subprocess

    p = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "ragcli"], capture_output=True, text=True)
    # the last commit that changed the pipeline (evaluate.py only scores): the code that answered
    last = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "ragcli",
                           ":(exclude)ragcli/evaluate.py"], capture_output=True, text=True)
    return (p.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            + f" (ragcli pipeline as of {last.stdout.strip()}; evaluate.py only scores)")


if __name__ == "__main__":
    raise SystemExit(main())
