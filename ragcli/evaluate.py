"""Metrics for retrieval and cited answers: one implementation for `rag eval` and bench/.

Pure functions over plain values (answer JSON as ``Answer.to_json`` prints it, gold data as
small frozen dataclasses); reading files is limited to re-reading cited sources for the
independent quote check. Nothing here runs a model or retrieval: callers do, then score.

Answer metrics follow SQuAD: answers are normalised (lower case, punctuation and articles
removed, whitespace collapsed) before a containment check and a token F1.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .verify import check_json

_MARKERS = re.compile(r"\[\d+\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”")


def normalize(text: str) -> str:
    """SQuAD normalisation, citation markers dropped.

    >>> normalize("The K-quant family [1], of formats.")
    'kquant family of formats'
    """
    text = _MARKERS.sub(" ", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains(prediction: str, gold: str) -> bool:
    """Whether the normalised gold answer occurs in the normalised prediction."""
    g = normalize(gold)
    return bool(g) and g in normalize(prediction)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1.

    >>> round(token_f1("0.5 MiB per token", "exactly 0.5 MiB per token"), 3)
    0.889
    """
    p, g = normalize(prediction).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


# --- retrieval ------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int = 10) -> float:
    """nDCG@k with graded relevance (BEIR / trec_eval definition: gain = rel, log2 discount).

    >>> ndcg_at_k(["a", "b"], {"b": 1}, 10) == 1 / math.log2(3)
    True
    """
    dcg = sum(relevant.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int) -> float:
    rel = {d for d, r in relevant.items() if r > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def found_at(ranked: Sequence[tuple[str, int | None]], source: str, pages: Iterable[int] | None = None,
             k: int = 5) -> bool:
    """Whether one of the first ``k`` results ``(path, page)`` comes from ``source`` (a path or
    a file name it ends with, as ``same_source``) and, when ``pages`` is given, from one of them.

    >>> r = [("/f/a.pdf", 3), ("/f/b.pdf", 60)]
    >>> found_at(r, "b.pdf", k=2), found_at(r, "b.pdf", [60], k=1), found_at(r, "b.pdf", [59, 60], k=2)
    (True, False, True)
    """
    want = None if pages is None else set(pages)
    return any(same_source(path, source) and (want is None or page in want) for path, page in ranked[:k])


# --- cited answers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Gold:
    """What a question should get. Every field but ``question`` is optional."""

    question: str
    answers: tuple[str, ...] = ()  # any of these counts as right
    source: str | None = None  # the file that holds the answer: a path, or a name it ends with
    spans: tuple[tuple[int, int], ...] = ()  # [start, end) of the answer in ``source``
    answerable: bool = True  # False: the right reply is no_evidence


@dataclass(frozen=True)
class Scored:
    """One question's result. ``None`` where the gold data cannot tell."""

    question: str
    status: str
    answered: bool
    abstained_right: bool | None  # unanswerable and answered no_evidence
    correct: bool | None  # a gold answer is in the answer text or its quotes
    f1: float | None
    source_hit: bool | None  # some citation comes from the gold file
    citation_hit: bool | None  # some citation from the gold file overlaps a gold span
    citation_precision: float | None  # share of citations from the gold file overlapping a gold span
    citations: int
    verified: int  # citations whose quote equals the slice of the source, re-read here
    latency_s: float
    completion_tokens: float = 0.0
    generate_s: float = 0.0
    prompt_tokens: float = 0.0
    first_token_s: float = 0.0
    extra: dict = field(default_factory=dict)


def same_source(cited: str, gold: str) -> bool:
    """``gold`` is an absolute path, or a relative path / file name the cited path ends with; in a
    relative one, ``*`` stands for any characters but "/" (a package's METADATA whatever its version).

    >>> same_source("/f/pypi/opencv_python-5.1.0.95-METADATA.txt", "pypi/opencv_python-*-METADATA.txt")
    True
    >>> same_source("/f/pypi/other/opencv_python-5.1-METADATA.txt", "pypi/opencv_python-*-METADATA.txt")
    False
    """
    if Path(gold).is_absolute():
        return Path(cited) == Path(gold)
    gold = gold.lstrip("./")
    if "*" in gold:
        pattern = "(?:^|/)" + "[^/]*".join(re.escape(part) for part in gold.split("*")) + "$"
        return re.search(pattern, cited) is not None
    return cited == gold or cited.endswith("/" + gold)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def hits_gold_span(gold: Gold, source: str, start: int, end: int) -> bool:
    """Whether ``source[start:end]`` overlaps one of the gold answer's spans."""
    return bool(gold.source) and same_source(source, gold.source) and any(
        overlaps((start, end), s) for s in gold.spans)


def quote_is_exact(c: Mapping) -> bool:
    """The citation contract, checked by re-reading the source (``verify``, the README's recipes)."""
    return check_json(c) is None


def score(gold: Gold, out: Mapping, latency_s: float, verify: bool = True) -> Scored:
    """Score one ``rag ask --json`` object against its gold data."""
    answered = out.get("status") == "answered"
    cits = list(out.get("citations") or [])
    text = str(out.get("answer", ""))
    seen = text + " " + " ".join(str(c.get("quote", "")) for c in cits)
    correct = f1 = None
    if gold.answerable and gold.answers:
        correct = answered and any(contains(seen, a) for a in gold.answers)
        f1 = max(token_f1(text, a) for a in gold.answers) if answered else 0.0
    source_hit = citation_hit = precision = None
    if gold.answerable and gold.source:
        from_gold = [c for c in cits if same_source(str(c.get("source", "")), gold.source)]
        source_hit = bool(from_gold)
        if gold.spans:
            good = [c for c in from_gold if hits_gold_span(gold, str(c["source"]), c["start"], c["end"])]
            citation_hit = bool(good)
            precision = len(good) / len(cits) if cits else 0.0
    t = out.get("timings") or {}
    return Scored(
        question=gold.question,
        status=str(out.get("status")),
        answered=answered,
        abstained_right=None if gold.answerable else not answered,
        correct=correct,
        f1=f1,
        source_hit=source_hit,
        citation_hit=citation_hit,
        citation_precision=precision,
        citations=len(cits),
        verified=sum(quote_is_exact(c) for c in cits) if verify else len(cits),
        latency_s=latency_s,
        completion_tokens=float(t.get("completion_tokens", 0.0)),
        generate_s=float(t.get("generate_s", 0.0)),
        prompt_tokens=float(t.get("prompt_tokens", 0.0)),
        first_token_s=float(t.get("first_token_s", 0.0)),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values.

    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 95)
    (2, 4)
    """
    if not values:
        return 0.0
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _mean(xs: Iterable[float | bool | None]) -> float | None:
    vals = [float(x) for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def summarize(rows: Sequence[Scored]) -> dict:
    """The aggregate report; a metric the gold data cannot support is ``None``."""
    answerable = [r for r in rows if r.abstained_right is None]
    unanswerable = [r for r in rows if r.abstained_right is not None]
    n_cit = sum(r.citations for r in rows)
    gen_s = sum(r.generate_s for r in rows)
    prompt_s = sum(r.first_token_s for r in rows)
    lat = [r.latency_s for r in rows]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "accuracy": _mean(r.correct for r in answerable),
        "f1": _mean(r.f1 for r in answerable),
        "source_hit": _mean(r.source_hit for r in answerable),
        "citation_hit": _mean(r.citation_hit for r in answerable),
        "citation_precision": _mean(r.citation_precision for r in answerable if r.citations),
        "quote_verified": sum(r.verified for r in rows) / n_cit if n_cit else None,
        "citations": n_cit,
        "answered": _mean(r.answered for r in answerable),
        "wrong_no_evidence": _mean(not r.answered for r in answerable) if answerable else None,
        "abstention": _mean(r.abstained_right for r in unanswerable),
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "gen_tokens_per_s": sum(r.completion_tokens for r in rows) / gen_s if gen_s else None,
        "prompt_tokens_per_s": sum(r.prompt_tokens for r in rows) / prompt_s if prompt_s else None,
    }


# --- the funnel: where an answerable question is lost ---------------------------------------

# In order: each stage but the side ones ("chunk@50", "answer") implies the one before it.
FUNNEL_STAGES = ("paper@50", "paper@10", "chunk", "chunk@50", "offered", "asked", "cited", "answer")
_CHAIN = ("paper@50", "paper@10", "chunk", "offered", "asked", "cited")

Located = tuple[str, int, int]  # (source path, start, end): a retrieved chunk or an offered sentence


def funnel(gold: Gold, ranked: Sequence[Located], k: int, offered: Sequence[Located], asked: bool,
           scored: Scored | None) -> dict[str, bool | None] | None:
    """One answerable question's way through the pipeline, stage by stage.

    ``ranked``: the retrieved chunks, best first (at least 50 where the corpus has them);
    ``k``: how many of them the configuration selects sentences from; ``offered``: the
    sentences shown to the model; ``asked``: the model was asked (no abstention gate stopped
    the question); ``scored``: the answer's ``score``. ``None`` when the gold data has no
    span (nothing to locate). Stages: the gold paper among the first 10 / 50 chunks; a chunk
    overlapping the gold span among the first ``k`` (the candidates) / 50; a gold sentence
    offered; offered and the model asked; a citation overlapping the gold span; the answer
    (or its quotes) holding a gold answer.

    >>> g = Gold("q", ("x",), "/p.txt", ((5, 6),))
    >>> s = score(g, {"status": "answered", "answer": "x", "citations": []}, 0.0, verify=False)
    >>> f = funnel(g, [("/q.txt", 0, 9), ("/p.txt", 0, 9)], 1, [], False, s)
    >>> [name for name, ok in f.items() if ok]
    ['paper@50', 'paper@10', 'chunk@50', 'answer']
    """
    if not gold.answerable or not gold.spans or not gold.source:
        return None
    src = gold.source
    from_gold = [same_source(r[0], src) for r in ranked]
    gold_chunk = [hits_gold_span(gold, *r) for r in ranked]
    return {
        "paper@50": any(from_gold[:50]),
        "paper@10": any(from_gold[:10]),
        "chunk": any(gold_chunk[:k]),
        "chunk@50": any(gold_chunk[:50]),
        "offered": any(hits_gold_span(gold, *o) for o in offered),
        "asked": asked and any(hits_gold_span(gold, *o) for o in offered),
        "cited": None if scored is None else bool(scored.citation_hit),
        "answer": None if scored is None else bool(scored.correct),
    }


def lost_at(stages: Mapping[str, bool | None]) -> str:
    """The first stage of the chain a question fails ("" = cited, or asked when there was no model run).

    >>> lost_at({"paper@50": True, "paper@10": True, "chunk": False})
    'chunk'
    """
    return next((s for s in _CHAIN if stages.get(s) is False or s not in stages), "")


def summarize_funnel(rows: Sequence[Mapping[str, bool | None] | None]) -> dict:
    """Share of questions reaching each stage (``None`` for a stage not measured), and how many
    are lost at each stage of the chain."""
    rows = [r for r in rows if r is not None]
    out: dict = {"questions": len(rows)}
    for s in FUNNEL_STAGES:
        vals = [r[s] for r in rows if r.get(s) is not None]
        out[s] = sum(vals) / len(rows) if vals and len(vals) == len(rows) else None
    lost = Counter(lost_at(r) for r in rows)
    out["lost_at"] = {s: lost.get(s, 0) for s in _CHAIN}
    return out


# --- `rag eval` files -----------------------------------------------------------------------


def read_eval_file(path: Path) -> list[Gold]:
    """A JSONL file of ``{"question", "answer"?, "source"?}``; a bad line names its number.

    ``answer`` may be a string or a list of acceptable strings; ``"answerable": false`` marks a
    question the documents should not answer (the right reply is no_evidence).
    """
    from .errors import UsageError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the eval file {path}: {getattr(e, 'strerror', None) or e}") from None
    golds = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}:{n}: not JSON ({e.msg}); each line must be one object") from None
        except RecursionError:  # json's decoder recurses once per nested array or object
            raise UsageError(f"{path}:{n}: the JSON is nested too deeply to read; each line must be one "
                             'flat object like {"question": "...", "answer": "..."}') from None
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise UsageError(f"{path}:{n}: cannot read the JSON ({e}); each line must be one object") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not obj["question"].strip():
            raise UsageError(f'{path}:{n}: each line needs "question": a non-empty string')
        answers = obj.get("answer", ())
        answers = (answers,) if isinstance(answers, str) else answers
        if not isinstance(answers, (list, tuple)) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise UsageError(f'{path}:{n}: "answer" must be a non-empty string or a list of them')
        source = obj.get("source")
        if source is not None and (not isinstance(source, str) or not source.strip()):
            raise UsageError(f'{path}:{n}: "source" must be a file name or path')
        answerable = obj.get("answerable", True)
        if not isinstance(answerable, bool):
            raise UsageError(f'{path}:{n}: "answerable" must be true or false')
        golds.append(Gold(obj["question"].strip(), tuple(answers), source, (), answerable))
    if not golds:
        raise UsageError(f"the eval file {path} holds no questions")
    return golds


# --- graded answers: the answer text against a pattern, a figure or a gold text -----------------
#
# bench/realfolders.py and bench/financebench_qa.py grade what a person reads: the answer text
# (citation markers dropped), not its quotes. Each question ends in one of four outcomes.

OUTCOMES = ("right", "wrong", "abstained_right", "abstained_wrong")


def answer_text(out: Mapping) -> str:
    """The answer of a ``rag ask --json`` object without its ``[n]`` markers, whitespace collapsed.

    >>> answer_text({"answer": "It is `\\\\r\\\\n` [1] on Windows [2]."})
    'It is `\\\\r\\\\n` on Windows.'
    """
    text = _MARKERS.sub(" ", str(out.get("answer") or ""))
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def matches(pattern: str, text: str) -> bool:
    """``pattern`` (a regular expression) found in ``text``, case-insensitive, ``.`` spanning lines.

    >>> matches(r"^(?!\\W*yes\\b).*explicitly enabled", "No: it needs to be explicitly enabled.")
    True
    >>> matches(r"^(?!\\W*yes\\b).*explicitly enabled", "Yes, once explicitly enabled.")
    False
    """
    return re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None


def cites(out: Mapping, sources: str | Sequence[str], pages: Iterable[int] | None = None) -> bool:
    """Some citation of ``out`` comes from one of ``sources`` (as ``same_source``) and, when
    ``pages`` is given, from one of those pages.

    >>> out = {"citations": [{"source": "/f/node/os.md", "page": None}, {"source": "/f/a.pdf", "page": 3}]}
    >>> cites(out, "node/os.md"), cites(out, ["x.md", "a.pdf"], [3]), cites(out, "a.pdf", [4])
    (True, True, False)
    """
    wanted = [sources] if isinstance(sources, str) else list(sources)
    keep = None if pages is None else set(pages)
    return any(any(same_source(str(c.get("source", "")), s) for s in wanted)
               and (keep is None or c.get("page") in keep) for c in out.get("citations") or [])


def outcome(answered: bool, answerable: bool, right: bool) -> str:
    """One of ``OUTCOMES``: an answer to an unanswerable question is wrong, whatever it says.

    >>> outcome(True, True, True), outcome(True, False, True), outcome(False, False, False), outcome(False, True, False)
    ('right', 'wrong', 'abstained_right', 'abstained_wrong')
    """
    if not answered:
        return "abstained_right" if not answerable else "abstained_wrong"
    return "right" if answerable and right else "wrong"


def outcome_rates(rows: Sequence[tuple[str, bool]]) -> dict:
    """Counts and shares of each outcome over ``(outcome, answerable)`` pairs; "wrong" split into
    answers to answerable and to unanswerable questions; right among the answerable ones.

    >>> r = outcome_rates([("right", True), ("wrong", False), ("abstained_right", False), ("abstained_wrong", True)])
    >>> r["questions"], r["wrong_rate"], r["wrong_unanswerable"], r["right_of_answerable"]
    (4, 0.25, 1, 0.5)
    """
    n = len(rows)
    counts = {o: sum(x == o for x, _ in rows) for o in OUTCOMES}
    answerable = sum(a for _, a in rows)
    out: dict = {"questions": n, "answerable": answerable, "unanswerable": n - answerable, **counts,
                 "wrong_answerable": sum(x == "wrong" and a for x, a in rows),
                 "wrong_unanswerable": sum(x == "wrong" and not a for x, a in rows)}
    out.update({f"{o}_rate": counts[o] / n if n else None for o in OUTCOMES})
    out["right_of_answerable"] = counts["right"] / answerable if answerable else None
    out["abstained_right_of_unanswerable"] = counts["abstained_right"] / (n - answerable) if n > answerable else None
    return out


@dataclass(frozen=True)
class Figure:
    """A number as written: its value (sign and parentheses applied, unit word not), the
    decimals written, a percent sign, and the unit word's factor (1.0 when there is none)."""

    value: float
    decimals: int
    percent: bool = False
    scale: float = 1.0


_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "millions": 1e6, "mn": 1e6, "mm": 1e6, "m": 1e6,
           "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12}
_FIGURE = re.compile(
    r"(?<![\w.])(?P<open>\()?(?P<sign>[-−–](?=\s*[$€£]?\s*\d))?\s*(?:US)?[$€£]?\s*(?P<sign2>[-−–])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?(?![\d,]*\.\d)\s*(?P<close>\))?"
    r"\s*(?P<pct>%|percent\b|per cent\b)?"
    r"\s*(?P<unit>thousand|millions?|billions?|trillion|bn|mn|mm|m|b|k)?(?![a-z])", re.IGNORECASE)


def figures(text: str) -> list[Figure]:
    """The numbers written in ``text``, with their sign, decimals, percent and unit word.

    >>> [(f.value, f.decimals, f.percent, f.scale) for f in figures("$1,577.00, (1,253) and -3.7%")]
    [(1577.0, 2, False, 1.0), (-1253.0, 0, False, 1.0), (-3.7, 1, True, 1.0)]
    >>> [(f.value, f.scale) for f in figures("$6.2 billion, 495 million, 12 months")]
    [(6.2, 1000000000.0), (495.0, 1000000.0), (12.0, 1.0)]
    """
    out = []
    for m in _FIGURE.finditer(text):
        value = float(m["int"].replace(",", "") + (m["dec"] or ""))
        negative = bool(m["sign"] or m["sign2"]) or bool(m["open"] and m["close"])
        unit = (m["unit"] or "").lower()
        out.append(Figure(-value if negative else value, len(m["dec"] or "") - 1 if m["dec"] else 0,
                          bool(m["pct"]), _SCALES.get(unit, 1.0)))
    return out


def _readings(f: Figure) -> list[tuple[float, int]]:
    """(value, decimals) a figure may stand for: as written, and with a unit word in thousands,
    millions or billions of the same thing ("1.577 billion" is 1577 in millions)."""
    out = [(f.value, f.decimals)]
    if f.scale != 1.0:
        for per in (1.0, 1e3, 1e6, 1e9):
            shift = round(math.log10(f.scale / per))
            out.append((f.value * f.scale / per, max(0, f.decimals - shift)))
    return out


def _rounds_to(a: float, a_dec: int, g: float, g_dec: int) -> bool:
    """``a`` is ``g`` at the gold's precision, or ``g`` rounded to the (coarser) precision the
    answer was written in, within 1% of it."""
    if abs(a - g) <= 0.5 * 10 ** -g_dec + 1e-9 * max(1.0, abs(g)):
        return True
    return a_dec < g_dec and abs(round(g, a_dec) - a) <= 1e-9 * max(1.0, abs(g)) and abs(a - g) <= 0.01 * abs(g)


def number_match(answer: str, gold: str) -> bool:
    """Whether ``answer`` states the first figure of ``gold``, allowing its formatting:
    thousands separators, currency signs, unit words (million, billion, ...: "1.577 billion"
    for a gold 1577 in millions), rounding to the gold's precision (or the gold rounded to a
    coarser precision the answer uses, within 1%), a percent as a fraction and back ("66%" for
    0.66), and a negative written with parentheses or the word "negative". A sign that differs
    is wrong.

    >>> number_match("Capital spending was $1,577 million [1].", "$1577.00")
    True
    >>> number_match("about $1.577 billion", "$1577.00"), number_match("$1.6 billion", "$1577.00")
    (True, False)
    >>> number_match("24.3", "24.26"), number_match("24.2", "24.26"), number_match("30.8%", "30.8%")
    (True, False, True)
    >>> number_match("CCC was (3.7) days", "-3.7"), number_match("3.7 days", "-3.7")
    (True, False)
    >>> number_match("a ratio of 66%", "0.66"), number_match("grew 0.308", "30.8%")
    (True, True)
    >>> number_match("in 2019 it was 11588", "$11588.00"), number_match("in 2019", "2,019")
    (True, True)
    """
    golds = figures(gold)
    if not golds:
        return False
    g = golds[0]
    negative_word = re.search(r"\bnegative\b|\bminus\b", answer, re.IGNORECASE) is not None
    gold_readings = _readings(g)
    for a in figures(answer):
        readings = list(_readings(a))
        if a.percent and not g.percent:
            readings.append((a.value / 100, a.decimals + 2))
        if g.percent and not a.percent and abs(a.value) < 1.5 and a.decimals:
            readings.append((a.value * 100, max(0, a.decimals - 2)))
        for val, dec in readings:
            if negative_word and g.value < 0 < val:
                val = -val
            if any(_rounds_to(val, dec, gv, gd) for gv, gd in gold_readings):
                return True
    return False


def polarity(text: str) -> bool | None:
    """True for a text that opens with "yes", False for "no", None otherwise.

    >>> polarity("Yes. It decreased."), polarity("  no, the ferry does not run"), polarity("Not really")
    (True, False, None)
    """
    m = re.match(r"\W*(yes|no)\b", text, re.IGNORECASE)
    return None if m is None else m.group(1).lower() == "yes"


_STOP = frozenset(
    "a an the of in on at to for by from with and or as is are was were be been its it this that these those "
    "which who what how did does do has have had than their there over per about into during between also "
    "amongst among other others s they could would will can yes no".split())


def _first_clause(text: str) -> str:
    """Up to the first sentence end, colon or parenthesis: where a gold answer starts explaining."""
    return re.split(r"(?<=[A-Za-z0-9)%])\.(?:\s|$)|:|\(", text.strip(), maxsplit=1)[0]


def _fy(text: str) -> str:
    return re.sub(r"\bFY\s+(\d{2,4})\b", r"FY\1", text)


def _names_and_terms(text: str, asked: set[str]) -> tuple[list[str], list[str]]:
    terms: dict[str, None] = {}
    names: dict[str, None] = {}
    for raw in _fy(text).split():
        for w in normalize(raw).split():
            s = _stem(w)
            if s in _STOP or s in asked:
                continue
            terms.setdefault(s, None)
            if raw.lstrip("\"'(~$&")[:1].isupper():
                names.setdefault(s, None)
    return list(names), list(terms)


def _asked(question: str) -> set[str]:
    return {_stem(w) for w in normalize(_fy(question)).split()}


def key_terms(gold: str, question: str = "") -> tuple[list[str], list[str]]:
    """(names, terms) of ``gold``'s first clause that the question does not already say:
    ``terms`` its content words (normalised, stop words and a plural "s" dropped), ``names``
    those of them written with a capital letter (a segment, region or company name).

    >>> key_terms("Corporate. Its net revenue was -$473 million.", "Which segment had the lowest net revenue?")
    (['corporate'], ['corporate'])
    >>> key_terms("The consumer segment shrunk by 0.9% organically.", "Which segment has dragged down growth?")
    ([], ['consumer', 'shrunk', '09', 'organically'])
    >>> key_terms("MGM China experienced the worst topline performance", "Which region had the worst topline for MGM?")
    (['china'], ['china', 'experienced', 'performance'])
    """
    return _names_and_terms(_first_clause(gold), _asked(question))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def covers_terms(answer: str, names: Sequence[str], terms: Sequence[str], question: str = "",
                 share: float = 0.5) -> bool:
    """When the gold has ``names``: the answer holds every one of them, and at least ``share``
    of the names the answer writes (those the question does not say) are the gold's, so that
    a list of every segment does not pass for the one asked about. Without names: at least
    ``share`` of ``terms`` occur in the answer (as ``key_terms`` normalises them).

    >>> covers_terms("Corporate had the lowest [1].", ["corporate"], ["corporate"])
    True
    >>> covers_terms("CIB", ["corporate"], ["corporate"]), covers_terms("0.9% lower", [], ["consumer", "09"])
    (False, True)
    >>> covers_terms("Consumer & Community Banking, Corporate & Investment Bank", ["corporate"], ["corporate"])
    False
    """
    have = {_stem(w) for w in normalize(answer).split()}
    if names:
        written, _ = _names_and_terms(answer, _asked(question))
        ours = sum(n in names for n in written)
        return all(n in have for n in names) and ours >= share * len(written)
    return bool(terms) and sum(t in have for t in terms) >= share * len(terms)


def grade_gold_text(answer: str, gold: str, question: str = "") -> tuple[bool, str]:
    """(right, rule) of a free answer against a FinanceBench-style gold answer, by one rule:

    - a gold that is one figure ("$1577.00", "24.26", "1.9%"): ``number_match``;
    - a gold opening with "Yes" or "No": the answer opens with the same word (``polarity``);
    - any other gold: the answer holds every name of the gold's first clause (``key_terms``:
      capitalised words the question does not say) and half of the names it writes are those,
      or, when the gold has no name, at least half of its content words (a figure is one of
      them, as written).

    >>> grade_gold_text("$1,577 million", "$1577.00")
    (True, 'figure')
    >>> grade_gold_text("No, it was not.", "Yes. It decreased.")
    (False, 'yes/no')
    >>> grade_gold_text("Corporate had the lowest net revenue.", "Corporate. Its net revenue was -$473 million.",
    ...                 "Which of JPM's business segments had the lowest net revenue in 2021 Q1?")
    (True, 'key terms')
    """
    g = gold.strip()
    if re.fullmatch(r"[-−(]?\s*[$]?\s*[-−]?[\d,]+(?:\.\d+)?\s*\)?\s*%?", g):
        return number_match(answer, g), "figure"
    want = polarity(g)
    if want is not None:
        return polarity(answer) is want, "yes/no"
    return covers_terms(answer, *key_terms(g, question), question=question), "key terms"
