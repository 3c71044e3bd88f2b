"""Hits -> evidence sentences -> constrained generation -> verified citations -> ``Answer``.

How a quote stays exact: the model never writes one. It sees the best few stored
sentences (each with the sentence after it: one contiguous run) numbered 1..n and, under a
llama.cpp grammar, may only answer with a JSON object ``{"evidence": [ids], "answer": "..."}``
whose ids are drawn from 1..n. The program then copies each chosen run from the index (the
page text from its first sentence's start to its last one's end) and ``verify`` re-reads its source file and
checks ``page_text[start:end] == quote`` (and the file's sha256) before the citation is shown.

No evidence: when the best chunk is not similar enough to the question, the model is not
even asked; when the model picks no sentence, or none of its picks survives the checks,
the answer is ``no_evidence``.

This module does not retrieve (``retrieval``) and does not print (``cli``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .budget import Count, fit, item_text
from .chunking import name_words
from .display import UNSAFE
from .evidence import Evidence, select_evidence
from .grounding import answer_support, coverage, negated_claim, repeats_question, support, yes_no
from .injection import defuse_template_tokens
from .language import asks_in_another_language
from .models.embedders import Embedder
from .models.generators import Generator
from .terms import focus, missing_terms, other_version, specific_terms
from .types import Answer, Citation, Hit
from .verify import Verifier


@dataclass(frozen=True)
class AnswerParams:
    k: int = 10  # chunks retrieved; their sentences compete for the evidence slots
    # items shown to the model, each a run of stored sentences: the ranked sentence and the
    # ``context_after`` sentences after it in its chunk, cited as one contiguous quote
    # (``evidence.run_of``). The answer often follows a sentence that restates the question.
    # Tuning questions (bench/qa.py --offset 0, 200 + 40 claims; qa-windows-tune.json,
    # qa-next1n4-tune.json): 5 single sentences: cited 0.515, p50 2.55 s; 5 runs of 2: 0.585,
    # 3.65 s; 5 runs of 3 (one before too): 0.600, 4.48 s; 4 runs of 2: 0.585, 3.08 s (chosen:
    # the p50 budget is 3.5 s). 10 single sentences showed the gold one more but the model cited
    # it less (qa-evidence10-tune.json).
    n_evidence: int = 4
    context_before: int = 0
    context_after: int = 1
    lexical_weight: float = 0.5  # sentence score = cosine + this * lexical overlap (``evidence``)
    max_citations: int = 3  # sentences it may pick
    # best chunk's cosine below this: no evidence, model not asked. A cheap pre-filter only: the
    # sentence gate decides (0.30 turned away answerable questions whose best chunk was 0.26-0.30 and
    # best sentence above 0.50; 0.20 gates no SciFact claim more on tuning or held-out: bench/qa.py)
    min_similarity: float = 0.20
    # best offered sentence's cosine below this: no evidence, model not asked. Tuned on COVID-QA
    # questions and SciFact claims outside the reported bench sample: keeps 92% of answerable
    # questions, turns away 70% of unanswerable ones (0.45: 95% / 40%).
    min_sentence_similarity: float = 0.50
    min_evidence_similarity: float = 0.20  # a picked sentence below this is dropped
    # shorter spans are not offered; spans under ``short_words`` words are ranked joined with their
    # heading ("os.EOL: `\r\n` on Windows", ``evidence``). Real folders' 46 answerable tune questions
    # (gold answer text among the offered items, no generation; bench/results/realfolders-evidence-tune.txt):
    # 4/0 (before): 36, 4 gated; 4/6: 37, 2 gated; 2/6: 38, 1 gated; 3/6: 39, 2 gated (chosen).
    min_words: int = 3
    short_words: int = 6
    # prompt tokens at most, chat template included: the items are cut to fit (``budget.fit``).
    # Real folders' prompts ran to 1,185 tokens (issue 25); the model reads ~40-100 tokens/s here.
    max_prompt_tokens: int = 600
    max_answer_chars: int = 400
    max_tokens: int = 200  # generation budget
    # an answer its quotes do not back is replaced by them only when they hold more than this share
    # of the question's content words, else no_evidence. Realfolders tune split, the 13 replaced
    # answers of main's run (bench/results/realfolders-20261202.json): 0.5 turns away 4 of the 6
    # wrong and 1 of the 7 right (the held-out split was not looked at for it).
    min_replaced_coverage: float = 0.5
    # a backed answer whose quotes (with headings and file names) hold less than this share of the
    # question's content words is no_evidence: "2" from "The path to a Python executable. 2." for
    # "Which Python version do I need to use system trust stores with pip?" (25%). Realfolders tune
    # split (bench/results/realfolders-20261203-terms-fix.json): the backed answers below 0.5 were
    # 2 wrong and no right one; at 0.5 one right and one wrong (the held-out split was not looked at).
    min_backed_coverage: float = 0.45


NO_EVIDENCE_TEXT = "The indexed documents do not contain an answer to this question."

SYSTEM_PROMPT = (
    "You answer questions about the user's documents using only the numbered sentences "
    "you are given. Reply with JSON only."
)


OWN_LANGUAGE = "Write the answer in the language of the question, not in English."


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[dict]:
    """The chat the model sees: each item with its heading in parentheses ("[2] (Year 2017
    results) Sales in ..."), so it can tell one year's figure from another's. Chat-template
    tokens in the items or the question are broken (``injection.defuse_template_tokens``), in
    this text only: quotes are copied from the index. A question not in English is answered in
    its own language (the grammar and the verification of the quotes are the same); an English
    question's prompt is what it always was."""
    lines = [defuse_template_tokens(item_text(i, ev)) for i, ev in enumerate(evidence, start=1)]
    user = (
        "Sentences:\n" + "\n".join(lines) + f"\n\nQuestion: {defuse_template_tokens(question)}\n\n"
        "Answer the question in one short sentence using only the sentences above, then give the "
        "numbers of the sentences that support your answer. If the sentences do not answer the "
        'question, reply {"answer": "", "evidence": []}.'
    )
    if asks_in_another_language(question):
        user += " " + OWN_LANGUAGE
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


