"""End to end with the REAL default embedder (all-MiniLM-L6-v2) and the REAL default GGUF
over sample_corpus/: answers cite the right file, every quote is verified against the
file exactly as the JSON contract states, off-topic questions exit 4.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import resolve_settings
from ragcli.loaders import page_text_from_file

from .conftest import ROOT, SAMPLE, rag

pytestmark = pytest.mark.slow

QA = json.loads((ROOT / "tests" / "fixtures" / "sample_qa.json").read_text())
ANSWERABLE = [q for q in QA if not q.get("off_topic")]
OFF_TOPIC = [q for q in QA if q.get("off_topic")]
VERIFY_TOOL = ROOT.parent / "shared" / "tools" / "verify-citations"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(docs dir, index dir) ingested once with the real default embedder."""
    base = tmp_path_factory.mktemp("e2e")
    docs = base / "docs"
    shutil.copytree(SAMPLE, docs)
    index = base / "index"
    r = rag("ingest", str(docs), "--index", str(index), "--json")
    assert r.returncode == 0, r.stderr.decode()
    assert len(json.loads(r.stdout)["added"]) == 9
    return docs, index


@pytest.fixture(scope="module")
def models(corpus):
    """Embedder and generator loaded once for the in-process questions."""
    settings = resolve_settings(index=corpus[1])
    with pipeline.open_index(settings) as st:
        emb = pipeline.embedder_for_index(st, settings, None)
    return settings, emb, pipeline.load_generator(settings)


def check_citation(c: dict) -> None:
    """The contract, independently of ragcli's own check."""
    text = page_text_from_file(c["source"], c["page"], c.get("encoding") or "utf-8")
    assert text[c["start"] : c["end"]] == c["quote"], c
    assert text.count("\n", 0, c["start"]) + 1 == c["line_start"]
    if Path(c["source"]).suffix == ".pdf":
        from pypdf import PdfReader

        assert PdfReader(c["source"]).pages[c["page"] - 1].extract_text()[c["start"] : c["end"]] == c["quote"]
    elif c["extraction"] == "text":  # a .docx or .pptx is a zip: its recipe's text was checked above
        assert open(c["source"], encoding="utf-8", newline="").read()[c["start"] : c["end"]] == c["quote"]


def test_answers_cite_the_right_file_with_verified_quotes(models, corpus) -> None:
    settings, emb, gen = models
    right_file = 0
    answered = 0
    for item in ANSWERABLE[:12]:
        ans = pipeline.ask(item["question"], settings, embedder=emb, generator=gen)
        out = ans.to_json()
        if ans.status != "answered":
            continue
        answered += 1
        assert out["citations"], out
        for c in out["citations"]:
            check_citation(c)
            assert f"[{c['id']}]" in out["answer"]
        if any(Path(c["source"]).name == item["source"] for c in out["citations"]):
            right_file += 1
    assert answered >= 10, f"only {answered}/12 answered"
    assert right_file >= 9, f"only {right_file}/12 cite the right file"


def test_cli_ask_json_passes_the_independent_verifier(corpus) -> None:
    _, index = corpus
    r = rag("ask", "How much KV cache memory does one token take in Llama 2 7B?", "--json", "--index", str(index))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    assert out["status"] == "answered" and out["citations"]
    assert any(c["source"].endswith(".pdf") and c["page"] for c in out["citations"])
    for c in out["citations"]:
        check_citation(c)  # the quote is exactly the file's text: a context never leaks into it
        assert c["support"] in ("supported", "partial", "unsupported")
    assert out["timings"]["prompt_tokens"] <= 600  # AnswerParams.max_prompt_tokens
    assert "[" not in out["answer_text"] and out["answer_text"]  # the answer a script shows, no markers
    assert out["support"]["status"] in ("supported", "unsupported", "partial") and isinstance(out["warnings"], list)
    if VERIFY_TOOL.exists():
        v = subprocess.run([sys.executable, str(VERIFY_TOOL)], input=r.stdout, capture_output=True)
        assert v.returncode == 0, v.stderr.decode()


def test_cli_human_output_and_stdin(corpus) -> None:
    _, index = corpus
    r = rag("ask", "--index", str(index), stdin="What does the K in Q4_K_M stand for?\n")
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "Sources:" in out and "[1] " in out and "quantization_and_gguf.md" in out
    assert "\x1b[" not in out  # no terminal control codes when stdout is not a terminal


@pytest.mark.parametrize("item", OFF_TOPIC[:3], ids=lambda q: q["question"][:30])
def test_off_topic_questions_exit_4(corpus, item) -> None:
    _, index = corpus
    r = rag("ask", item["question"], "--json", "--index", str(index))
    assert r.returncode == 4, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["status"] == "no_evidence" and out["citations"] == []
    assert out["reason"] and out["support"]["status"] == "none"  # a script can say why


def test_a_question_naming_what_the_folder_lacks_exits_4_with_the_term(corpus) -> None:
    _, index = corpus  # the corpus covers Llama 2 7B's KV cache; no "Llama 9 900B" anywhere
    r = rag("ask", "How much KV cache memory does one token take in Llama 9 900B?", "--json", "--index", str(index))
    assert r.returncode == 4, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["status"] == "no_evidence" and '"900B"' in out["reason"]


def test_rag_eval_on_the_sample_corpus(corpus, tmp_path) -> None:
    _, index = corpus
    qs = tmp_path / "qs.jsonl"
    items = [{"question": q["question"], "answer": q["answer_contains"], "source": q["source"]} for q in ANSWERABLE[:3]]
    items.append({"question": OFF_TOPIC[0]["question"], "answerable": False})
    qs.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    r = rag("eval", str(qs), "--json", "--index", str(index))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    s = out["summary"]
    assert s["questions"] == 4 and s["answerable"] == 3 and s["unanswerable"] == 1
    assert s["quote_verified"] == 1.0
    assert s["source_hit"] >= 2 / 3
    assert s["abstention"] == 1.0
    human = rag("eval", str(qs), "--index", str(index))
    assert human.returncode == 0 and "quotes verified:    100%" in human.stdout.decode()
