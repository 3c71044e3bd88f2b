"""The metrics `rag eval` and bench/ share, checked on hand-made cases, and `rag eval`'s input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import resolve_settings
from ragcli.evaluate import (
    Gold,
    answer_text,
    cites,
    contains,
    figures,
    grade_gold_text,
    key_terms,
    matches,
    ndcg_at_k,
    normalize,
    number_match,
    outcome,
    outcome_rates,
    percentile,
    polarity,
    quote_is_exact,
    read_eval_file,
    recall_at_k,
    same_source,
    score,
    summarize,
    token_f1,
)
from ragcli.models.embedders import HashEmbedder
from ragcli.models.generators import ScriptedGenerator

from .conftest import rag


def test_normalize_and_contains() -> None:
    assert normalize("The  Answer, is: [2] 42!") == "answer is 42"
    assert contains("It is the k-quant family [1].", "K-quant family")
    assert not contains("It is the k-quant family.", "medium")
    assert not contains("anything", "")  # an empty gold answer never counts


def test_token_f1() -> None:
    assert token_f1("0.5 MiB per token", "0.5 MiB per token") == 1.0
    assert token_f1("nothing alike", "0.5 MiB") == 0.0
    assert token_f1("0.5 MiB", "exactly 0.5 MiB per token") == pytest.approx(2 * 1 * 0.4 / 1.4)  # P 1, R 2/5


def test_ndcg_and_recall() -> None:
    rel = {"a": 1.0, "b": 1.0}
    assert ndcg_at_k(["a", "b", "c"], rel) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "a"], {"a": 1.0}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["c"], rel) == 0.0
    assert ndcg_at_k(["x"] * 10 + ["a"], {"a": 1.0}, 10) == 0.0  # rank 11 is outside @10
    assert recall_at_k(["a", "c"], rel, 10) == 0.5
    assert recall_at_k(["c", "a"], rel, 1) == 0.0


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 95) == 95


def test_same_source() -> None:
    assert same_source("/docs/guide.pdf", "guide.pdf")
    assert same_source("/docs/a/guide.pdf", "a/guide.pdf")
    assert not same_source("/docs/myguide.pdf", "guide.pdf")
    assert same_source("/docs/guide.pdf", "/docs/guide.pdf")
    assert not same_source("/other/guide.pdf", "/docs/guide.pdf")


def _cit(path: Path, start: int, end: int, quote: str | None = None) -> dict:
    text = path.read_text(encoding="utf-8")
    return {"id": 1, "source": str(path), "page": None, "start": start, "end": end,
            "quote": text[start:end] if quote is None else quote, "encoding": "utf-8"}


def test_score_citation_hit_precision_and_verification(tmp_path: Path) -> None:
    doc = tmp_path / "paper.txt"
    doc.write_text("Intro sentence. The incubation period is 5.2 days. Other text here.", encoding="utf-8")
    gold_start = doc.read_text().index("5.2 days")
    gold = Gold("How long is the incubation period?", ("5.2 days",), str(doc), ((gold_start, gold_start + 8),))
    good = _cit(doc, 16, 50)
    off = _cit(doc, 0, 15)
    forged = _cit(doc, 0, 15, quote="The incubation period is 9 days.")
    out = {"status": "answered", "answer": "5.2 days [1]", "citations": [good, off, forged],
           "timings": {"completion_tokens": 10, "generate_s": 0.5}}
    s = score(gold, out, 1.0)
    assert s.correct and s.f1 == 1.0
    assert s.source_hit and s.citation_hit
    assert s.citation_precision == pytest.approx(1 / 3)
    assert s.verified == 2  # the forged quote is caught by re-reading the file
    summary = summarize([s])
    assert summary["quote_verified"] == pytest.approx(2 / 3)
    assert summary["gen_tokens_per_s"] == pytest.approx(20.0)


def test_score_no_evidence_and_unanswerable() -> None:
    none = {"status": "no_evidence", "answer": "The indexed documents do not contain ...", "citations": []}
    s = score(Gold("q", ("x",), "a.txt"), none, 0.1)
    assert s.correct is False and s.f1 == 0.0 and s.source_hit is False
    u = score(Gold("q2", answerable=False), none, 0.2)
    assert u.abstained_right is True and u.correct is None
    wrong = score(Gold("q3", answerable=False), {"status": "answered", "answer": "y", "citations": []}, 0.3)
    summary = summarize([s, u, wrong])
    assert summary["abstention"] == 0.5
    assert summary["wrong_no_evidence"] == 1.0
    assert summary["accuracy"] == 0.0
    assert summary["citation_hit"] is None  # no gold spans: the metric is not claimed


def test_quote_is_exact_handles_pdfs_and_bad_input(tmp_path: Path) -> None:
    from .conftest import SAMPLE

    pdf = SAMPLE / "context_windows_and_kv_cache.pdf"
    from pypdf import PdfReader

    text = PdfReader(pdf).pages[1].extract_text()
    assert quote_is_exact({"source": str(pdf), "page": 2, "start": 0, "end": 20, "quote": text[:20]})
    assert not quote_is_exact({"source": str(pdf), "page": 99, "start": 0, "end": 20, "quote": text[:20]})
    assert not quote_is_exact({"source": str(tmp_path / "gone.txt"), "page": None, "start": 0, "end": 1, "quote": "x"})


def test_read_eval_file(tmp_path: Path) -> None:
    f = tmp_path / "qs.jsonl"
    f.write_text('{"question": "What is Q4?", "answer": "4-bit", "source": "quant.md"}\n\n'
                 '{"question": "Who?", "answer": ["a", "b"]}\n'
                 '{"question": "Weather on Mars?", "answerable": false}\n', encoding="utf-8")
    golds = read_eval_file(f)
    assert [g.question for g in golds] == ["What is Q4?", "Who?", "Weather on Mars?"]
    assert golds[0].answers == ("4-bit",) and golds[0].source == "quant.md"
    assert golds[1].answers == ("a", "b") and golds[2].answerable is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "ok"}\nnot json\n', ":2: not JSON"),
        ('{"answer": "x"}\n', ':1: each line needs "question"'),
        ('{"question": "q", "answer": 42}\n', ':1: "answer" must be'),
        ('{"question": "q", "source": ""}\n', ':1: "source" must be'),
        ("\n\n", "holds no questions"),
    ],
)
def test_bad_eval_files_name_the_line_and_exit_2(tmp_path: Path, hash_models: Path, content: str,
                                                 message: str) -> None:
    f = tmp_path / "qs.jsonl"
    f.write_text(content, encoding="utf-8")
    r = rag("eval", str(f), "--models", str(hash_models), "--index", str(tmp_path / "i"))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_evaluate_runs_every_question_with_one_model_load(tmp_path: Path) -> None:
    doc = tmp_path / "kv.txt"
    doc.write_text("The KV cache.\nOne token of Llama 2 7B takes 0.5 MiB of KV cache.\n", encoding="utf-8")
    settings = resolve_settings(index=tmp_path / "index")
    emb = HashEmbedder()
    pipeline.ingest([str(doc)], settings, embedder=emb)
    gen = ScriptedGenerator('{"answer": "0.5 MiB", "evidence": [1]}')
    golds = [Gold("How much KV cache does one token of Llama 2 7B take?", ("0.5 MiB",), "kv.txt"),
             Gold("", ("x",))]  # an empty question: scored as an error, the run goes on
    rows, summary = pipeline.evaluate(golds, settings, embedder=emb, generator=gen)
    assert [r.status for r in rows] == ["answered", "error"]
    assert rows[0].correct and rows[0].source_hit and rows[0].verified == 1
    assert summary["accuracy"] == 0.5 and summary["quote_verified"] == 1.0
    json.dumps(summary)  # the --json output is serialisable


def test_funnel_stages_and_where_a_question_is_lost(tmp_path: Path) -> None:
    from ragcli.evaluate import funnel, lost_at, summarize_funnel

    gold = Gold("q", ("5.2 days",), "/d/paper.txt", ((100, 108),))
    other = ("/d/other.txt", 0, 500)
    gold_chunk, same_paper = ("/d/paper.txt", 50, 200), ("/d/paper.txt", 300, 400)
    answered = {"status": "answered", "answer": "5.2 days",
                "citations": [{"source": "/d/paper.txt", "start": 90, "end": 110, "quote": "x"}]}
    s_hit = score(gold, answered, 0.0, verify=False)
    s_none = score(gold, {"status": "no_evidence", "answer": "", "citations": []}, 0.0, verify=False)

    full = funnel(gold, [gold_chunk], 10, [("/d/paper.txt", 95, 120)], True, s_hit)
    assert all(full.values()) and lost_at(full) == ""
    # the paper only at rank 11: in the top 50, not the top 10
    deep = funnel(gold, [other] * 10 + [same_paper, gold_chunk], 10, [], True, s_none)
    assert (deep["paper@50"], deep["paper@10"], deep["chunk"], deep["chunk@50"]) == (True, False, False, True)
    assert lost_at(deep) == "paper@10"
    # offered, but an abstention gate kept the model from seeing it
    gated = funnel(gold, [gold_chunk], 10, [("/d/paper.txt", 95, 120)], False, s_none)
    assert gated["offered"] and not gated["asked"] and lost_at(gated) == "asked"
    # the gold paper's chunk, but not the gold span's
    wrong_chunk = funnel(gold, [same_paper], 10, [], True, s_none)
    assert wrong_chunk["paper@10"] and not wrong_chunk["chunk"] and lost_at(wrong_chunk) == "chunk"
    assert funnel(Gold("q", answerable=False), [gold_chunk], 10, [], True, s_none) is None
    assert funnel(Gold("q", ("x",), "/d/paper.txt"), [gold_chunk], 10, [], True, s_none) is None  # no span

    summary = summarize_funnel([full, deep, gated, wrong_chunk, None])
    assert summary["questions"] == 4
    assert summary["paper@50"] == 1.0 and summary["paper@10"] == 0.75 and summary["offered"] == 0.5
    assert summary["cited"] == 0.25
    assert summary["lost_at"] == {"paper@50": 0, "paper@10": 1, "chunk": 1, "offered": 0, "asked": 1, "cited": 0}


def test_found_at_filing_and_page() -> None:
    from ragcli.evaluate import found_at

    ranked = [("/fb/3M_2022_10K.pdf", 60), ("/fb/3M_2018_10K.pdf", 12), ("/fb/3M_2018_10K.pdf", 60)]
    assert found_at(ranked, "3M_2018_10K.pdf", None, 2)
    assert not found_at(ranked, "3M_2018_10K.pdf", None, 1)
    assert not found_at(ranked, "3M_2018_10K.pdf", [60], 2)  # page 60 of the wrong filing does not count
    assert found_at(ranked, "3M_2018_10K.pdf", [59, 60], 3)
    assert not found_at(ranked, "M_2018_10K.pdf", None, 3)  # a whole file name, not a suffix


# --- graded answers (bench/realfolders.py, bench/financebench_qa.py) --------------------------


@pytest.mark.parametrize("answer, gold", [
    ("Capital expenditure was $1,577 million [1].", "$1577.00"),
    ("$1.577 billion", "$1577.00"),
    ("1577", "$1577.00"),
    ("USD 11,588 million", "$11588.00"),
    ("The ratio is 24.3.", "24.26"),  # the answer rounds coarser, within 1%
    ("a DPO of 93.86 days", "93.86"),
    ("revenue grew 30.8%", "30.8%"),
    ("grew 30.8 percent", "30.8%"),
    ("0.308 growth", "30.8%"),  # a fraction for a percent
    ("ROA of 1%", "0.01"),  # a percent for a fraction
    ("CCC was (3.7) days", "-3.7"),
    ("CCC of -3.7", "-3.7"),
    ("a negative 3.7 days", "-3.7"),
    ("Sales totaled $6.2 billion", "$6,200 million"),
    ("Net sales were $ 280,522", "280,522"),
])
def test_number_match_accepts_formatting_units_and_rounding(answer: str, gold: str) -> None:
    assert number_match(answer, gold)


@pytest.mark.parametrize("answer, gold", [
    ("$1.6 billion", "$1577.00"),  # coarser and 1.4% off
    ("1,578", "$1577.00"),
    ("24.2", "24.26"),
    ("3.7 days", "-3.7"),  # the sign differs
    ("revenue grew 3.08%", "30.8%"),
    ("FY2019 and 2018", "$12645.00"),  # years are not the figure
    ("version 2.39.2", "2.39"),  # a version is not a number
    ("no figure at all", "1.9%"),
    ("$141,366", "280,522"),
])
def test_number_match_rejects_other_figures(answer: str, gold: str) -> None:
    assert not number_match(answer, gold)


def test_figures_reads_sign_unit_and_percent() -> None:
    got = [(f.value, f.decimals, f.percent, f.scale) for f in figures("(1,253) and -$473 million, 61.4% and 2.39.2")]
    assert got == [(-1253.0, 0, False, 1.0), (-473.0, 0, False, 1e6), (61.4, 1, True, 1.0)]


def test_answer_text_matches_and_polarity() -> None:
    out = {"answer": "No [1], Corepack currently needs to be explicitly enabled [2]."}
    text = answer_text(out)
    assert text == "No, Corepack currently needs to be explicitly enabled."
    assert polarity(text) is False and polarity("Yes.") is True and polarity("Nothing") is None
    not_yes = r"^(?!\W*yes\b).*explicitly enabled"
    assert matches(not_yes, text) and not matches(not_yes, "Yes, it is explicitly enabled.")
    assert matches(r"\\r\\n", answer_text({"answer": "`\\r\\n` [1] on Windows"}))


def test_cites_and_outcomes() -> None:
    out = {"status": "answered", "citations": [{"source": "/x/finance/filings/AMAZON_2019_10K.pdf", "page": 24}]}
    assert cites(out, "AMAZON_2019_10K.pdf") and cites(out, ["a.pdf", "AMAZON_2019_10K.pdf"], [24])
    assert not cites(out, "AMAZON_2019_10K.pdf", [25]) and not cites(out, "ZON_2019_10K.pdf")
    assert [outcome(True, True, True), outcome(True, True, False), outcome(True, False, True),
            outcome(False, False, False), outcome(False, True, False)] == [
        "right", "wrong", "wrong", "abstained_right", "abstained_wrong"]
    r = outcome_rates([("right", True), ("right", True), ("wrong", True), ("wrong", False),
                       ("abstained_right", False), ("abstained_wrong", True)])
    assert (r["questions"], r["answerable"], r["right"], r["wrong_answerable"], r["wrong_unanswerable"]) == (
        6, 4, 2, 1, 1)
    assert r["right_of_answerable"] == 0.5 and r["abstained_right_of_unanswerable"] == 0.5


@pytest.mark.parametrize("answer, gold, question, right", [
    ("$1,577 million", "$1577.00", "What is the FY2018 capital expenditure?", True),
    ("No, the margin fell.", "Yes. It decreased.", "Did the risk decrease?", False),
    ("Yes [1]. VaR fell.", "Yes. It decreased.", "Did the risk decrease?", True),
    ("Corporate, with -$473 million.", "Corporate. Its net revenue was -$473 million.",
     "Which of JPM's business segments had the lowest net revenue in 2021 Q1?", True),
    ("Asset & Wealth Management", "Corporate. Its net revenue was -$473 million.",
     "Which of JPM's business segments had the lowest net revenue in 2021 Q1?", False),
    ("Consumer & Community Banking Corporate & Investment Bank", "Corporate. Its net revenue was -$473 million.",
     "Which of JPM's business segments had the lowest net revenue in 2021 Q1?", False),  # a list is no answer
    ("The Corporate & Investment Bank (CIB), $3,725 million", "Corporate & Investment Bank. Its net income was $3725 "
     "million.", "In 2022 Q2, which of JPM's business segments had the highest net income?", True),
    ("Las Vegas Strip Resorts", "Las Vegas resorts contributed ~90% of company level EBITDAR during FY2022.",
     "Which region had the Highest EBITDAR Contribution for MGM during FY2022?", True),
    ("Trillium and Array", "Trillium, Array, and Therachon", "What are three main companies acquired by Pfizer?",
     False),
    ("The consumer segment, down 0.9%", "The consumer segment shrunk by 0.9% organically.",
     "If we exclude the impact of M&A, which segment has dragged down 3M's overall growth in 2022?", True),
])
def test_grade_gold_text_one_rule_per_kind_of_gold(answer: str, gold: str, question: str, right: bool) -> None:
    assert grade_gold_text(answer, gold, question)[0] is right


def test_key_terms_drop_what_the_question_says() -> None:
    names, terms = key_terms("Boeing forecasts an increase in the production rates for the 737, 777X and 787.",
                             "What production rate changes is Boeing forecasting for FY2023?")
    assert names == [] and terms[:2] == ["forecast", "increase"] and "boeing" not in terms
