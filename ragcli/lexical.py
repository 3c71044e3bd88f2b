"""The text BM25 indexes and the words it looks up, in scripts beyond English.

SQLite's unicode61 tokenizer (and PostgreSQL's parser) cut words at spaces and punctuation
and keep letters and digits. Two kinds of script fall through that:

- scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar): a whole clause is one
  "word" that no question repeats. ``lexical_text`` writes each run as overlapping character
  pairs ("東京都" -> "東京 京都"), the way Lucene's CJK analyzer does; a question's run is cut
  the same way, so a two-character word is one term and a longer one several.
- scripts whose vowels are combining marks (Devanagari, Thai, Arabic harakat): unicode61 takes
  a mark for a separator, so "हिन्दी" was the three words "ह", "न", "द". The marks after a
  non-Latin letter are dropped, so a word stays one (consonant) word on both sides.

Latin, Greek and Cyrillic text comes back unchanged (an English index's BM25 is what it was:
SciFact's figures are untouched). Only BM25 reads this text: chunks, quotes and what is embedded
keep the original. This module does not query an index (``index``) or pick stop words.
"""

from __future__ import annotations

import functools
import re
import unicodedata

VERSION = "1"  # recorded in an index's meta as ``lexical_text``: bump when the text below changes

# letters of the scripts written without spaces between words
_UNSPACED = (r"\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
             r"\uf900-\ufaff\uff66-\uff9f")
_RUN = re.compile(f"[{_UNSPACED}]+")


@functools.cache
def _marks() -> re.Pattern[str]:
    """The combining marks (categories Mn, Mc, Me) of the Basic Multilingual Plane after a letter
    outside Latin, Greek and Cyrillic (a Latin text's marks stay). Built on first use (~15 ms)."""
    ranges: list[list[int]] = []
    for cp in range(0x300, 0x10000):
        if unicodedata.category(chr(cp)).startswith("M"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    body = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return re.compile(f"(?<=[^\\x00-\\u052f])[{body}]+")


def lexical_text(text: str) -> str:
    """``text`` as BM25 indexes it: unspaced runs as character pairs, non-Latin marks dropped.

    >>> lexical_text("Tokyo (東京都) is big"), lexical_text("हिन्दी भाषा"), lexical_text("naïve café")
    ('Tokyo ( 東京 京都 ) is big', 'हनद भष', 'naïve café')
    >>> lexical_text("กรุงเทพ")
    ' กร รง งเ เท ทพ '
    """
    if text.isascii():
        return text
    text = _marks().sub("", text)
    return _RUN.sub(_pairs, text)


def _pairs(m: re.Match[str]) -> str:
    run = m.group()
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


def changes(text: str) -> bool:
    """Whether BM25 indexes ``text`` differently from how it reads (``lexical_text``)."""
    return not text.isascii() and lexical_text(text) != text
