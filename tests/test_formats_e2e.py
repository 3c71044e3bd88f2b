"""`rag ingest` of a folder with one real file of every format, then one question per format:
each answer cites a verified quote from the right file, and says where it is (slide, chapter,
paragraph, cell, OCR). Fast: the hashing embedder and a model double that picks the sentence
holding the answer. Slow (marked): the real embedder and the default GGUF, through `rag ask`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.answer import AnswerParams
from ragcli.cli import _cited_where
from ragcli.config import resolve_settings
from ragcli.loaders import ocr
from ragcli.models.embedders import HashEmbedder
from ragcli.models.generators import ScriptedGenerator
from ragcli.verify import check_json

from .conftest import ROOT, rag
from .tools import formats

EMB = HashEmbedder()
OPEN = AnswerParams(min_similarity=0.0, min_sentence_similarity=0.0, min_evidence_similarity=0.0)
SINGLE = replace(OPEN, context_after=0)  # the fact's own sentence, so its place can be pinned to one line
FACTS = {**formats.FACTS, **({"pdf-ocr": formats.OCR_FACT} if ocr.available() else {})}
WHERE = {  # what the human output says about where the quote is
    "docx": r'lighthouse\.docx ¶\d+ l\.\d+', "pptx": r'osprey\.pptx slide 2 "Quarterly results" l\.\d+',
    "epub": r'glass\.epub ch\.3 "The Glassmaker" l\.\d+', "odt": r"orchard\.odt ¶3 l\.5", "odp": r"ferry\.odp slide 2 l\.3",
    "eml": r"budget\.eml l\.7", "eml-pdf": r"budget\.eml#storks\.pdf p\.1 l\.1", "ipynb": r"training\.ipynb cell 1 l\.3",
    "html": r"tram\.html l\.3", "pdf-aes": r"plums\.pdf p\.2 l\.1", "pdf-ocr": r"valve-scan\.pdf p\.1 l\.\d-3 \(OCR\)",
}


def oracle(fact: formats.Fact):
    key = " ".join(fact.sentence.split()[:4])

    def reply(messages, grammar) -> str:
        lines = messages[-1]["content"].splitlines()
        n = next((i for i, ln in enumerate(ln for ln in lines if re.match(r"\[\d+\] ", ln)) if key in ln), None)
        return json.dumps({"answer": "", "evidence": [n + 1]}) if n is not None else '{"answer": "", "evidence": []}'

    return reply


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("formats") / "docs"
    formats.write_all(folder, ocr=ocr.available())
    return folder


def test_every_format_answers_its_question_with_a_verified_quote(corpus: Path, tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "index")
    report = pipeline.ingest([str(corpus)], settings, embedder=EMB)
    assert not report.failed, report.failed
    assert str(corpus / "budget.eml#storks.pdf") in report.added
    for kind, fact in FACTS.items():
        for params in (OPEN, SINGLE):  # the default run of sentences, then the fact's sentence alone
            ans = pipeline.ask(fact.question, settings, embedder=EMB, generator=ScriptedGenerator(oracle(fact)),
                               params=params, k=20)
            assert ans.status == "answered", (kind, ans.reason)
            c = ans.citations[0]
            assert c.source == str(corpus / fact.name) and " ".join(fact.sentence.split()[:4]) in c.quote, kind
            assert check_json(c.to_json()) is None  # verified again from the JSON alone
        assert re.fullmatch(r".*" + WHERE[kind], _cited_where(c)), (kind, _cited_where(c))
        assert c.to_json()["extraction"] == {"pdf-ocr": "ocr", "eml-pdf": "pypdf", "pdf-aes": "pypdf"}.get(
            kind, {"docx": "python-docx", "pptx": "python-pptx", "epub": "ebooklib", "odt": "odfpy", "odp": "odfpy",
                   "eml": "email", "ipynb": "json", "html": "inscriptis"}.get(kind))


def test_attachments_follow_their_mail_on_reingest(corpus: Path, tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "index")
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "m.eml").write_bytes(formats.eml_bytes())
    assert pipeline.ingest([str(mail)], settings, embedder=EMB).added == (str(mail / "m.eml"), str(mail / "m.eml#storks.pdf"))
    again = pipeline.ingest([str(mail)], settings, embedder=EMB)
    assert again.unchanged == (str(mail / "m.eml"),) and again.removed == ()
    (mail / "m.eml").write_bytes(formats.eml_bytes("The budget meeting is cancelled."))
    changed = pipeline.ingest([str(mail)], settings, embedder=EMB)
    assert changed.updated == (str(mail / "m.eml"), str(mail / "m.eml#storks.pdf")) and changed.removed == ()
    (mail / "m.eml").unlink()
    assert pipeline.ingest([str(mail)], settings, embedder=EMB).removed == (str(mail / "m.eml"), str(mail / "m.eml#storks.pdf"))


@pytest.mark.slow
def test_real_models_answer_a_question_from_every_format(corpus: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "index")
    r = rag("ingest", str(corpus), "--index", index)
    assert r.returncode == 0, r.stderr.decode()
    verify_tool = ROOT.parent / "shared" / "tools" / "verify-citations"
    missed = []
    for kind, fact in FACTS.items():
        r = rag("ask", fact.question, "--index", index, "--json")
        out = json.loads(r.stdout)
        cited = [c for c in out["citations"] if c["source"] == str(corpus / fact.name)]
        if r.returncode != 0 or not cited:
            missed.append((kind, out["answer"]))
            continue
        assert all(check_json(c) is None for c in out["citations"])
        if verify_tool.exists() and kind in ("html", "pdf-aes"):  # formats the shared tool has recipes for
            v = subprocess.run([sys.executable, str(verify_tool)], input=r.stdout, capture_output=True)
            assert v.returncode in (0, 1) and (v.returncode == 0 or kind == "html"), v.stderr
    assert not missed, missed
