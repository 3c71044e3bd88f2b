"""Evidence selection: which stored sentences the model is shown, and in what order."""

from __future__ import annotations

import numpy as np

from ragcli.evidence import content_words, lexical_scores, select_evidence
from ragcli.models.embedders import HashEmbedder
from ragcli.types import Chunk, Hit, Origin, Span


class FixedEmbedder(HashEmbedder):
    """Every sentence gets the same cosine with the question: only the lexical term ranks."""

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def _hit(sentences: list[str], rank: int = 1, heading: str = "", source: str = "/d/a.md") -> Hit:
    text, spans, pos = "", [], 0
    for s in sentences:
        spans.append(Span(1, pos, pos + len(s), 1, 1, s))
        text += s + " "
        pos = len(text)
    chunk = Chunk(f"k{rank}", source, "0" * 64, 1, 0, len(text) - 1, 1, 1, text[:-1], tuple(spans), heading=heading)
    return Hit(chunk, 1.0 / rank, rank, 0.6, Origin(source, chunk.sha256))


def test_content_words_drop_stop_words_and_case() -> None:
    assert content_words("What is the CCL3L1 copy number?") == {"ccl3l1", "copy", "number"}


def test_lexical_scores_weigh_rare_question_words_up() -> None:
    q = "What is the copy number of CCL3L1 in infants?"
    sents = ["The copy number varied among the cohort.", "High copy numbers of CCL3L1 protect infants.",
             "The copy number was measured twice.", "Nothing relevant is said here at all."]
    scores = lexical_scores(q, sents)
    assert scores[1] == 1.0 and scores[3] == 0.0
    assert scores[0] == scores[2] < scores[1]


def test_lexical_scores_without_overlap_are_zero() -> None:
    assert lexical_scores("purple elephants", ["one sentence here", "another one"]) == [0.0, 0.0]
    assert lexical_scores("anything", []) == []


def test_the_sentence_with_the_rare_terms_is_offered_first() -> None:
    hit = _hit(["Many viruses cause fever in some patients.", "The HAdV-55 white blood cell count was low.",
                "Severe cases were seen in young adults."])
    ev = select_evidence("What is the white blood cell count in HAdV-55 cases?", np.eye(256, dtype=np.float32)[0],
                         [hit], FixedEmbedder(), n=2)
    assert [e.span.text for e in ev][0] == "The HAdV-55 white blood cell count was low."
    assert ev[0].similarity == 1.0 and ev[0].score > ev[1].score
    # without the lexical term the order is the document's (a stable sort of equal cosines)
    ev0 = select_evidence("What is the white blood cell count in HAdV-55 cases?",
                          np.eye(256, dtype=np.float32)[0], [hit], FixedEmbedder(), n=2, lexical_weight=0.0)
    assert ev0[0].span.text == "Many viruses cause fever in some patients."


def test_short_spans_headings_and_duplicates_are_not_offered() -> None:
    heading = "## Results of the measured value trial"  # long enough to pass as a sentence
    a = _hit([heading, "Too short.", "The measured value was forty two units."], rank=1,
             heading="Doc — ## Results of the measured value trial")
    b = _hit([heading, "Too short.", "The measured value was forty two units."], rank=2,
             heading="Doc — ## Results of the measured value trial")
    ev = select_evidence("measured value", np.eye(256, dtype=np.float32)[0], [a, b], FixedEmbedder(), n=5)
    assert [e.span.text for e in ev] == ["The measured value was forty two units."]


def test_no_candidates_no_evidence() -> None:
    assert select_evidence("q", np.zeros(256, dtype=np.float32), [], FixedEmbedder()) == []


def test_a_sentence_repeated_in_the_corpus_is_offered_once() -> None:
    same = "In panel (c), the blue dots are the cumulative total."
    a = _hit(["Other words entirely are here.", same], rank=1, source="/d/a.md")
    b = _hit([same.replace(" the ", "  the "), "Yet another sentence of text."], rank=2, source="/d/b.md")
    ev = select_evidence("blue dots", np.eye(256, dtype=np.float32)[0], [a, b], FixedEmbedder(), n=5)
    texts = [" ".join(e.span.text.split()) for e in ev]
    assert texts.count(same) == 1
    assert next(e for e in ev if " ".join(e.span.text.split()) == same).origin.path == "/d/a.md"


def test_a_run_is_the_sentence_and_its_neighbour_copied_from_the_page() -> None:
    hit = _hit(["The trial asked how long the shedding lasts.", "Shedding lasted 14 days in most cases.",
                "Nothing else of use is here."])
    ev = select_evidence("how long does the shedding last", np.eye(256, dtype=np.float32)[0], [hit],
                         FixedEmbedder(), n=1, after=1)
    assert len(ev) == 1
    s = ev[0].span
    assert s.text == "The trial asked how long the shedding lasts. Shedding lasted 14 days in most cases."
    assert hit.chunk.text[s.start - hit.chunk.start : s.end - hit.chunk.start] == s.text  # exact, not joined