TEMPLATE_TOKENS = 16  # what a chat template adds around two messages (Qwen2.5's: 13)


def fit_prompt(question: str, evidence: Sequence[Evidence], count: Count, max_tokens: int) -> list[Evidence]:
    """The items cut (``budget.fit``) so that the whole prompt takes at most ``max_tokens``
    by ``count``; the fixed text (instructions, question, template) is counted first."""
    fixed = sum(count(m["content"]) for m in build_messages(question, [])) + TEMPLATE_TOKENS
    # each item also costs its line break; the fixed text already holds the items' header line
    return fit(evidence, question, max_tokens - fixed - len(evidence), count)


def grammar(n: int, max_citations: int, max_chars: int) -> str:
    """GBNF for ``{"answer": "...", "evidence": [ids]}``, ids drawn from 1..n.

    The answer comes first (so it can be streamed) and the model must then back it with
    1..max_citations sentence numbers, or give the explicit empty reply for "no answer".

    >>> print(grammar(2, 2, 10).splitlines()[3])
    id ::= "1" | "2"
    """
    ids = " | ".join(f'"{i}"' for i in range(1, n + 1))
    more = ' (", " id)?' * (max_citations - 1)
    return "\n".join([
        r'root ::= answered | "{\"answer\": \"\", \"evidence\": []}"',
        r'answered ::= "{\"answer\": \"" char text "\", \"evidence\": [" id' + more + ' "]}"',
        "text ::= " + f"char{{0,{max_chars}}}",
        f"id ::= {ids}",
        # no control, C1 or bidi override character: the streamed answer is shown as it comes
        r'char ::= [^"\\\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069] | "\\" ["\\/bfnrt]',
    ])


# a citation marker: "[2]", "[1, 3]", "【1】", "(2)"; ids start at 1 ("[0, 0, 0]" is a value)
_MARKER = re.compile(r"\s*(\[\s*[1-9]\d*(\s*[,;-]\s*[1-9]\d*)*\s*\]|【[1-9]\d*】|\(\s*[1-9]\d*\s*\))")
_CODE = re.compile(r"(`[^`]*`)")  # text in backticks is copied, never a marker


