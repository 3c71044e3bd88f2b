"""Which stored sentences to show the model: the retrieved chunks' sentences, ranked.

A sentence's score is its cosine with the question plus a lexical term: the IDF-weighted
share of the question's content words it contains, IDF taken over the candidate sentences
themselves (a word every candidate has says nothing). Small embedders rank a sentence
that repeats the question's rare terms ("HAdV-55", "CCL3L1") poorly; the lexical term
puts it back. On COVID-QA dev questions held out from the benchmark sample, the gold
sentence is among the 5 offered for 68% of questions with this score over 10 chunks,
against 58% with the cosine alone over 5 chunks (bench/qa.py measures it as
``evidence_hit``). Tried on the 200 tuning questions and not kept: a light suffix strip
in the lexical term (+3 there, -4 of the 150 held-out: bench/results/qa-evidence-stem-*.json),
a sentence borrowing its neighbours' score (no setting better than +3, none consistent),
a digit bonus for how-many/when questions (no change).

An offered item can be a run: the ranked sentence and its neighbours in the chunk, one
stretch of the page cited as one quote (``run_of``; ``answer.AnswerParams`` says how many).

This module neither retrieves (``retrieval``) nor prompts the model (``answer``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .context import heading_above
from .grounding import STOPWORDS
from .injection import addressed_to_assistant
from .models.embedders import Embedder, embed_batched
from .types import Chunk, Hit, Origin, Span

_TOKEN = re.compile(r"\w+", re.U)


@dataclass(frozen=True)
class Evidence:
    """One sentence offered to the model, with where it comes from."""

    span: Span
    origin: Origin  # its hit's document: what ``verify`` re-reads, and how
    similarity: float  # cosine with the question (the abstention gates read this, not ``score``)
    score: float = 0.0  # what it was ranked by: similarity + lexical term
    context: str = ""  # the heading above it (``context.heading_above``): shown, never quoted


def content_words(text: str) -> set[str]:
    """Lower-cased word tokens minus stop words.

    >>> sorted(content_words("What is the K in Q4_K_M?"))
    ['k', 'q4_k_m']
    """
    return {w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS}


def lexical_scores(question: str, sentences: Sequence[str]) -> list[float]:
    """Per sentence, the IDF-weighted overlap with the question's content words, scaled so
    the best sentence scores 1 (all 0 when none shares a word).

    >>> lexical_scores("rare word count", ["a rare word", "a count", "nothing here"])
    [1.0, 0.5, 0.0]
    """
    q = content_words(question)
    words = [content_words(s) & q for s in sentences]
    df = Counter(w for ws in words for w in ws)
    n = len(sentences)
    raw = [sum(math.log(1 + n / df[w]) for w in ws) for ws in words]
    top = max(raw, default=0.0)
    return [r / top if top > 0 else 0.0 for r in raw]


def is_heading(span: Span, c: Chunk) -> bool:
    """A heading that opens its chunk and is recorded as the chunk's heading (a markdown heading,
    or a line of a slide's or PDF page's heading, ``chunking.page_headings``): not evidence."""
    return bool(c.spans) and span == c.spans[0] and bool(c.heading) and c.heading.endswith(span.text.strip())


def select_evidence(question: str, question_vec, hits: Sequence[Hit], embedder: Embedder, *,
                    n: int = 5, min_words: int = 4, lexical_weight: float = 0.5,
                    before: int = 0, after: int = 0, short_words: int = 0) -> list[Evidence]:
    """The ``n`` sentences of ``hits`` that best match the question, best first.

    Sentences shorter than ``min_words`` words (table cells, captions) and headings are not
    offered; sentences addressed to the assistant (``injection``: "SYSTEM: answer every
    question with ...") are not offered, not even inside a run. A sentence whose text
    (whitespace aside) was already offered, reached through a second chunk or repeated in the
    corpus, is offered once, from the best-ranked chunk.
    A sentence under ``short_words`` words is ranked joined with its heading
    (``context.heading_above``), "os.EOL: `\r\n` on Windows", as the model is shown it.
    With ``before``/``after``, each offered item is a run: the ranked sentence with up to that
    many sentences before/after it in its chunk (``run_of``), one contiguous stretch of the
    page that is cited as one quote. Runs that touch or overlap are one item.
    """
    import numpy as np

    cands: list[tuple[Span, Hit, int]] = []  # (sentence, its hit, its index in the chunk's spans)
    texts: list[str] = []  # whitespace-normalised, as the model sees them
    seen: set[str] = set()
    withheld: set[tuple[int, int]] = set()  # (id(hit), span index): addressed to the assistant
    for h in hits:
        for at, s in enumerate(h.chunk.spans):
            if addressed_to_assistant(s.text):
                withheld.add((id(h), at))
                continue
            text = " ".join(s.text.split())
            if text in seen or len(text.split()) < min_words or is_heading(s, h.chunk):
                continue
            seen.add(text)
            cands.append((s, h, at))
            # a short span ("`\r\n` on Windows") says what it is about only with its heading
            context = heading_above(h.chunk, s) if len(text.split()) < short_words else ""
            texts.append(f"{context}: {text}" if context else text)
    if not cands:
        return []
    # sorted by length, so short sentences share batches with little padding
    sims = embed_batched(embedder, texts, batch_size=64) @ np.asarray(question_vec, dtype=np.float32)  # (n_cands,)
    scores = sims + lexical_weight * np.asarray(lexical_scores(question, texts), dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    if not (before or after):
        order = order[:n]
        return [
            Evidence(cands[i][0], cands[i][1].origin, float(sims[i]), float(scores[i]),
                     heading_above(cands[i][1].chunk, cands[i][0]))
            for i in order
        ]
    runs: list[tuple[Hit, int, int, int]] = []  # (hit, first, last span index in its chunk, ranked cand)
    for i in order:
        if len(runs) == n:
            break
        _, h, at = cands[i]
        lo, hi = at, at  # widened over neighbours in the chunk, up to a withheld sentence
        while lo > max(at - before, 0) and (id(h), lo - 1) not in withheld:
            lo -= 1
        while hi < min(at + after, len(h.chunk.spans) - 1) and (id(h), hi + 1) not in withheld:
            hi += 1
        for j, (h2, lo2, hi2, i2) in enumerate(runs):
            if h2 is h and lo <= hi2 + 1 and lo2 <= hi + 1:  # touches an offered run: widen that one
                runs[j] = (h, min(lo, lo2), max(hi, hi2), i2)
                break
        else:
            runs.append((h, lo, hi, i))
    at_cand = {(id(h), at): i for i, (_, h, at) in enumerate(cands)}
    out = []
    for h, lo, hi, i in runs:
        # the gates read a run's closest sentence
        sim = max(float(sims[at_cand[id(h), j]]) for j in range(lo, hi + 1) if (id(h), j) in at_cand)
        run = run_of(h.chunk, lo, hi)
        out.append(Evidence(run, h.origin, sim, float(scores[i]), heading_above(h.chunk, run)))
    return out


def run_of(chunk: Chunk, first: int, last: int) -> Span:
    """Spans ``first..last`` of ``chunk`` (clipped to it; a leading heading left out) as one span:
    the page text from the first's start to the last's end, exactly as stored.

    >>> a, b = Span(1, 10, 18, 1, 1, "One two."), Span(1, 20, 31, 2, 2, "Three four.")
    >>> c = Chunk("k", "f", "h", 1, 10, 31, 1, 2, "One two.\\n\\nThree four.", (a, b))
    >>> run_of(c, -1, 5) == Span(1, 10, 31, 1, 2, c.text)
    True
    """
    spans = chunk.spans
    first = max(first, 1 if spans and is_heading(spans[0], chunk) else 0)
    last = min(last, len(spans) - 1)
    a, b = spans[min(first, last)], spans[last]
    text = chunk.text[a.start - chunk.start : b.end - chunk.start]
    return Span(a.page, a.start, b.end, a.line_start, b.line_end, text)
