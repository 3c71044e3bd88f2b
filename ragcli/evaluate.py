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
    """``gold`` is an absolute path, or a relative path / file name the cited path ends with."""
    if Path(gold).is_absolute():
        return Path(cited) == Path(gold)
    return cited == gold or cited.endswith("/" + gold.lstrip("./"))


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
