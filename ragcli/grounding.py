"""Is the model's answer text backed by the quotes it cites?

The quotes are exact by construction, but the one-sentence answer is typed by a small
model and can still be wrong: "128 KiB" next to a quote that says "0.5 MiB". This module
finds the claims in an answer that its quotes do not contain — numbers, and answers that
share no content word with the quotes — so ``answer`` can replace such text with the
quotes themselves. Two more checks catch what a small model gets wrong most often: a
yes/no answer against the polarity of its quote ("Yes" next to "needs to be explicitly
enabled"), and a number taken from the wrong row or year column of a table-row quote
("141,366", the 2018 North America cell, for "total net sales in 2019"). It does not judge
paraphrase or meaning beyond that.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from .terms import STOPWORDS, normalize, specific_terms, term_pattern

__all__ = ["STOPWORDS", "answer_support", "coverage", "row_mismatch", "yes_no", "polarity_conflict", "repeats_question", "support",
           "table_mismatch", "unsupported_claims"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+")


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
    ['128', 'KiB']
    >>> unsupported_claims("0.5 MiB per token", ["one token takes 524,288 bytes, 0.5 MiB"])
    []
    >>> unsupported_claims("the --atomic option", ["git grep learned the --max-count option"])
    ['--atomic']
    """
    quoted = " ".join(quotes)
    missing = sorted(_numbers(answer) - _numbers(quoted + " " + question))
    # names, identifiers and options ("--atomic", "os.EOL", "Linux") must stand in a quote too
    hay = normalize(quoted + "\n" + question)
    for t in [*specific_terms(answer, as_question=False), *re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", answer)]:
        if normalize(t) in ("yes", "no") or _numbers(t) and not re.search(r"[^\W\d_]", t):
            continue  # yes/no is the polarity check's; a plain number is checked above
        if not term_pattern(t).search(hay) and normalize(t) not in hay and t not in missing:
            missing.append(t)
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


def _stem(word: str) -> str:
    """A crude stem, enough to meet a word's other forms: "takes" and "take", "plans" and "planned".

    >>> [_stem(w) for w in ("takes", "take", "plans", "planned", "enabled", "enable", "os")]
    ['tak', 'tak', 'plan', 'plan', 'enabl', 'enabl', 'os']
    """
    w = re.sub(r"(?<=\w\w\w)(?:ing|ed|es|s|e)$", "", word)
    w = re.sub(r"(\w)\1$", r"\1", w)
    return w[:5]


def coverage(question: str, texts: Iterable[str]) -> float:
    """Share of the question's content words (compared by their first five letters, so "plans"
    meets "plan") that ``texts`` hold: 1.0 when the question has none.

    >>> coverage("Does h11 have dependencies outside the Python standard library?",
    ...          ["The last Python 2-compatible version was h11 0.11.x."])
    0.3333333333333333
    """
    need = {_stem(w) for w in _words(question) if len(w) > 1}  # not the "s" of "Amazon's"
    if not need:
        return 1.0
    have = {_stem(w) for t in texts for w in _words(t)}
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


_YESNO_Q = re.compile(r"^\s*(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|must)\b", re.I)
_YESNO_A = re.compile(r"^\W*(yes|no)\b", re.I)
# what makes a sentence say "no" or "not by default": negation, restriction, requirement
_NEGATION = re.compile(
    r"\b(not|no|never|none|nothing|cannot|without|neither|nor|disabled?|refuses?|only|"
    r"needs? to be|must be|has to be|have to be)\b|n't\b", re.I)


def yes_no(answer: str) -> str:
    """"yes" or "no" when the answer opens with it, else "".

    >>> yes_no("Yes, it is."), yes_no("No."), yes_no("Nobody")
    ('yes', 'no', '')
    """
    m = _YESNO_A.match(answer)
    return m.group(1).lower() if m else ""


def polarity_conflict(question: str, answer: str, quote: str) -> str:
    """Why a bare yes/no ``answer`` disagrees with ``quote``; "" when it does not (or is no yes/no).

    "Yes" needs a quote that does not negate what the question asks (``negated_claim``); "No"
    needs one with negation, restriction or requirement somewhere.

    >>> polarity_conflict("Is Corepack enabled by default?", "Yes",
    ...     "Corepack currently needs to be explicitly enabled to have any effect.")
    'the answer says yes, the quote says "needs to be explicitly enabled"'
    >>> polarity_conflict("Does the ferry run on public holidays?", "yes", "The ferry does not run on public holidays.")
    'the answer says yes, the quote says "not run"'
    >>> polarity_conflict("Did Boeing pay dividends in 2022?", "No", "we did not pay any dividends in 2022")
    ''
    """
    if not _YESNO_Q.match(question):
        return ""
    m = _YESNO_A.match(answer)
    if not m:
        return ""
    if m.group(1).lower() == "yes":
        neg = negated_claim(question, quote)
        return f'the answer says yes, the quote says "{neg}"' if neg else ""
    if not _NEGATION.search(quote):
        return "the answer says no, the quote holds no negation"
    return ""


_AFTER_ITS_SUBJECT = re.compile(r"disabled?|refuses?|refused", re.I)  # "fsmonitor ... is disabled"


def negated_claim(question: str, quote: str) -> str:
    """The negation in ``quote`` that bears on what a yes/no ``question`` asks: a cue
    (``_NEGATION``) with one of the question's own words that is not a name within three words
    after it ("No plans to enter" for "Does Northwind plan to enter China?"), or before it for
    a cue that follows its subject ("fsmonitor ... is disabled"); "" when none.

    >>> negated_claim("Does Northwind plan to enter China?", "Expansion into Brazil in 2025. No plans to enter the Chinese market")
    'No plans'
    >>> negated_claim("Are Corepack's npm shims enabled by default?", "its shims aren't enabled by default")
    "aren't enabled"
    >>> negated_claim("Is fsmonitor enabled by default on a networked filesystem?", "use of fsmonitor on a networked filesystem is disabled")
    'disabled'
    >>> negated_claim("Is the punycode module deprecated?", "Fixes to the module must be directed to the Punycode.js project.")
    ''
    """
    names = {normalize(t) for t in specific_terms(question)}
    stems = {_stem(w) for w in _words(question) if w not in names and len(w) >= 3}
    words = re.findall(r"[^\W_]+(?:['’]t)?", quote)
    low = [_stem(normalize(w)) for w in words]
    for i, word in enumerate(words):
        cue = next((" ".join(words[i:i + n]) for n in (3, 2, 1) if _NEGATION.fullmatch(" ".join(words[i:i + n]))), "")
        if not cue and re.search(r"n['’]t$", word, re.I):
            cue = word
        if not cue:
            continue
        span = len(cue.split())
        after = [j for j in range(i + span, min(len(words), i + span + 3)) if low[j] in stems]
        if after:
            return " ".join(words[i:after[0] + 1])
        if _AFTER_ITS_SUBJECT.fullmatch(cue) and any(w in stems for w in low[max(0, i - 8):i]):
            return cue
    return ""


_CELL = re.compile(r"\(?-?\$?\s?\d[\d,]*(?:\.\d+)?\)?%?")
_YEAR = re.compile(r"(?:19|20)\d\d")


def table_mismatch(question: str, answer: str, quote: str) -> str:
    """Why a number of ``answer`` comes from the wrong cell of a table-row ``quote``; "" if none.

    A quote with a header run of years ("2018 2019") and rows "Label $ v1 $ v2" is read as a
    table: the answer's number must sit in the column of the question's year.

    >>> q = "Net sales (in millions): 2018 2019 North America $ 141,366 $ 170,773 Consolidated $ 232,887 $ 280,522"
    >>> table_mismatch("What were Amazon's total net sales in 2019?", "141,366", q)
    '141,366 is in the 2018 column, the question asks for 2019'
    >>> table_mismatch("What were Amazon's total net sales in 2019?", "$280,522", q)
    ''
    """
    asked = [y for y in _YEAR.findall(question)]
    if len(asked) != 1:
        return ""
    tokens = quote.split()
    header: list[str] = []
    at = 0
    for i in range(len(tokens)):  # the first run of two or more years
        run = []
        j = i
        while j < len(tokens) and re.fullmatch(r"(?:19|20)\d\d", tokens[j].strip(",")):
            run.append(tokens[j].strip(","))
            j += 1
        if len(run) >= 2:
            header, at = run, j
            break
    if not header or asked[0] not in header:
        return ""
    col = -1
    found: dict[str, int] = {}
    for tok in tokens[at:]:
        if tok == "$":
            continue
        if _CELL.fullmatch(tok):
            col += 1
            found.setdefault(tok.strip("$()%").replace(",", ""), col)
        else:
            col = -1  # a row label starts a new row
    for n in _numbers(answer):
        if n in found and found[n] < len(header) and header[found[n]] != asked[0]:
            shown = next(m.group(0) for m in _NUMBER.finditer(answer) if m.group(0).replace(",", "") == n)
            return f"{shown} is in the {header[found[n]]} column, the question asks for {asked[0]}"
    return ""


def labeled_cell_mismatch(question: str, answer: str, quote: str) -> str:
    """Why a number of ``answer`` comes from the wrong cell of a table row read with its header
    labels (``loaders.blocks.table_rows``: "Label: value | Label: value"); "" if none.

    The cell's label must not name another year than the one the question asks for, and the
    row must be the one the question names when another row of the quote is.

    >>> q = "Division: Surgical Robotics | FY2023 revenue ($M): 14.2 | FY2024 revenue ($M): 16.8"
    >>> labeled_cell_mismatch("What was Surgical Robotics' revenue in FY2024?", "14.2", q)
    '14.2 is in the column "FY2023 revenue ($M)", the question asks for 2024'
    >>> two = "Division: Diagnostics | Headcount: 240\\n\\nDivision: Patient Monitoring | Headcount: 131"
    >>> labeled_cell_mismatch("What is the headcount of the Patient Monitoring division?", "240", two)
    '240 is in the row "Diagnostics", the question asks about "Patient Monitoring"'
    >>> labeled_cell_mismatch("What is the headcount of the Patient Monitoring division?", "131", two)
    ''
    >>> labeled_cell_mismatch("What gross margin did Northwind report for FY2023?", "14.2", q)
    '14.2 is in the column "FY2023 revenue ($M)", the question asks about something else'
    """
    rows = []
    for line in quote.splitlines():
        cells = [c.partition(": ") for c in line.split(" | ")]
        if len(cells) >= 2 and all(sep for _, sep, _ in cells):
            rows.append([(label.strip(), value.strip()) for label, _, value in cells])
    if not rows:
        return ""
    asked_years = set(_YEAR.findall(question))
    q_words = _words(question)
    named = [r for r in rows if _words(r[0][1]) and _words(r[0][1]) <= q_words]
    for n in _numbers(answer) - _numbers(question):
        for row in rows:
            for label, value in row[1:]:
                if n not in _numbers(value):
                    continue
                years = set(_YEAR.findall(label))
                if len(asked_years) == 1 and years and not years & asked_years:
                    return f'{value} is in the column "{label}", the question asks for {next(iter(asked_years))}'
                if named and row not in named:
                    return f'{value} is in the row "{row[0][1]}", the question asks about "{named[0][0][1]}"'
                about = _words(re.sub(r"\(.*?\)", " ", label)) - {w for w in _words(label) if _YEAR.search(w)}
                if about and not about & q_words and not any(_stem(w) in {_stem(x) for x in q_words} for w in about):
                    return f'{value} is in the column "{label}", the question asks about something else'
    return ""


def row_mismatch(question: str, answer: str, quotes: Sequence[str]) -> str:
    r"""Why a number of ``answer`` comes from another row of a pipe table than the one the
    question names; "" if none. Rows are the quotes' lines with two or more "|"; the row the
    question names is the one holding most of its words and numbers, each weighted by how few
    rows hold it ("lz4 1.9.3" over the many "zstd ... --fast" rows). It must be one row, and
    hold a word or number no other row has.

    >>> t = ("| zstd 1.5.1 --fast=3 | 2.239 | 670 MB/s | 2250 MB/s |\n| zstd 1.5.1 --fast=4 | 2.148 | 710 MB/s | 2300 MB/s |\n"
    ...      "| lz4 1.9.3 | 2.101 | 740 MB/s | 4500 MB/s |")
    >>> row_mismatch("How fast does lz4 1.9.3 decompress in the zstd benchmark?", "2250 MB/s", [t])
    '2250 is in the row "zstd 1.5.1 --fast=3", the question asks about "lz4 1.9.3"'
    >>> row_mismatch("How fast does lz4 1.9.3 decompress in the zstd benchmark?", "4500 MB/s", [t])
    ''
    """
    rows = [line for q in quotes for line in q.splitlines() if line.count("|") >= 2]
    if len(rows) < 2:
        return ""
    asked = _words(question) | _numbers(question)
    held = [(_words(r) | _numbers(r)) & asked for r in rows]
    df = {w: sum(w in h for h in held) for w in asked}
    score = [sum(1 / df[w] for w in h) for h in held]
    best = max(range(len(rows)), key=lambda i: score[i])
    if score[best] < 1 or sum(sc == score[best] for sc in score) > 1:
        return ""  # no row, or more than one, is the question's

    def label(row: str) -> str:
        cells = [c.strip(" *[]") for c in row.split("|") if c.strip()]
        return next((c for c in cells if re.search(r"[^\W\d_]", c)), cells[0] if cells else row)

    for n in sorted(_numbers(answer) - _numbers(question)):
        at = [i for i, r in enumerate(rows) if n in _numbers(r)]
        if at and best not in at:
            return f'{n} is in the row "{label(rows[at[0]])}", the question asks about "{label(rows[best])}"'
    return ""


def answer_support(question: str, answer: str, quotes: Sequence[str],
                   contexts: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """``(missing, per_quote)``: what the answer says that its quotes do not back (empty: supported),
    and per quote "supported", "partial" or "unsupported" (its share of the answer's words and numbers).
    ``contexts``, one per quote, are the headings shown beside them ("man-db 2.11.1 (15 November
    2022)" above "Add section 3type ..."): what they say backs the answer as the quote does.

    >>> answer_support("Which man-db release added section 3type?", "man-db 2.11.1",
    ...                ["Add section `3type` to the default section list."], ["man-db 2.11.1 (15 November 2022)"])
    ([], ['supported'])
    >>> answer_support("What crash did man-db 2.11.2 fix in mandb?", "Fixes",
    ...                ["Fix crash in `mandb` when processing stray cats."], ["Fixes"])[0]
    ['it only repeats a heading']

    >>> answer_support("Is Corepack enabled by default?", "Yes", ["Corepack currently needs to be explicitly enabled."])
    (['the answer says yes, the quote says "needs to be explicitly enabled"'], ['unsupported'])
    """
    contexts = list(contexts) or [""] * len(quotes)
    read = [f"{c}\n{q}" if c else q for q, c in zip(quotes, contexts, strict=True)]  # as a person reads them
    missing = unsupported_claims(answer, read, question)
    words = _words(answer)
    if words and words <= _words(" ".join(contexts)) and not words & _words(question) \
            and len(words & _words(" ".join(quotes))) * 2 < len(words):
        # a heading's words, none of the question's and few of the quote's: "Fixes", "1.3. Language
        # used in this specification"; "man-db 2.11.1" for "Which man-db release ...?" is an answer
        missing.append("it only repeats a heading")
    if quotes:
        best = max(quotes, key=lambda q: len(_words(q) & _words(question)))
        # a "Yes" any quote contradicts is wrong; a "No" needs the best-matching quote's negation
        yes = bool(re.match(r"^\W*yes\b", answer, re.I))
        for why in (*(polarity_conflict(question, answer, q) for q in (quotes if yes else [best])),
                    *(table_mismatch(question, answer, q) for q in quotes),
                    *(labeled_cell_mismatch(question, answer, q) for q in quotes),
                    row_mismatch(question, answer, quotes)):
            if why and why not in missing and not (why.startswith("the answer says yes")
                                                   and any(m.startswith("the answer says yes") for m in missing)):
                missing.append(why)  # one contradicting quote is reason enough
    per = []
    claimed = _numbers(answer) - _numbers(question)
    for q, seen in zip(quotes, read, strict=True):
        share = support(answer, seen)
        bad = polarity_conflict(question, answer, q) or table_mismatch(question, answer, q) \
            or labeled_cell_mismatch(question, answer, q) \
            or bool(claimed) and not claimed & _numbers(seen)  # holds none of the answer's numbers
        per.append("unsupported" if bad or (share == 0 and not _YESNO_A.match(answer)) else
                   "supported" if share >= 0.75 or _YESNO_A.match(answer) else "partial")
    return missing, per
