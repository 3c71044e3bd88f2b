"""Prompt tokens of `rag ask` on the real folders, before and after the prompt budget.

    .venv/bin/python bench/prompt_budget.py [--split tune] [--limit N] [--out PATH]

No answer is generated: for each question this retrieves, selects the evidence exactly as
``rag ask`` does (``answer.offer``) and counts, with the default model's own tokenizer and
chat template, the prompt the model would read: "before" is the items as they were offered
before issue 25 (no heading, no budget), "after" the items with their headings, cut to
``AnswerParams.max_prompt_tokens`` (``answer.fit_prompt``). It also checks every cut item
is still its page text (``page_text[start:end] == quote`` through ``ragcli.verify``).
Questions a gate stops before the model is asked have no prompt and are counted apart.

Build the folders first (bench/realfolders.py --build-only); tune on ``--split tune`` only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import chunk_params, index_dir, machine, settings_for  # noqa: E402
from realfolders import QUESTIONS, load_questions  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.answer import AnswerParams, build_messages, fit_prompt, offer, to_citation  # noqa: E402
from ragcli.config import DEFAULT_MODE  # noqa: E402
from ragcli.verify import Verifier, recorded_sizes, stored_pages  # noqa: E402

# Qwen2.5's chat template for a system and a user message, as llama.cpp renders it
TEMPLATE = "<|im_start|>system\n{0}<|im_end|>\n<|im_start|>user\n{1}<|im_end|>\n<|im_start|>assistant\n"


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="tune", choices=("all", "tune", "heldout"))
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    params = AnswerParams()
    qs = [q for q in load_questions(QUESTIONS) if args.split == "all" or q["split"] == args.split]
    qs = qs[: args.limit] if args.limit else qs
    settings = {n: settings_for(index_dir(f"realfolders-{n}", chunk_params(""))) for n in ("techdocs", "finance")}
    gen = pipeline.load_generator(settings["techdocs"])
    llm = gen._load()

    def templated(messages: list[dict]) -> int:
        text = TEMPLATE.format(messages[0]["content"], messages[1]["content"])
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    rows, embedders = [], {}
    for q in qs:
        s = settings[q["folder"]]
        with pipeline.open_index(s) as st:
            emb = embedders.get(q["folder"]) or pipeline.embedder_for_index(st, s, None)
            embedders[q["folder"]] = emb
            res, qv = pipeline._search(st, emb, q["question"], params.k, DEFAULT_MODE)
            verifier = Verifier(stored_pages(st, [(h.chunk.source, h.chunk.page) for h in res.hits]),
                                recorded_sizes(res.hits))
        evidence, why_not = offer(q["question"], qv, res.hits, emb, params)
        row = {"id": q["id"], "pattern": q["pattern"], "gated": bool(why_not)}
        if not why_not:
            before = [replace(ev, context="") for ev in evidence]
            t0 = time.perf_counter()
            fitted = fit_prompt(q["question"], evidence, gen.count_tokens, params.max_prompt_tokens)
            row["fit_s"] = time.perf_counter() - t0
            row["before"] = templated(build_messages(q["question"], before))
            row["after"] = templated(build_messages(q["question"], fitted))
            row["items"] = [len(evidence), len(fitted)]
            row["cut"] = sum(a.span != b.span for a, b in zip(evidence, fitted, strict=False))
            row["contexts"] = [ev.context for ev in fitted]
            checks = [verifier.check(to_citation(i, ev), ev.origin.kind) for i, ev in enumerate(fitted, 1)]
            row["exact"] = sum(c is not None and c.quote == ev.span.text for (c, _), ev in zip(checks, fitted,
                                                                                             strict=True))
        rows.append(row)
        print(f"{q['id']:<34} " + (f"{row['before']:>5} -> {row['after']:>4}  cut {row['cut']}  "
              f"exact {row['exact']}/{len(fitted)}" if not why_not else "gated"), file=sys.stderr)
    asked = [r for r in rows if not r["gated"]]
    summary = {"questions": len(rows), "asked": len(asked),
               **{f"{k}_{n}": pct([r[k] for r in asked], p) for k in ("before", "after")
                  for n, p in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))},
               "mean_before": statistics.fmean(r["before"] for r in asked) if asked else None,
               "mean_after": statistics.fmean(r["after"] for r in asked) if asked else None,
               "items_cut": sum(r["cut"] for r in asked), "items": sum(r["items"][1] for r in asked),
               "quotes_exact": sum(r["exact"] for r in asked), "max_prompt_tokens": params.max_prompt_tokens}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"bench": "prompt_budget", "machine": machine(), "split": args.split,
                                        "model": gen.name, "summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
