"""A prompt budget: the offered items cut to fit a number of prompt tokens, quotes still exact.

Prompt tokens are what a small model on 2 cores pays for first (issue 25: real-folder prompts
ran to 1,185 tokens, one long table "sentence" alone past 700). ``fit`` shares the tokens left
after the fixed text among the items, a short item leaving its unused share to the others, and
cuts each item over its share to a stretch of it: at sentence bounds first, then at line
breaks (table rows), then at spaces, keeping the piece that shares most of the question's
words and the pieces beside it. A cut item is a sub-span of its page text
(``page_text[start:end]`` still holds), so the quote that is cited is the text the model saw.

Counting: the generator's own tokenizer when it is loaded (``Generator.count_tokens``), else
``estimate_tokens``, which counts high (every digit a token, as Qwen's and Llama 3's
tokenizers split numbers; a word a token per 4 letters).

This module does not rank items (``evidence``) or build the prompt (``answer``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from .evidence import Evidence, content_words
from .types import Span

Count = Callable[[str], int]

_WORDS = re.compile(r"\d|[^\W\d]+|[^\w\s]", re.U)
# a Western end mark before whitespace; a CJK, Arabic or Devanagari one with or without it (``chunking``)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？｡؟۔।॥])\s*")
_LINE_END = re.compile(r"\n\s*")
_SPACE = re.compile(r"\s+")
# a word of a script written without spaces (Han, kana, Thai...) is a run of many words: a token a character
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff\uff66-\uff9f]")
MIN_ITEM_TOKENS = 16  # an item given fewer tokens than this is left out, not cut to a few words


def estimate_tokens(text: str) -> int:
    """A high estimate of a text's prompt tokens, for before a tokenizer is loaded.

    >>> estimate_tokens("Net sales $ 280,522"), estimate_tokens("Corepack needs enabling."), estimate_tokens("东京是首都")
    (11, 7, 5)
    """
    return sum(len(w) if w.isdigit() or _UNSPACED.match(w) else math.ceil(len(w) / 4) if w[0].isalpha() else 1
               for w in _WORDS.findall(text))


def item_text(i: int, ev: Evidence, text: str | None = None) -> str:
    """How item ``i`` reads in the prompt: its number, its heading, its text on one line.

    >>> from ragcli.types import Origin, Span
    >>> ev = Evidence(Span(1, 0, 9, 1, 1, "It sold.\\n"), Origin("f", "h"), 0.5, context="2017")
    >>> item_text(2, ev)
    '[2] (2017) It sold.'
    """
    body = " ".join((ev.span.text if text is None else text).split())
    return f"[{i}] ({ev.context}) {body}" if ev.context else f"[{i}] {body}"


def pieces(text: str, limit: int, count: Count) -> list[tuple[int, int]]:
    """``text`` as consecutive (start, end) pieces: sentences, each over ``limit`` tokens split
    at line breaks, then at spaces, down to single words. The pieces cover the text in order.

    >>> t = "One two. Three four five six."
    >>> [t[a:b] for a, b in pieces(t, 6, estimate_tokens)], [t[a:b] for a, b in pieces(t, 2, estimate_tokens)][:3]
    (['One two. ', 'Three four five six.'], ['One ', 'two. ', 'Three '])
    >>> t = "东京是日本的首都。人口很多。"
    >>> [t[a:b] for a, b in pieces(t, 8, estimate_tokens)]
    ['东京是日本的首都。', '人口很多。']
    """
    out = [(0, len(text))]
    for sep in (_SENTENCE_END, _LINE_END, _SPACE):
        split = []
        for a, b in out:
            if count(text[a:b]) <= limit:
                split.append((a, b))
                continue
            cuts = [m.end() for m in sep.finditer(text, a, b) if a < m.end() < b]
            split.extend(zip([a, *cuts], [*cuts, b], strict=True))
        out = split
    return out


def cut(ev: Evidence, question: str, limit: int, count: Count) -> Evidence | None:
    """``ev`` cut to at most ``limit`` tokens as an item (its number and heading included), or
    None when not even one word fits. The kept stretch is the piece sharing most question words
    (the first such) grown by its neighbours, the later one first, while it fits."""
    s = ev.span
    if count(item_text(9, ev)) <= limit:
        return ev
    room = limit - count(item_text(9, ev, ""))
    parts = pieces(s.text, room, count)
    q = content_words(question)
    best = max(range(len(parts)), key=lambda j: (len(content_words(s.text[slice(*parts[j])]) & q), -j))
    lo = hi = best
    if count(s.text[slice(*parts[best])]) > room:
        return None
    while True:
        grown = False
        for nlo, nhi in ((lo, hi + 1), (lo - 1, hi)):
            if 0 <= nlo and nhi < len(parts) and count(s.text[parts[nlo][0] : parts[nhi][1]]) <= room:
                lo, hi, grown = nlo, nhi, True
                break
        if not grown:
            break
    return replace(ev, span=sub_span(s, parts[lo][0], parts[hi][1]))


def sub_span(s: Span, a: int, b: int) -> Span:
    """The part ``s.text[a:b]`` of a span, surrounding whitespace left out, with its own offsets
    and lines (a line is counted at each "\\n", as ``chunking`` counts them).

    >>> sub_span(Span(1, 10, 22, 3, 4, "Ab cd.\\nEf g."), 7, 12)
    Span(page=1, start=17, end=22, line_start=4, line_end=4, text='Ef g.')
    """
    t = s.text
    while a < b and t[a].isspace():
        a += 1
    while b > a and t[b - 1].isspace():
        b -= 1
    line_start = s.line_start + t.count("\n", 0, a)
    line_end = s.line_start + t.count("\n", 0, max(b - 1, a))
    return Span(s.page, s.start + a, s.start + b, line_start, line_end, t[a:b])


def fit(evidence: Sequence[Evidence], question: str, budget: int, count: Count) -> list[Evidence]:
    """The items cut so that together they take at most ``budget`` tokens, in their order.

    Shares go to the cheapest items first: an item under its share keeps all of itself and
    leaves the rest to the others. An item whose share is under ``MIN_ITEM_TOKENS`` is left
    out (the last-ranked first), so the best items are never cut to nothing.
    """
    items = list(evidence)
    while items:
        costs = [count(item_text(i, ev)) for i, ev in enumerate(items, start=1)]
        shares = [0] * len(items)
        left = budget
        for n, j in enumerate(sorted(range(len(items)), key=lambda j: costs[j])):
            shares[j] = min(costs[j], left // (len(items) - n))
            left -= shares[j]
        if all(share >= min(cost, MIN_ITEM_TOKENS) for share, cost in zip(shares, costs, strict=True)):
            cuts = [cut(ev, question, share, count) for ev, share in zip(items, shares, strict=True)]
            if all(c is not None for c in cuts):
                return [c for c in cuts if c is not None]
        items = items[:-1]
    return []
