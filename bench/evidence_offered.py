"""Is the answer among the items offered to the model? Real folders' tune questions, no generation.

    .venv/bin/python bench/evidence_offered.py MIN_WORDS,SHORT_WORDS [...]   e.g. 4,0 3,6

For each answerable tune question: retrieve (k=10), ``answer.offer`` with ``AnswerParams(min_words,
short_words)``, cut to the prompt budget, and count the questions whose ``answer_pattern`` matches
the offered items' text and that no gate stopped. Tune on the tune split only.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import chunk_params, index_dir, settings_for  # noqa: E402
from realfolders import QUESTIONS, load_questions  # noqa: E402

from ragcli import pipeline  # noqa: E402
from ragcli.answer import AnswerParams, fit_prompt, offer  # noqa: E402
from ragcli.budget import estimate_tokens  # noqa: E402
from ragcli.config import DEFAULT_MODE  # noqa: E402


def main(argv: list[str]) -> int:
    qs = [q for q in load_questions(QUESTIONS) if q["split"] == "tune" and q["answerable"]]
    settings = {n: settings_for(index_dir(f"realfolders-{n}", chunk_params(""))) for n in ("techdocs", "finance")}
    embs, found = {}, {}
    for q in qs:
        s = settings[q["folder"]]
        with pipeline.open_index(s) as st:
            embs[q["folder"]] = embs.get(q["folder"]) or pipeline.embedder_for_index(st, s, None)
            found[q["id"]] = pipeline._search(st, embs[q["folder"]], q["question"], 10, DEFAULT_MODE)
    for arg in argv:
        mw, sw = map(int, arg.split(","))
        p = replace(AnswerParams(), min_words=mw, short_words=sw)
        hit = gated = 0
        per: dict[str, list[int]] = {}
        for q in qs:
            res, qv = found[q["id"]]
            ev, why = offer(q["question"], qv, res.hits, embs[q["folder"]], p)
            ev = fit_prompt(q["question"], ev, estimate_tokens, p.max_prompt_tokens)
            text = " ".join(" ".join(e.span.text.split()) for e in ev)
            h = bool(re.search(q["answer_pattern"], text, re.I)) and not why
            hit, gated = hit + h, gated + bool(why)
            counts = per.setdefault(q["pattern"], [0, 0])
            counts[0], counts[1] = counts[0] + h, counts[1] + 1
        print(f"min_words={mw} short_words={sw}: gold in offered items {hit}/{len(qs)}, gated {gated}",
              json.dumps(per))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
