"""The words of a query for full-text search, as both stores look them up.

SQLite's FTS5 quotes each word and ORs them (BM25); PostgreSQL ORs them into a ``tsquery``.
Either way the same words: stop words dropped, a year glued to letters also alone. What is
indexed (``lexical.lexical_text``) is the stores' business, not this module's.
"""

from __future__ import annotations

import re

from .. import lexical

_STOP = frozenset(
    "a an and are as at be by can do does for from how i in is it its of on or that the this "
    "to was what when where which who why will with you your".split()
)


_YEAR_IN_WORD = re.compile(r"(?<![0-9])[0-9]{4}(?![0-9])")


def fts_terms(query: str, segmented: bool = True) -> list[str]:
    """Query words for FTS5, quoted later, stop words dropped. A four-digit number glued to
    letters ("FY2018", "2023Q2") also gives the number alone: documents write "2018".
    ``segmented``: the words of ``lexical.lexical_text`` (CJK as character pairs), as indexed.

    >>> fts_terms('What is "GGUF" used for?')
    ['gguf', 'used']
    >>> fts_terms("FY2018 capex for 3M")
    ['fy2018', '2018', 'capex', '3m']
    >>> fts_terms("东京都的人口？")
    ['东京', '京都', '都的', '的人', '人口']
    """
    words = re.findall(r"\w+", (lexical.lexical_text(query) if segmented else query).lower())
    seen: dict[str, None] = {}
    for w in words:
        if w not in _STOP and w not in seen:
            seen[w] = None
            if not w.isdigit():
                for year in _YEAR_IN_WORD.findall(w):
                    seen.setdefault(year, None)
    return list(seen) or [w for w in words][:32]
