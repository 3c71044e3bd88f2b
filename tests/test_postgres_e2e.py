"""End to end against PostgreSQL with the REAL default embedder and GGUF over sample_corpus/:
the same questions answered as from a directory index, quotes verified against the files;
then, on "another machine" (the files moved away), against the index's page copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import SAMPLE, rag
from .test_e2e import check_citation

pytestmark = pytest.mark.slow


def test_ask_against_postgres_with_and_without_the_files(pg_index: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    r = rag("ingest", str(docs), "--index", pg_index, "--json")
    assert r.returncode == 0, r.stderr.decode()
    assert len(json.loads(r.stdout)["added"]) == 9
    question = "How much KV cache memory does one token take in Llama 2 7B?"
    r = rag("ask", question, "--json", "--index", pg_index)
    assert r.returncode == 0, r.stderr.decode()
    here = json.loads(r.stdout)
    assert here["status"] == "answered" and here["citations"]
    for c in here["citations"]:
        check_citation(c)
        assert c["verified"] == "file"
    shutil.move(docs, tmp_path / "elsewhere")
    r = rag("ask", question, "--json", "--index", pg_index)
    assert r.returncode == 0, r.stderr.decode()
    away = json.loads(r.stdout)
    assert [c["quote"] for c in away["citations"]] == [c["quote"] for c in here["citations"]]
    assert {c["verified"] for c in away["citations"]} == {"index"}
    r = rag("ask", question, "--index", pg_index)
    assert r.returncode == 0, (r.returncode, r.stderr.decode())
    assert "verified against the index's copy" in r.stdout.decode(), (r.stdout.decode(), r.stderr.decode())
    r = rag("ask", "What is the capital of Mongolia?", "--json", "--index", pg_index)
    assert r.returncode == 4 and json.loads(r.stdout)["citations"] == []
