"""`rag eval FILE` through the real command (fast: hashing embedder, and an LLM entry whose
file is not a model, so any question that reached the model would fail the run).

The slow path, with the real GGUF answering, is ``test_e2e.test_rag_eval_on_the_sample_corpus``;
the metrics themselves are checked in ``test_evaluate``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import HASH_MODELS, SAMPLE, rag

OFF_TOPIC = ["Weather on Mars tomorrow?", "Who won the 1986 football world cup final?"]


@pytest.fixture
def env(tmp_path: Path) -> dict:
    fake = tmp_path / "not-a-model.gguf"
    fake.write_bytes(b"not a gguf")
    models = tmp_path / "eval-models.toml"
    models.write_text(HASH_MODELS.replace('[defaults]\n', '[defaults]\nllm = "fake"\n')
                      + f'[llm.fake]\ndescription = "never loaded"\nsource = "path"\npath = "{fake}"\n')
    env = {"RAG_MODELS": str(models), "RAG_INDEX": str(tmp_path / "idx")}
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 0, r.stderr
    return env


def _write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_eval_json_reports_abstention_and_misses(env: dict, tmp_path: Path) -> None:
    qs = _write(tmp_path / "qs.jsonl", [{"question": q, "answerable": False} for q in OFF_TOPIC]
                + [{"question": "Penguins of Antarctica?", "answer": "emperor", "source": "tokenization.md"}])
    r = rag("eval", str(qs), "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    s = out["summary"]
    assert out["model"] == "fake"
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (3, 1, 2)
    assert s["abstention"] == 1.0  # both off-topic questions: no_evidence, the model never asked
    assert s["accuracy"] == 0.0 and s["source_hit"] == 0.0 and s["wrong_no_evidence"] == 1.0
    assert s["quote_verified"] is None and s["citations"] == 0  # no citations: nothing to claim
    assert s["citation_hit"] is None  # no gold spans in a user file
    assert [q["status"] for q in out["questions"]] == ["no_evidence"] * 3


def test_eval_human_output_names_the_missed_question(env: dict, tmp_path: Path) -> None:
    qs = _write(tmp_path / "qs.jsonl", [{"question": OFF_TOPIC[0], "answerable": False},
                                        {"question": "Penguins of Antarctica?", "answer": "emperor"}])
    r = rag("eval", str(qs), env=env)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "questions:          2 (1 answerable, 1 unanswerable)" in out
    assert "abstained right:    100%" in out
    assert "missed:\n  - Penguins of Antarctica?  (no_evidence)" in out
    assert "Weather on Mars" not in out.split("missed:")[1]  # a right abstention is not a miss


def test_eval_bad_line_is_named_before_any_model_loads(env: dict, tmp_path: Path) -> None:
    qs = tmp_path / "qs.jsonl"
    qs.write_text('{"question": "fine"}\n{"question": "q", "answerable": "no"}\n', encoding="utf-8")
    r = rag("eval", str(qs), env=env)
    assert r.returncode == 2
    assert f"{qs}:2:" in r.stderr.decode() and '"answerable" must be true or false' in r.stderr.decode()


def test_eval_missing_file_and_unknown_model(env: dict, tmp_path: Path) -> None:
    r = rag("eval", str(tmp_path / "nope.jsonl"), env=env)
    assert r.returncode == 2 and "cannot read the eval file" in r.stderr.decode()
    qs = _write(tmp_path / "qs.jsonl", [{"question": OFF_TOPIC[0]}])
    r = rag("eval", str(qs), "--model", "no-such-model", env=env)
    err = r.stderr.decode()
    assert r.returncode != 0 and "no-such-model" in err and "fake" in err  # lists the known ones
