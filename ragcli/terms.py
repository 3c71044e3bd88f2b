"""The words of a question that matter: stop words, and the rare, specific terms it names.

A question that names something the folder does not hold ("Tesla's revenue in 2021?" over
Pfizer's 10-K, "Git 2.40" over the 2.39 release notes) is still answered by a small model
from whatever is closest. ``specific_terms`` picks the terms such a question hinges on:
numbers of two or more digits (years, versions, "3type", "FY2025"), identifiers (``os.EOL``,
``PRIORITY_HIGH``) and names (a capitalised word that does not open the question);
``missing_terms`` says which of them no retrieved passage, heading or file name contains.
It does not decide what to do about it (``answer``) and does not rank (``evidence``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

STOPWORDS = frozenset(
    "a an and are as at be been but by can do does for from has have how in into is it its "
    "of on or so than that the their then there these this those to was were what when where "
    "which who why will with yes no not".split()
)

# capitalised words that open or shape a question without naming anything
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how is are was were do does did can could will would "
    "should shall may might must has have had in on at for from under by of to after before during "
    "according if i my we our you your the a an and or between since until".split()
)

_TOKEN = re.compile(r"[^\W_][\w.@+-]*[^\W_]|[^\W_]", re.U)  # "os.EOL", "2.41.1", "Coca-Cola", "h11"


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _is_specific(token: str, first: bool) -> bool:
    """A term the question hinges on.

    >>> [t for t in ("2021", "2.40", "1", "Tesla", "Windows", "PRIORITY_HIGH", "os.EOL", "What")
    ...  if _is_specific(t, t == "What")]
    ['2021', '2.40', 'Tesla', 'Windows', 'PRIORITY_HIGH', 'os.EOL']
    """
    if sum(ch.isdigit() for ch in token) >= 2 or (any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)):
        return True  # a year, version, code, "3type", "FY2023"
    if "_" in token or re.search(r"[a-z]\.[A-Za-z]", token):
        return True  # an identifier: PRIORITY_HIGH, os.EOL
    if token[:1].isupper() and not first and normalize(token) not in QUESTION_WORDS:
        return True  # a name
    return False


def specific_terms(question: str) -> list[str]:
    """The question's rare, specific terms, in order, each once ("'s" and trailing dots dropped).

    >>> specific_terms("What was Tesla's total revenue in 2021?")
    ['Tesla', '2021']
    >>> specific_terms("What new features did Git 2.40 introduce?")
    ['Git', '2.40']
    >>> specific_terms("Is Corepack enabled by default?"), specific_terms("Does the ferry run on public holidays?")
    (['Corepack'], [])
    """
    text = re.sub(r"[`'\"()\[\]]", " ", question.replace("’", "'"))
    text = re.sub(r"(?<=\w)'s\b", "", text)
    out: list[str] = []
    for i, m in enumerate(re.finditer(r"\S+", text)):
        for tok in _TOKEN.findall(m.group(0)):
            tok = tok.rstrip(".")
            if tok and _is_specific(tok, i == 0) and tok not in out:
                out.append(tok)
    return out


def term_pattern(term: str) -> re.Pattern[str]:
    """Where ``term`` stands in a (normalised) text as a whole token: "2.40" in "v2.40.0" and
    "RFC 8878" but not in "2.401"; "git" not in "digit".

    >>> p = term_pattern("2.40")
    >>> bool(p.search("git v2.40.0 notes")), bool(p.search("2.401")), bool(term_pattern("git").search("digit"))
    (True, False, False)
    """
    t = re.escape(normalize(term))
    before = r"(?<![\d.])" if term[:1].isdigit() else r"(?<![^\W\d_])"
    after = r"(?![\w])(?!,\d)" if term[-1:].isdigit() else r"(?![^\W\d_])"
    return re.compile(before + t + after)


def missing_terms(question: str, texts: Iterable[str]) -> list[str]:
    """The question's specific terms that none of ``texts`` (passages, headings, file names) has.

    >>> missing_terms("What was Tesla's total revenue in 2021?", ["Pfizer 2021 10K", "Total revenues $81.3 billion"])
    ['Tesla']
    """
    terms = specific_terms(question)
    if not terms:
        return []
    hay = "\n".join(normalize(t) for t in texts)
    hay_loose = re.sub(r"[\W_]+", "", hay)  # "COCACOLA" in a file name holds "Coca-Cola"
    out = []
    for t in terms:
        if term_pattern(t).search(hay):
            continue
        if any(ch.isalpha() for ch in t) and len(t) >= 4 and re.sub(r"[\W_]+", "", normalize(t)) in hay_loose:
            continue
        out.append(t)
    return out
