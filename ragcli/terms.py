"""The words of a question that matter: stop words, and the rare, specific terms it names.

A question that names something the folder does not hold ("Tesla's revenue in 2021?" over
Pfizer's 10-K, "Git 2.40" over the 2.39 release notes) is still answered by a small model
from whatever is closest. ``specific_terms`` picks the terms such a question hinges on:
numbers of two or more digits (years, versions, "3type"; "FY2025" is its year), identifiers (``os.EOL``,
``PRIORITY_HIGH``) and names (a capitalised word that opens none of the question's sentences);
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

_TOKEN = re.compile(r"[^\W_][\w.@+&-]*[^\W_]|[^\W_]", re.U)  # "os.EOL", "2.41.1", "Coca-Cola", "h11", "PP&E"

# Words that name a measure or a unit, not a thing a folder may lack: a filing answers "COGS in
# USD millions" with "Cost of sales ... $", "the CAGR" with the figures it is computed from.
MEASURE_WORDS = frozenset(
    "usd eur gbp jpy cny rmb chf cad aud inr krw brl mxn "
    "cogs ebit ebitda ebitdar cagr eps roa roe roi roic fcf yoy qoq ttm ltm kpi capex opex "
    "pp&e p&l d&a r&d sg&a m&a".split()
)
# A fiscal or calendar period: "FY2018", "FY20", "CY2019", "Q2", "Q22023", "H1", "1H22", "3Q21".
_PERIOD = re.compile(r"(?:FY|CY|[QH][1-4]|[1-4][QH])(\d{2}|\d{4})?", re.I)
# Where a question defines its own words: "DPO is defined as: 365 * (...).", "... (DPO)".
_DEFINITION = re.compile(r"\b(?:here\s+)?(?:is|are)\s+defined\s+as\b.*?(?:[.?!](?=\s|$)|$)", re.I | re.S)
_DEFINED = re.compile(r"(\S+)\s+(?:here\s+)?(?:is|are)\s+defined\s+as\b|\(([A-Z][A-Za-z&]*[A-Z])\)")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _is_specific(token: str, first: bool) -> bool:
    """A term the question hinges on.

    >>> [t for t in ("2021", "2.40", "1", "Tesla", "Windows", "PRIORITY_HIGH", "os.EOL", "What")
    ...  if _is_specific(t, t == "What")]
    ['2021', '2.40', 'Tesla', 'Windows', 'PRIORITY_HIGH', 'os.EOL']
    """
    if normalize(token) in MEASURE_WORDS:
        return False
    if sum(ch.isdigit() for ch in token) >= 2 or (any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)):
        return True  # a year, version, code, "3type", "R0"
    if "_" in token or re.search(r"[a-z]\.[A-Za-z]", token):
        return True  # an identifier: PRIORITY_HIGH, os.EOL
    if token[:1].isupper() and not first and normalize(token) not in QUESTION_WORDS:
        return True  # a name
    return False


def specific_terms(question: str, as_question: bool = True) -> list[str]:
    """The question's rare, specific terms, in order, each once ("'s" and trailing dots dropped).

    A fiscal period stands for its year ("FY2018": "2018"); measure and unit words ("USD",
    "COGS") are none. In a question (``as_question``) the word opening any of its sentences is
    no name by its capital ("Round your answer ..."), nor is a term the question defines itself
    ("days payable outstanding (DPO)", "DPO is defined as: ..."). An answer's terms
    (``as_question=False``, ``grounding``) are read with only its first word exempt.

    >>> specific_terms("What was Tesla's total revenue in 2021?")
    ['Tesla', '2021']
    >>> specific_terms("What new features did Git 2.40 introduce?")
    ['Git', '2.40']
    >>> specific_terms("Is Corepack enabled by default?"), specific_terms("Does the ferry run on public holidays?")
    (['Corepack'], [])
    >>> specific_terms("What is the FY2018 capex (in USD millions) for 3M? Round your answer. Give a response.")
    ['2018', '3M']
    >>> specific_terms("What is Corning's FY2020 days payable outstanding (DPO)? DPO is defined as: 365 * (FY20 COGS).")
    ['Corning', '2020']
    """
    question = question.replace("’", "'")
    defined = {normalize(a or b).rstrip(":") for a, b in _DEFINED.findall(question)} if as_question else set()
    text = re.sub(r"[`'\"()\[\]]", " ", _DEFINITION.sub(" . ", question) if as_question else question)
    text = re.sub(r"(?<=\w)'s\b", "", text)
    out: list[str] = []
    opens = True  # the word opening the question, or a sentence of it, names nothing by its capital
    for m in re.finditer(r"\S+", text):
        for tok in _TOKEN.findall(m.group(0)):
            tok = re.sub(r"(?<=\d)(st|nd|rd|th)$", "", tok.rstrip("."))  # "11th": the number
            if period := _PERIOD.fullmatch(tok):  # "FY2018" is found as "2018"; "Q2" alone names nothing
                year = period.group(1)
                tok = ("20" + year if year and len(year) == 2 else year) or ""
            if tok and normalize(tok) not in defined and _is_specific(tok, opens) and tok not in out:
                out.append(tok)
        opens = as_question and m.group(0).endswith((".", "?", "!", ":", ";"))
    return out


def term_pattern(term: str) -> re.Pattern[str]:
    """Where ``term`` stands in a (normalised) text as a whole token: "2.40" in "v2.40.0" and
    "RFC 8878" but not in "2.401"; "git" not in "digit".

    >>> p = term_pattern("2.40")
    >>> bool(p.search("git v2.40.0 notes")), bool(p.search("2.401")), bool(term_pattern("git").search("digit"))
    (True, False, False)
    >>> bool(term_pattern("R0").search("an r 0 of 2")), bool(term_pattern("covid19").search("covid-19"))
    (True, True)
    >>> bool(term_pattern("CVEs").search("* cve-2023-25652: ...")), bool(term_pattern("APIs").search("apis"))
    (True, True)
    """
    # "R0" stands in "R 0", "COVID19" in "COVID-19", "Coca-Cola" in "Coca Cola"; "CVEs" in "CVE-2023-1"
    if re.fullmatch(r"[A-Z][A-Z0-9]+s", term):
        term = term[:-1]
    parts = re.split(r"[\s_-]+|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", normalize(term))
    t = r"[\s_-]?".join(re.escape(p) for p in parts if p).replace(r"\.", r"\.\s?")  # "Ae.albopictus"
    before = r"(?<![\d.])" if term[:1].isdigit() else r"(?<![^\W\d_])"
    after = r"(?![\w])(?!,\d)" if term[-1:].isdigit() else r"(?:e?s)?(?![^\W\d_])"  # "ARTIs"
    return re.compile(before + t + after)


def missing_terms(question: str, texts: Iterable[str], names: Iterable[str] = ()) -> list[str]:
    """The question's specific terms that none of ``texts`` (passages, headings) and ``names``
    (file names, matched with separators ignored: "COCACOLA" holds "Coca-Cola") has.

    >>> missing_terms("What was Tesla's total revenue in 2021?", ["Total revenues $81.3 billion"], ["PFIZER 2021 10K"])
    ['Tesla']
    """
    terms = specific_terms(question)
    if not terms:
        return []
    hay = "\n".join(normalize(t) for t in [*texts, *names])
    hay_names = re.sub(r"[\W_]+", "", "".join(normalize(n) for n in names))
    out = []
    for t in terms:
        if term_pattern(t).search(hay):
            continue
        if any(ch.isalpha() for ch in t) and len(t) >= 4 and re.sub(r"[\W_]+", "", normalize(t)) in hay_names:
            continue
        if len(t) >= 6 and t.isalpha() and _near(normalize(t), hay):
            continue  # a typo in the question ("Zanamavir") is no term the folder lacks
        out.append(t)
    return out


def covered_terms(question: str, texts: Iterable[str], names: Iterable[str] = ()) -> frozenset[str]:
    """The question's specific terms that ``texts`` or ``names`` hold (``missing_terms``' complement).

    >>> sorted(covered_terms("Which CVEs does Git 2.39.2 address?", ["Fixes since v2.39.1"], ["git RelNotes 2.39.2"]))
    ['2.39.2', 'Git']
    """
    texts, names = list(texts), list(names)
    return frozenset(specific_terms(question)) - frozenset(missing_terms(question, texts, names))


_NAMED_VERSION = re.compile(r"(?<![\w.])([^\W\d_][\w+]*)[\s_-]+v?(\d+(?:\.\d+)+)(?![\w.]*\d)")


def other_version(question: str, name: str) -> str:
    """What a document's name says it is, when that is the question's subject in another
    version ("requests 2.34.2" for "requests 3.0"); "" when it is not.

    >>> other_version("Which Python version does requests 3.0 require?", "pypi requests 2.34.2 METADATA")
    'requests 2.34.2'
    >>> other_version("What changed in requests 2.34?", "pypi requests 2.34.2 METADATA")
    ''
    >>> other_version("Which Python version does requests need?", "pypi requests 2.34.2 METADATA")
    ''
    """
    asked = {(normalize(m.group(1)), m.group(2)) for m in _NAMED_VERSION.finditer(question)}
    for m in _NAMED_VERSION.finditer(name):
        word, ver = normalize(m.group(1)), m.group(2)
        for a_word, a_ver in asked:
            if word == a_word and ver != a_ver and not ver.startswith(a_ver + "."):
                return f"{m.group(1)} {ver}"
    return ""


def focus(question: str, docs: dict[str, tuple[list[str], str]]) -> set[str]:
    """The documents a question is about: of ``docs`` (source -> (its retrieved passages and
    headings, its name words)), those holding the most of the question's specific terms
    (ties: those whose name holds the most).

    "What gross margin did Northwind report for FY2024?" is about the deck that names Northwind,
    not about the Corning filing whose table says "Gross margin"; "Git 2.39.2" is about
    2.39.2.txt, not 2.39.4.txt, which mentions v2.39.3. Every document is kept when the question
    names nothing specific or no document holds more of it than another.

    >>> docs = {"deck": (["Gross margin of 61.4%"], "Northwind investor day 2024"),
    ...         "corning": (["Gross margin $ 5,063"], "CORNING 2021 10K")}
    >>> sorted(focus("What gross margin did Northwind report for FY2024?", docs))
    ['deck']
    >>> sorted(focus("What is a gross margin?", docs))
    ['corning', 'deck']
    >>> notes = {"2.39.3": (["Git v2.39.3 Release Notes"], "git RelNotes 2.39.3"),
    ...          "2.39.4": (["Fixes since v2.39.3"], "git RelNotes 2.39.4")}
    >>> sorted(focus("Which CVEs does Git 2.39.3 address?", notes))
    ['2.39.3']
    """
    if not specific_terms(question):
        return set(docs)
    # the terms a document holds, then those its name holds: "Git 2.39.3" is 2.39.3.txt's, not
    # 2.39.4.txt's, which mentions "v2.39.3" too
    got = {src: (len(covered_terms(question, texts, [name])), len(covered_terms(question, [], [name])))
           for src, (texts, name) in docs.items()}
    best = max(got.values(), default=(0, 0))
    return {src for src, n in got.items() if n == best}


def _near(word: str, hay: str) -> bool:
    """A word of ``hay`` one edit (insert, delete, substitute, swap) away from ``word``.

    >>> _near("zanamavir", "zanamivir and carrageenan"), _near("tesla", "teslas"), _near("netflix", "net flicks")
    (True, True, False)
    """
    for w in set(re.findall(r"[^\W\d_]+", hay)):
        if abs(len(w) - len(word)) > 1 or w[:1] != word[:1] and w[-1:] != word[-1:]:
            continue
        if _one_edit(word, w):
            return True
    return False


def _one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
            and a[diff[1]] == b[diff[0]]
    if len(a) > len(b):
        a, b = b, a
    i = next((i for i in range(len(a)) if a[i] != b[i]), len(a))
    return a[i:] == b[i + 1:]
