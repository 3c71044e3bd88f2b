"""``rag ask --batch``: JSONL in, one JSON answer a line out, in order, in one process; bad lines
are error lines and the batch goes on; a summary on stderr; exit 4 only when all abstain.
Real ``rag`` processes with the hashing embedder; an answered batch in-process with a
scripted generator (``run_batch`` on an ``Index``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import SAMPLE, rag

NONSENSE = ["zebra quokka xylophone marmalade", "trombone aardvark zeppelin"]


@pytest.fixture
def env(sample_env: dict) -> dict:
    return sample_env


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_batch_answers_each_line_in_order_and_exits_4_when_all_abstain(env: dict, tmp_path: Path, how: str) -> None:
    text = "\n".join([json.dumps({"id": "a", "question": NONSENSE[0]}), "", NONSENSE[1]]) + "\n"
    f = tmp_path / "q.jsonl"
    f.write_text(text)
    r = rag("ask", "--batch", str(f), env=env) if how == "file" else rag("ask", "--batch", "-", stdin=text, env=env)
    assert r.returncode == 4, r.stderr
    rows = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert [(x["id"], x["line"], x["question"], x["status"]) for x in rows] == [
        ("a", 1, NONSENSE[0], "no_evidence"), (None, 3, NONSENSE[1], "no_evidence")]
    assert all(x["reason"] for x in rows)
    assert "2 questions: 0 answered, 2 no evidence, 0 errors" in r.stderr.decode()


def test_bad_lines_are_error_lines_and_the_batch_goes_on(env: dict) -> None:
    text = '{"id": 1, "question": "   "}\n{"question": 3}\n{"id": 2, "question": "x", "k": 0}\n{broken\n' + NONSENSE[0] + "\n"
    r = rag("ask", "--batch", "-", stdin=text, env=env)
    assert r.returncode == 0, r.stderr  # not every question abstained: four could not be asked
    rows = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert [x["status"] for x in rows] == ["error"] * 4 + ["no_evidence"]
    assert "empty" in rows[0]["error"] and '"question"' in rows[1]["error"] and "k must" in rows[2]["error"]
    assert "not JSON" in rows[3]["error"] and rows[0]["id"] == 1


@pytest.mark.parametrize("args,stdin,msg", [
    (("ask", "a question", "--batch", "-"), "x\n", "not both"),
    (("ask", "--batch", "/nonexistent/q.jsonl"), None, "cannot read"),
    (("ask", "--batch", "-"), "\n\n", "holds no question"),
])
def test_batch_usage_errors_exit_2(env: dict, args: tuple, stdin: str | None, msg: str) -> None:
    r = rag(*args, stdin=stdin, env=env)
    assert r.returncode == 2 and msg in r.stderr.decode(), r.stderr


def test_run_batch_answers_with_verified_citations_models_loaded_once(tmp_path: Path) -> None:
    from ragcli.answer import AnswerParams
    from ragcli.api import Index
    from ragcli.batch import run_batch
    from ragcli.models.embedders import HashEmbedder
    from ragcli.models.generators import ScriptedGenerator

    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    reply = '{"answer": "The K stands for the k-quant family.", "evidence": [1]}'
    gen = ScriptedGenerator(reply)
    with Index(tmp_path / "idx", embedder=HashEmbedder(), generator=gen) as idx:
        idx.ingest([docs])
        out: list[dict] = []
        s = run_batch(['{"id": 7, "question": "What does the K in Q4_K_M stand for?"}', NONSENSE[0]], idx,
                      out.append, params=AnswerParams(min_sentence_similarity=0.0))
        assert idx._generator is gen  # the one generator, reused for every line
    assert s.questions == 2 and out[0]["status"] == "answered" and s.answered >= 1 and s.no_evidence < s.questions
    c = out[0]["citations"][0]
    assert out[0]["id"] == 7 and Path(c["source"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