def test_runs_that_touch_are_one_item_and_the_next_ranked_fills_the_slot() -> None:
    a = _hit(["Alpha beta gamma delta one.", "Alpha beta gamma delta two.", "Filler words with nothing more.",
              "Still more filler words here.", "Alpha beta sentence five here."], rank=1)
    ev = select_evidence("alpha beta gamma delta", np.eye(256, dtype=np.float32)[0], [a], FixedEmbedder(),
                         n=2, after=1)
    # the two best sentences are neighbours: one run over them (and the next), then the third best
    assert [e.span.text for e in ev] == [
        "Alpha beta gamma delta one. Alpha beta gamma delta two. Filler words with nothing more.",
        "Alpha beta sentence five here."]


def test_a_run_does_not_take_the_chunks_heading() -> None:
    heading = "## Results of the measured value trial"
    a = _hit([heading, "The measured value was forty two units.", "It was stable."], rank=1,
             heading="Doc — ## Results of the measured value trial")
    ev = select_evidence("measured value", np.eye(256, dtype=np.float32)[0], [a], FixedEmbedder(), n=1,
                         before=1, after=1)
    assert [e.span.text for e in ev] == ["The measured value was forty two units. It was stable."]


# --- the prompt budget (ragcli.budget, answer.fit_prompt) -------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ragcli.answer import build_messages, fit_prompt  # noqa: E402
from ragcli.budget import estimate_tokens, fit, item_text  # noqa: E402
from ragcli.evidence import Evidence  # noqa: E402


def _ev(page: str, start: int, end: int, context: str = "") -> Evidence:
    line = page.count("\n", 0, start) + 1
    s = Span(1, start, end, line, page.count("\n", 0, max(end - 1, start)) + 1, page[start:end])
    return Evidence(s, Origin("/d/a.txt", "0" * 64), 0.6, context=context)


def _words(text: str) -> int:  # a tokenizer double: one token per word or mark
    return len(text.split())


def test_a_1000_token_table_line_is_cut_to_its_rows_that_match_and_stays_exact() -> None:
    rows = [f"Segment {i} | {1000 + i} | {2000 + i} | {3000 + i}" for i in range(150)]
    rows[97] = "Consolidated net sales | 280,522 | 232,887 | 177,866"
    page = "Intro line.\n" + "\n".join(rows) + "\nTail."
    ev = _ev(page, 12, len(page) - 6, context="Net sales (in millions)")
    assert estimate_tokens(item_text(1, ev)) > 1000
    out = fit([ev], "What were consolidated net sales?", 120, estimate_tokens)
    assert len(out) == 1
    s = out[0].span
    assert page[s.start : s.end] == s.text and "Consolidated net sales | 280,522" in s.text
    assert estimate_tokens(item_text(1, out[0])) <= 120
    assert s.line_start == page.count("\n", 0, s.start) + 1 and s.line_end == page.count("\n", 0, s.end - 1) + 1
    assert out[0].context == "Net sales (in millions)"


def test_a_run_is_cut_at_sentence_bounds_keeping_the_sentence_that_matches() -> None:
    page = "Corepack needs to be explicitly enabled. " + "Other words follow here in plenty. " * 20
    ev = _ev(page, 0, len(page) - 1)
    out = fit([ev], "Is Corepack enabled by default?", 20, _words)
    assert out[0].span.text.startswith("Corepack needs to be explicitly enabled.")
    assert out[0].span.text.endswith(".") and _words(item_text(1, out[0])) <= 20


def test_short_items_leave_their_share_to_long_ones_and_nothing_is_cut_under_budget() -> None:
    page = "Short one here. " + "Long sentence words " * 60 + "end."
    short, long = _ev(page, 0, 15), _ev(page, 16, len(page))
    assert fit([short, long], "q", 10_000, _words) == [short, long]
    out = fit([short, long], "q", 100, _words)
    assert out[0] == short and sum(_words(item_text(i, e)) for i, e in enumerate(out, 1)) <= 100
    assert _words(item_text(2, out[1])) > 50  # got the short item's unused share


def test_items_are_dropped_last_first_when_no_share_is_big_enough() -> None:
    page = " ".join(f"w{i}" for i in range(400))
    evs = [_ev(page, 0, 200), _ev(page, 201, 400), _ev(page, 401, 600)]
    out = fit(evs, "q", 40, _words)
    assert len(out) == 2 and out[0].span.start == 0 and 201 <= out[1].span.start < 401
    assert fit(evs, "q", 5, _words) == []


def test_the_whole_prompt_fits_the_budget() -> None:
    page = ("Row value 12,345,678 and 9,876,543 in the table. " * 80).strip()
    evs = [_ev(page, 0, 900), _ev(page, 901, 1800), _ev(page, 1801, 2700), _ev(page, 2701, len(page))]
    q = "What is the row value?"
    out = fit_prompt(q, evs, estimate_tokens, 600)
    total = sum(estimate_tokens(m["content"]) for m in build_messages(q, out)) + 16
    assert out and total <= 600


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=1500),
       st.integers(1, 300), st.text(max_size=40))
def test_cut_items_are_always_exact_sub_spans_of_their_page(page: str, budget: int, question: str) -> None:
    page = "x" + page + "\r\nend"
    ev = _ev(page, 1, len(page))
    for e in fit([ev], question, budget, estimate_tokens):
        s = e.span
        assert page[s.start : s.end] == s.text and ev.span.start <= s.start <= s.end <= ev.span.end
        assert estimate_tokens(item_text(1, e)) <= budget
        assert s.line_start == page.count("\n", 0, s.start) + 1
