"""Is the model's answer text backed by the quotes it cites?

The quotes are exact by construction, but the one-sentence answer is typed by a small
model and can still be wrong: "128 KiB" next to a quote that says "0.5 MiB". This module
finds the claims in an answer that its quotes do not contain — numbers, and answers that
share no content word with the quotes — so ``answer`` can replace such text with the
quotes themselves. It does not judge paraphrase or meaning beyond that.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    "a an and are as at be been but by can do does for from has have how in into is it its "
    "of on or so than that the their then there these this those to was were what when where "
    "which who why will with yes no not".split()
)


def _numbers(text: str) -> set[str]:
    """Numbers with thousands separators removed.

    >>> sorted(_numbers("2,048 tokens or 0.5 MiB, 4096"))
    ['0.5', '2048', '4096']
    """
    out = set()
    for m in _NUMBER.finditer(text):
        n = m.group(0)
        if re.fullmatch(r"\d{1,3}(,\d{3})+", n):
            n = n.replace(",", "")
        out.add(n.rstrip(".,"))
    return out


def _words(text: str) -> set[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    return {w for w in _WORD.findall(text) if w not in STOPWORDS and not w.isdigit()}


def unsupported_claims(answer: str, quotes: Iterable[str], question: str = "") -> list[str]:
    """What in ``answer`` neither the quotes nor the question contain; empty when grounded.

    >>> unsupported_claims("It takes 128 KiB.", ["one token takes 524,288 bytes, 0.5 MiB"])
    ['128']
    >>> unsupported_claims("0.5 MiB per token", ["one token takes 524,288 bytes, 0.5 MiB"])
    []
    """
    quoted = " ".join(quotes)
    missing = sorted(_numbers(answer) - _numbers(quoted + " " + question))
    words = _words(answer)
    if words and not words & _words(quoted):
        missing.append("no word of the answer is in its quotes")
    return missing


def support(answer: str, sentence: str) -> float:
    """Share of the answer's content words and numbers that ``sentence`` contains (0..1).

    >>> support("the k-quant family", "K stands for the k-quant family of formats.")
    1.0
    >>> support("128 KiB", "one token takes 0.5 MiB")
    0.0
    """
    need = _words(answer) | _numbers(answer)
    if not need:
        return 0.0
    have = _words(sentence) | _numbers(sentence)
    return len(need & have) / len(need)


def repeats_question(answer: str, question: str) -> bool:
    """True when every content word and number of ``answer`` is already in ``question``: an
    answer like "K" to "What does the K in Q4_K_M stand for?" says nothing its quotes do not.
    An answer without content words ("Yes") is an answer.

    >>> repeats_question("K", "What does the K in Q4_K_M stand for?")
    True
    >>> repeats_question("the k-quant family", "What does the K in Q4_K_M stand for?"), repeats_question("Yes.", "Is it?")
    (False, False)
    """
    need = _words(answer) | _numbers(answer)
    return bool(need) and need <= _words(question) | _numbers(question)