def clean_answer_text(text: str) -> str:
    """Drop citation-like markers (the model's, or a document's shown as an answer) and the
    characters ``display.UNSAFE`` names (controls, C1, bidi overrides, ...) after whitespace
    is collapsed: only the program adds markers, and the answer a ``--json`` consumer prints
    must not drive a terminal or read differently from what it is.

    >>> clean_answer_text("It is 4 bits [2]. Yes [1, 3].\x1b[2J\u202e\x9b1m\\nOK")
    'It is 4 bits. Yes.[2J1m OK'
    >>> clean_answer_text("On Windows it is always `[1, 2]` or [0, 0, 0] [1].")
    'On Windows it is always `[1, 2]` or [0, 0, 0].'
    """
    parts = _CODE.split(UNSAFE.sub("", " ".join(text.split())))
    return " ".join("".join(p if p.startswith("`") else _MARKER.sub("", p) for p in parts).split())


def parse_reply(text: str, n: int) -> tuple[list[int], str]:
    """Evidence ids (1-based, deduplicated, in range) and answer text from the model's JSON."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        m = re.search(r"\{.*\}", text, re.S)
        try:
            obj = json.loads(m.group(0)) if m else {}
        except json.JSONDecodeError:
            obj = {}
    evidence = obj.get("evidence") if isinstance(obj, dict) else None
    ids: list[int] = []
    for x in evidence if isinstance(evidence, list) else []:  # only a list of whole numbers counts
        if isinstance(x, str) and x.strip().isdigit():
            x = int(x)
        if isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= n and x not in ids:
            ids.append(x)
    answer = obj.get("answer", "") if isinstance(obj, dict) else ""
    return ids, answer if isinstance(answer, str) else ""


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal_escapes(answer: str, texts: Sequence[str]) -> str:
    r"""The answer with the line breaks and tabs its JSON decoding made put back as the written
    ``\r\n`` the model copied, when the sentences it read write them so ("`\r\n` on Windows"
    in Node's os.md: the model's JSON "\r\n" decodes to a real CR LF).

    >>> crlf = chr(13) + chr(10)  # what json.loads makes of the model's "\r\n"
    >>> print(literal_escapes(f"`{crlf}` on Windows", [r"* `\r\n` on Windows"]))
    `\r\n` on Windows
    >>> literal_escapes(f"two{crlf}lines", ["no escapes here"]) == f"two{crlf}lines"
    True
    """
    written = [c for c, lit in _ESCAPES.items() if c in answer and any(lit in t for t in texts)]
    for c in written:
        answer = answer.replace(c, _ESCAPES[c])
    return answer


def to_citation(i: int, ev: Evidence) -> Citation:
    """The citation of an evidence sentence, before ``verify`` checks it and says where it is:
    the one place a citation's source, page and encoding are read off the ``Origin``.

    >>> from ragcli.types import Origin, Span
    >>> c = to_citation(1, Evidence(Span(2, 4, 9, 3, 3, "Quote"), Origin("/d/a.docx", "h", "docx", ""), 0.5))
    >>> c.source, c.page, c.encoding, c.quote
    ('/d/a.docx', None, 'utf-8', 'Quote')
    """
    s, o = ev.span, ev.origin
    return Citation(i, o.path, o.sha256, o.page_of(s.page), s.line_start, s.line_end,
                    s.start, s.end, s.text, o.text_encoding, context=ev.context)


def repair_picks(answer: str, picked: list[Evidence], evidence: Sequence[Evidence], limit: int) -> list[Evidence]:
    """Put first the offered sentence that contains the answer, when the model picked worse.

    Small models often give the right answer but the wrong sentence numbers. A sentence
    that holds at least 3/4 of the answer's words and numbers, more than any sentence the
    model picked, is cited first. An answer no sentence supports is left alone here
    (``grounding`` replaces its text later). Only picks are reordered: an empty pick
    list (the model's "no answer") stays empty.
    """
    if not picked or not answer:
        return picked
    scored = [(support(answer, ev.span.text), -i, ev) for i, ev in enumerate(evidence)]
    best_score, _, best = max(scored, key=lambda t: t[:2])
    picked_best = max(support(answer, ev.span.text) for ev in picked)
    if best_score >= 0.75 and best_score > picked_best:
        return ([best] + [ev for ev in picked if ev is not best])[:limit]
    return picked


def drop_unsupported_picks(answer: str, picked: list[Evidence]) -> list[Evidence]:
    """Drop picks that hold less than half as much of the answer as the best pick does.

    Small models tend to cite "[1, 2, 3]" whatever holds the answer; a sentence that shares
    nothing with it is no citation. Only when some pick holds at least half of the answer's
    words: an answer like "Yes" or one typed in other words keeps every pick.

    >>> from ragcli.types import Origin, Span
    >>> ev = [Evidence(Span(1, 0, 1, 1, 1, t), Origin("f", "h"), 0.5) for t in ("2 weeks later", "74% identity")]
    >>> [e.span.text for e in drop_unsupported_picks("less than 2 weeks", ev)]
    ['2 weeks later']
    >>> len(drop_unsupported_picks("Yes", ev))
    2
    """
    if len(picked) < 2 or not answer:
        return picked
    shares = [support(answer, ev.span.text) for ev in picked]
    best = max(shares)
    if best < 0.5:
        return picked
    return [ev for ev, share in zip(picked, shares, strict=True) if share >= best / 2]


def quoted(c: Citation) -> str:
    """A quote shown in the answer's place, read with its heading as beside a citation.

    >>> quoted(Citation(1, "f", "h", None, 1, 1, 0, 3, "Add 3type.", context="man-db 2.11.1"))
    '(man-db 2.11.1) Add 3type.'
    """
    return f"({c.context}) {c.quote}" if c.context else c.quote


_VERSION = re.compile(r"v?\d+(?:\.\d+)+")


def names_not_cited(question: str, citations: Sequence[Citation], hits: Sequence[Hit]) -> list[str]:
    """The names of the question ("Neurology", "Tesla": capitalised words, ``terms``) and its
    versions ("3.0", "2.40") that no cited document holds in its retrieved passages, headings or
    path: the answer is then about something else (the board memo's table for "the Neurology
    division", which it lacks; uvicorn's "Python :: 3.12" for "Which Python version does
    requests 3.0 require?")."""
    names = [t for t in specific_terms(question) if t[:1].isupper() and not any(ch.isdigit() for ch in t)
             or _VERSION.fullmatch(t)]
    if not names:
        return []
    cited = {c.source for c in citations}
    texts = [t for h in hits if h.chunk.source in cited for t in (h.chunk.text, h.chunk.heading)]
    missing = set(missing_terms(question, texts, [path_words(src) for src in cited]))
    return [t for t in names if t in missing]


def contradicted_yes(question: str, answer: str, picked: list[Evidence],
                     evidence: Sequence[Evidence]) -> tuple[list[Evidence], str]:
    """``(picked, why)``: a "Yes" that an offered passage at least as close to the question as
    the model's picks contradicts (``grounding.negated_claim``) is cited with that passage
    instead, and ``why`` says so; else ``(picked, "")``. The model read "its shims aren't
    enabled by default" (0.92) and cited a sentence about ``--force`` (0.64) for its "Yes"."""
    if yes_no(answer) != "yes" or not picked:
        return picked, ""
    closest = max(ev.similarity for ev in picked)
    contra = [(ev, neg) for ev in evidence if ev.similarity >= closest
              and (neg := negated_claim(question, " ".join(ev.span.text.split())))]
    if not contra:
        return picked, ""
    ev, neg = max(contra, key=lambda x: x[0].similarity)
    return [ev], f'the answer says yes, the passage closest to the question says "{neg}"'


def with_markers(text: str, citations: Sequence[Citation]) -> str:
    """The answer with its citation markers; no text: the quotes themselves, each marked.

    >>> c = Citation(1, "f", "h", None, 1, 1, 0, 3, "Yes.")
    >>> with_markers("It is.", [c]), with_markers("", [c])
    ('It is [1].', 'Yes. [1]')
    """
    if not text:  # a document's own "[7]" must not pass for a citation marker
        return " ".join(f"{clean_answer_text(quoted(c))} [{c.id}]" for c in citations)
    markers = "".join(f"[{c.id}]" for c in citations)
    if text.endswith((".", "!", "?")):
        return f"{text[:-1]} {markers}{text[-1]}"
    return f"{text} {markers}"


def no_evidence(question: str, model: str, embedder: str, timings: dict, reason: str,
                warnings: Sequence[str] = ()) -> Answer:
    return Answer(question, NO_EVIDENCE_TEXT, "no_evidence", (), model, embedder, timings, reason,
                  support="none", warnings=tuple(warnings))


def lacking_terms(question: str, hits: Sequence[Hit]) -> str:
    """Why the folder does not answer a question that names what no retrieved passage, heading or
    file name holds ("Tesla", "2.40", "2021"); "" when every specific term is found (``terms``).
    On the realfolders tune split this turned away 8 of 10 unanswerable questions and no
    answerable one (bench/results/realfolders-ground-tune.json)."""
    texts = [t for h in hits for t in (h.chunk.text, h.chunk.heading)]
    missing = missing_terms(question, texts, [name_words(h.chunk.source) for h in hits])
    if not missing:
        return ""
    return "the documents found do not mention " + ", ".join(f'"{t}"' for t in missing)


def path_words(path: str) -> str:
    """The last three parts of a document's path as words, versions kept whole: what names it
    to a person ("git RelNotes 2.39.2", "pypi requests 2.34.2 METADATA").

    >>> path_words("/data/docs/git/RelNotes/2.39.2.txt"), path_words("pypi/requests-2.34.2-METADATA.txt")
    ('git RelNotes 2.39.2', 'pypi requests 2.34.2 METADATA')
    """
    parts = path.replace("\\", "/").strip("/").split("/")[-3:]
    parts[-1] = re.sub(r"\.[A-Za-z][\w]{0,5}$", "", parts[-1])  # the extension, not "2.39.2"
    return " ".join(w for p in parts for w in re.split(r"[^\w.]+|_|(?<!\d)\.|\.(?!\d)", p) if w)


def focused(question: str, hits: Sequence[Hit]) -> list[Hit]:
    """``hits`` from the documents the question is about (``terms.focus``): of the retrieved
    documents, those whose passages, headings and file name hold the most of the question's
    specific terms. "Northwind's gross margin" is then not answered from a Corning table
    that happened to rank higher, nor "Git 2.39.2" from the 2.39.4 notes. A document whose name
    gives the question's subject another version ("requests 2.34.2" for "requests 3.0") is
    not about the question at all."""
    docs: dict[str, tuple[list[str], str]] = {}
    for h in hits:
        texts, _ = docs.setdefault(h.chunk.source, ([], path_words(h.chunk.source)))
        texts += [h.chunk.text, h.chunk.heading]
    docs = {src: doc for src, doc in docs.items() if not other_version(question, doc[1])}
    keep = focus(question, docs)
    return [h for h in hits if h.chunk.source in keep]


def offer(question: str, question_vec, hits: Sequence[Hit], embedder: Embedder,
          params: AnswerParams = AnswerParams()) -> tuple[list[Evidence], str]:
    """The sentences shown to the model and, when a gate stops the question first, why.

    Returns ``(evidence, "")`` when the model is to be asked, ``(evidence, reason)`` when it is
    not (``evidence`` may then be empty: the best chunk was too far to select from). ``rag ask``
    and bench/qa.py's funnel both call this, so the funnel measures what ``ask`` does.
    """
    if not hits or max(h.similarity for h in hits) < params.min_similarity:
        best = max((h.similarity for h in hits), default=0.0)
        return [], f"no passage is close to the question (best similarity {best:.2f} < {params.min_similarity})"
    about = focused(question, hits)
    if not about:
        names = sorted({other_version(question, path_words(h.chunk.source)) for h in hits})
        return [], f"the documents found are about {', '.join(names)}, not the version the question names"
    evidence = select_evidence(question, question_vec, about, embedder, n=params.n_evidence,
                               min_words=params.min_words, lexical_weight=params.lexical_weight,
                               before=params.context_before, after=params.context_after,
                               short_words=params.short_words)
    if not evidence:
        return [], "the retrieved passages hold no citable sentence"
    closest = max(ev.similarity for ev in evidence)
    if closest < params.min_sentence_similarity:
        return evidence, (f"no sentence is close to the question (best similarity {closest:.2f} "
                          f"< {params.min_sentence_similarity})")
    return evidence, ""


class AnswerStream:
    """Feeds the answer text to ``on_text`` while the model's JSON is still being generated."""

    _PREFIX = re.compile(r'"answer":\s*"')

    def __init__(self, on_text: Callable[[str], None] | None) -> None:
        self.on_text = on_text
        self.buf = ""
        self.sent = 0
        self.started = -1

    def feed(self, piece: str) -> None:
        if not self.on_text:
            return
        self.buf += piece
        if self.started < 0:
            m = self._PREFIX.search(self.buf)
            if not m:
                return
            self.started = self.sent = m.end()
        end = len(self.buf)
        while end > self.sent and self.buf[end - 1] == "\\":  # wait for the escaped char
            end -= 1
        q = self.buf.find('"', self.sent)
        while q > 0 and self.buf[q - 1] == "\\":
            q = self.buf.find('"', q + 1)
        if q >= 0:
            end = min(end, q)
        if end > self.sent:
            chunk = self.buf[self.sent : end]
            try:
                chunk = json.loads(f'"{chunk}"')
            except json.JSONDecodeError:
                pass
            self.on_text(_MARKER.sub("", chunk))
            self.sent = end


def answer_question(
    question: str,
    hits: Sequence[Hit],
    question_vec,
    embedder: Embedder,
    load_generator: Callable[[], Generator],
    params: AnswerParams = AnswerParams(),
    timings: dict | None = None,
    on_text: Callable[[str], None] | None = None,
    model_name: str = "",
    verifier: Verifier | None = None,
    on_status: Callable[[str], None] | None = None,
) -> Answer:
    """The whole of ``rag ask`` after retrieval.

    ``load_generator`` gives the model, called only when there is evidence to show it (an
    off-topic question costs no model load); ``model_name`` names it in the answer. ``verifier``
    carries the index's page copies for files not readable here (``verify.stored_pages``).
    ``on_status`` hears what the wait is for ("reading 6 passages…") just before the model is
    loaded and reads them.
    """
    timings = dict(timings or {})
    model = model_name
    emb = embedder.name
    t0 = time.perf_counter()
    evidence, why_not = offer(question, question_vec, hits, embedder, params)
    why_not = why_not or lacking_terms(question, hits)
    timings["select_s"] = time.perf_counter() - t0
    if why_not:
        return no_evidence(question, model, emb, timings, why_not)
    stream = AnswerStream(on_text)
    if on_status is not None:
        on_status(f"reading {len(evidence)} passage{'' if len(evidence) == 1 else 's'}…")
    t0 = time.perf_counter()
    generator = load_generator()
    timings["models_s"] = time.perf_counter() - t0  # model registry and model file checks
    t0 = time.perf_counter()
    load_before = generator.load_s
    evidence = fit_prompt(question, evidence, generator.count_tokens, params.max_prompt_tokens)  # may load the model
    load_in_fit = generator.load_s - load_before
    timings["budget_s"] = time.perf_counter() - t0 - load_in_fit
    if not evidence:
        return no_evidence(question, model, emb, timings, f"no passage fits the prompt budget of "
                           f"{params.max_prompt_tokens} tokens (AnswerParams.max_prompt_tokens)")
    gen = generator.generate(
        build_messages(question, evidence),
        grammar=grammar(len(evidence), params.max_citations, params.max_answer_chars),
        max_tokens=params.max_tokens,
        on_text=stream.feed,
    )
    timings.update(llm_load_s=gen.load_s + load_in_fit, first_token_s=gen.prompt_s, generate_s=gen.gen_s,
                   prompt_tokens=float(gen.prompt_tokens), completion_tokens=float(gen.completion_tokens))
    ids, text = parse_reply(gen.text, len(evidence))
    text = literal_escapes(text, [ev.span.text for ev in evidence])
    picked = [evidence[i - 1] for i in ids if evidence[i - 1].similarity >= params.min_evidence_similarity]
    picked = repair_picks(clean_answer_text(text), picked, evidence, params.max_citations)
    picked = drop_unsupported_picks(clean_answer_text(text), picked)
    picked, against = contradicted_yes(question, clean_answer_text(text), picked, evidence)
    if not picked:
        why = "the model found no sentence that answers the question" if not ids else \
            "the sentences the model picked are not related to the question"
        return no_evidence(question, model, emb, timings, why)
    t0 = time.perf_counter()
    verifier = verifier or Verifier()
    citations: list[Citation] = []
    problems: list[str] = []
    for ev in picked:
        c, err = verifier.check(to_citation(len(citations) + 1, ev), ev.origin.kind)
        if c is None:
            problems.append(err)
        else:
            citations.append(c)
    timings["verify_s"] = time.perf_counter() - t0
    if not citations:
        return no_evidence(question, model, emb, timings, "; ".join(problems), problems)  # e.g. files changed
    lacking = names_not_cited(question, citations, hits)
    if lacking:
        return no_evidence(question, model, emb, timings, "the quoted documents do not mention "
                           + ", ".join(f'"{t}"' for t in lacking), problems)
    text = clean_answer_text(text)
    quotes = [c.quote for c in citations]
    missing, per_quote = answer_support(question, text, quotes, [c.context for c in citations])
    citations = [replace(c, support=sup) for c, sup in zip(citations, per_quote, strict=True)]
    answer_sup = "unsupported" if missing else "supported"
    if against:  # the closest passage says no: it, not the model's "Yes", is what is shown
        missing, answer_sup = [against, *missing], "unsupported"
    covered = coverage(question, [*(quoted(c) for c in citations), *(path_words(c.source) for c in citations)])
    if not missing and yes_no(text) and covered <= params.min_replaced_coverage:
        # a bare "Yes"/"No" beside a quote about something else ("The last Python 2-compatible
        # version was h11 0.11.x." for "Does h11 have dependencies outside the standard library?")
        missing = ["its quotes do not speak to what the question asks"]
        answer_sup = "unsupported"
    if not missing and covered < params.min_backed_coverage:
        return no_evidence(question, model, emb, timings,
                           f"the quotes hold only {covered:.0%} of the question's words: they are about "
                           "something else", problems)
    replace_why = "; ".join(missing) if missing else \
        "it only repeats the question" if repeats_question(text, question) else ""
    contradicted = any(m.startswith("the answer says yes, the") for m in missing)  # a quote that says no
    if replace_why and covered <= params.min_replaced_coverage and not contradicted:
        # quotes (with their headings and file names, as a person reads them) that hold half the
        # question's words or less are no answer to show in its place
        return no_evidence(question, model, emb, timings,
                           f"the answer is not backed by its quotes ({replace_why}), and the quotes hold only "
                           f"{covered:.0%} of the question's words", problems)
    if missing:  # the model's own words say what its quotes do not: show the quotes instead.
        # Measured on the realfolders tune split: the quotes hold the answer for 7 of the 9
        # replaced answers; no_evidence would have made those 7 wrongly abstained.
        problems.append("answer text replaced by its quotes (not backed by them: " + "; ".join(missing) + ")")
        text = ""
    elif repeats_question(text, question):  # "K" for "What does the K stand for?": the quotes say more
        problems.append("answer text replaced by its quotes (it only repeats the question)")
        answer_sup, missing, text = "partial", ["it only repeats the question"], ""
    # quotes shown in the answer's place read with their heading, as beside a citation
    plain = text or " ".join(clean_answer_text(quoted(c)) for c in citations)
    text = with_markers(text, citations)
    return Answer(question, text, "answered", tuple(citations), model, emb, timings,
                  "; ".join(problems), answer_text=plain, support=answer_sup,
                  support_missing=tuple(missing), warnings=tuple(problems))
