"""Evidence selection: which stored sentences the model is shown, and in what order."""

from __future__ import annotations

import numpy as np

from ragcli.embedders import HashEmbedder
from ragcli.evidence import content_words, lexical_scores, select_evidence
from ragcli.types import Chunk, Hit, Span


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
    return Hit(chunk, 1.0 / rank, rank, 0.6)


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
    assert next(e for e in ev if " ".join(e.span.text.split()) == same).source == "/d/a.md"


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
