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

This module neither retrieves (``retrieval``) nor prompts the model (``answer``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .embedders import Embedder, embed_batched
from .grounding import STOPWORDS
from .types import Hit, Span

_TOKEN = re.compile(r"\w+", re.U)


@dataclass(frozen=True)
class Evidence:
    """One sentence offered to the model, with where it comes from."""

    span: Span
    source: str
    sha256: str
    paged: bool
    encoding: str
    similarity: float  # cosine with the question (the abstention gates read this, not ``score``)
    score: float = 0.0  # what it was ranked by: similarity + lexical term
    kind: str = "text"  # the source's Document.kind: how ``verify`` re-reads it


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


def is_heading(span: Span, hit: Hit) -> bool:
    """A markdown heading opens its chunk and is recorded as the chunk's heading: not evidence."""
    c = hit.chunk
    return bool(c.spans) and span == c.spans[0] and bool(c.heading) and c.heading.endswith(span.text.strip())


def select_evidence(question: str, question_vec, hits: Sequence[Hit], embedder: Embedder, *,
                    n: int = 5, min_words: int = 4, lexical_weight: float = 0.5) -> list[Evidence]:
    """The ``n`` sentences of ``hits`` that best match the question, best first.

    Sentences shorter than ``min_words`` words (table cells, captions) and headings are not
    offered; a sentence whose text (whitespace aside) was already offered, reached through a
    second chunk or repeated in the corpus, is offered once, from the best-ranked chunk.
    """
    import numpy as np

    cands: list[tuple[Span, Hit]] = []
    texts: list[str] = []  # whitespace-normalised, as the model sees them
    seen: set[str] = set()
    for h in hits:
        for s in h.chunk.spans:
            text = " ".join(s.text.split())
            if text in seen or len(text.split()) < min_words or is_heading(s, h):
                continue
            seen.add(text)
            cands.append((s, h))
            texts.append(text)
    if not cands:
        return []
    # sorted by length, so short sentences share batches with little padding
    sims = embed_batched(embedder, texts, batch_size=64) @ np.asarray(question_vec, dtype=np.float32)  # (n_cands,)
    scores = sims + lexical_weight * np.asarray(lexical_scores(question, texts), dtype=np.float32)
    order = np.argsort(-scores, kind="stable")[:n]
    return [
        Evidence(cands[i][0], cands[i][1].chunk.source, cands[i][1].chunk.sha256, cands[i][1].paged,
                 cands[i][1].encoding, float(sims[i]), float(scores[i]), cands[i][1].kind)
        for i in order
    ]
