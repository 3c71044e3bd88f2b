"""XQuAD in other languages: is the answer in `rag search`'s top 5 chunks, default embedder vs multilingual?

    .venv/bin/python bench/languages.py [--data ../shared/eval/xquad] [--langs es,ar,hi,vi,tr,el,th]
                                        [--articles 48] [--questions 0] [--embedders default,multilingual-e5-small]

Per language, each article becomes one text file (its paragraphs joined by blank lines, named by
its number only: a file name's words go into chunk headers) under bench/.cache/xquad/LANG, and is
ingested with `rag ingest`'s code once per embedder. A question counts as found when one of the
top 5 chunks of `rag search` (hybrid, the default) is from its article and holds the answer text
(whitespace-normalised). ``--articles N``: the first N articles of 48 and only their questions;
``--questions N``: every k-th of those, N in all (0: all). One run gives both embedders, language
by language; the report is rewritten after each language, so a run cut short keeps what it did.

XQuAD is CC BY-SA 4.0: its text stays in ../shared/eval and bench/.cache (gitignored); the report
holds figures only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, DEFAULT_EVAL, machine, settings_for, table, write_report  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.verify import check_json  # noqa: E402

LANGS = "es,ar,hi,vi,tr,el,th"
TARGET = 0.95


def load(data: Path, lang: str, n_articles: int) -> tuple[list[str], list[tuple[int, str, str]]]:
    """(article texts, [(article number, question, answer text)])."""
    raw = json.loads((data / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"][:n_articles]
    texts, questions = [], []
    for i, art in enumerate(raw):
        texts.append("\n\n".join(p["context"] for p in art["paragraphs"]) + "\n")
        questions += [(i, qa["question"], qa["answers"][0]["text"]) for p in art["paragraphs"] for qa in p["qas"]]
    return texts, questions


def write_docs(texts: list[str], docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        p = docs / f"{i:02d}.txt"
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")


def norm(s: str) -> str:
    return " ".join(s.split())


def measure(lang: str, docs: Path, questions: list[tuple[int, str, str]], embedder: str) -> dict:
    settings = settings_for(docs.with_name(f"index-{embedder}-{docs.name}"), embedder=embedder)
    t0 = time.perf_counter()
    report = pipeline.ingest([docs], settings)
    ingest_s = time.perf_counter() - t0
    emb = pipeline.load_embedder(settings, embedder)  # loaded once for all the questions
    found, t0 = 0, time.perf_counter()
    built_with = ""
    for art, question, answer in questions:
        res = pipeline.search(question, settings, k=5, embedder=emb)
        built_with = res.embedder
        gold = f"{art:02d}.txt"
        found += any(h.chunk.source.endswith("/" + gold) and norm(answer) in norm(h.chunk.text) for h in res.hits)
    search_s = time.perf_counter() - t0
    return {"lang": lang, "embedder": built_with, "questions": len(questions), "found": found,
            "top5": round(found / len(questions), 3) if questions else None,
            "chunks_embedded": report.chunks, "ingest_s": round(ingest_s, 1),
            "search_ms": round(1000 * search_s / max(1, len(questions)), 1)}


def ask(lang: str, docs: Path, questions: list[tuple[int, str, str]], embedder: str, gen) -> dict:
    """``rag ask`` on ``questions`` over the index ``measure`` built: answered, a citation from the
    gold article, one holding the answer text, and every quote equal to its file's slice."""
    settings = settings_for(docs.with_name(f"index-{embedder}-{docs.name}"), embedder=embedder)
    emb = pipeline.load_embedder(settings, embedder)
    answered = gold = span = verified = cited = 0
    t0 = time.perf_counter()
    for art, question, answer in questions:
        a = pipeline.ask(question, settings, embedder=emb, generator=gen)
        answered += a.status == "answered"
        srcs = [c for c in a.citations if c.source.endswith(f"/{art:02d}.txt")]
        gold += bool(srcs)
        span += any(norm(answer) in norm(c.quote) for c in srcs)
        for c in a.citations:  # re-read by ragcli's verifier, as `rag verify` would
            cited += 1
            verified += check_json(asdict(c)) is None
    return {"lang": lang, "embedder": embedder, "asked": len(questions), "answered": answered,
            "citation_hit": gold, "answer_in_cited_quote": span, "citations": cited, "quotes_verified": verified,
            "ask_s": round((time.perf_counter() - t0) / max(1, len(questions)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL / "xquad")
    ap.add_argument("--langs", default=LANGS)
    ap.add_argument("--articles", type=int, default=48, help="the first N of the 48 articles, and their questions")
    ap.add_argument("--questions", type=int, default=0, help="every k-th question, N in all (0: all)")
    ap.add_argument("--embedders", default="all-minilm-l6-v2-int8-mixed,multilingual-e5-small",
                    help="registry names: today's default (English) and the multilingual choice")
    ap.add_argument("--ask", type=int, default=0, help="also `rag ask` the first N of the questions (0: none)")
    ap.add_argument("--ask-embedder", default="multilingual-e5-small", help="the index `--ask` asks")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    embedders = args.embedders.split(",")  # named: language detection must not pick for the default's row
    rows: list[dict] = []
    asked: list[dict] = []
    gen = pipeline.load_generator(settings_for(CACHE / "xquad" / "unused")) if args.ask else None
    out = args.out
    for lang in args.langs.split(","):
        texts, questions = load(args.data, lang, args.articles)
        if args.questions and len(questions) > args.questions:
            step = len(questions) / args.questions
            questions = [questions[int(i * step)] for i in range(args.questions)]
        docs = CACHE / "xquad" / lang / f"docs-{args.articles}"
        write_docs(texts, docs)
        for emb in embedders:
            row = measure(lang, docs, questions, emb)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.ask:
            asked.append(ask(lang, docs, questions[: args.ask], args.ask_embedder, gen))
            print(json.dumps(asked[-1]), flush=True)
        report = {"bench": "languages", "machine": machine(), "data": "XQuAD (CC BY-SA 4.0; figures only)",
                  "articles": args.articles, "questions_per_language": args.questions or "all",
                  "target": TARGET, "rows": rows, "ask": asked}
        out = write_report("languages", report, out)
    print(table(rows, ["lang", "embedder", "questions", "found", "top5", "ingest_s", "search_ms"]))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
