"""The command-line contract: JSON shapes, stdin, exit codes (fast: hashing embedder, no LLM).

Real processes (``python -m ragcli``) so exit codes, stdin and "not a terminal" are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import SAMPLE, rag


@pytest.fixture
def env(hash_models: Path, tmp_path: Path) -> dict:
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}


@pytest.fixture
def ingested(env: dict, tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 0, r.stderr
    return docs


def test_help_lists_commands_and_exit_codes() -> None:
    r = rag("--help")
    out = r.stdout.decode()
    assert r.returncode == 0
    for cmd in ("ingest", "search", "ask", "status", "models"):
        assert cmd in out
    assert "4 no evidence" in out.replace("\n", " ")


def test_ingest_json_summary(env: dict, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    r = rag("ingest", str(docs), "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep) >= {"added", "updated", "unchanged", "removed", "failed", "chunks", "seconds", "index"}
    assert len(rep["added"]) == 9 and rep["failed"] == []
    assert r.stderr == b""  # no progress bar when stderr is not a terminal
    r2 = json.loads(rag("ingest", str(docs), "--json", env=env).stdout)
    assert len(r2["unchanged"]) == 9 and r2["chunks"] == 0


def test_ingest_with_a_failed_file_exits_3_and_names_it(env: dict, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThis file is fine and has text.\n")
    (docs / "empty.txt").write_text("")
    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 3
    assert "empty.txt" in r.stderr.decode() and "empty" in r.stderr.decode()
    assert "1 added" in r.stdout.decode() and "1 failed" in r.stdout.decode()
    r = rag("ingest", str(docs), "--json", env=env)
    assert r.returncode == 3
    failed = json.loads(r.stdout)["failed"]
    assert failed[0]["path"].endswith("empty.txt") and failed[0]["reason"]


def test_search_json_lines(env: dict, ingested: Path) -> None:
    r = rag("search", "GBNF grammar for constrained decoding", "-k", "3", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(rows) == 3 and [x["rank"] for x in rows] == [1, 2, 3]
    for row in rows:
        assert set(row) >= {"rank", "score", "source", "sha256", "page", "line_start", "line_end", "start", "end", "text"}
        text = open(row["source"], encoding="utf-8", newline="").read() if row["page"] is None else None
        if text is not None:
            assert text[row["start"] : row["end"]] == row["text"]


@pytest.mark.parametrize("how", ["argument", "dash", "pipe"])
def test_question_from_argument_or_stdin(env: dict, ingested: Path, how: str) -> None:
    q = "what is the KV cache"
    if how == "argument":
        r = rag("search", q, "--json", env=env)
    else:
        r = rag("search", "-", "--json", stdin=q + "\n", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    if how == "pipe":  # ask with no argument and a pipe reads stdin; off-topic -> exit 4, no LLM load
        r = rag("ask", "--json", stdin="zebra quokka xylophone marmalade\n", env=env)
        assert r.returncode == 4, r.stderr
        assert json.loads(r.stdout)["question"] == "zebra quokka xylophone marmalade"


def test_ask_no_evidence_exits_4_with_json(env: dict, ingested: Path) -> None:
    r = rag("ask", "zebra quokka xylophone marmalade", "--json", env=env)
    assert r.returncode == 4, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "no_evidence" and out["citations"] == []
    assert set(out) >= {"question", "answer", "status", "citations", "model", "embedder", "timings"}
    r = rag("ask", "zebra quokka xylophone marmalade", env=env)
    assert r.returncode == 4 and "do not contain an answer" in r.stdout.decode()


@pytest.mark.parametrize(
    "args",
    [
        ("ask", ""),
        ("ask", "   "),
        ("search", "x", "--mode", "nonsense"),
        ("search", "x", "-k", "0"),
        ("ingest", "--batch-size", "0"),
        ("frobnicate",),
    ],
)
def test_usage_errors_exit_2(env: dict, ingested: Path, args: tuple) -> None:
    r = rag(*args, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert b"Traceback" not in r.stderr


def test_ingest_without_paths_refreshes_the_recorded_directories(env: dict, ingested: Path, tmp_path: Path) -> None:
    (ingested / "extra.md").write_text("# Extra\n\nA note added after the first ingest, about otters.\n")
    r = rag("ingest", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["added"] == [str(ingested / "extra.md")] and len(out["unchanged"]) == sum(1 for p in SAMPLE.iterdir() if p.is_file())
    r = rag("ingest", env={**env, "RAG_INDEX": str(tmp_path / "none")})
    assert r.returncode == 2 and b"give the files or directories" in r.stderr, r.stderr


def test_missing_index_exits_1_with_what_to_do(env: dict) -> None:
    r = rag("search", "anything", env=env)
    assert r.returncode == 1
    assert "rag ingest" in r.stderr.decode() and b"Traceback" not in r.stderr


def test_unknown_model_exits_1_listing_known_ones(env: dict, ingested: Path) -> None:
    r = rag("ask", "what is the KV cache", "--model", "no-such-model", env=env)
    assert r.returncode == 1
    assert "qwen2.5-coder-0.5b" in r.stderr.decode()


def test_status_and_models_json(env: dict, ingested: Path) -> None:
    r = rag("status", "--json", env=env)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["documents"] == 9 and st["chunks"] > 0 and st["embedder"] == "hash"
    assert set(st) >= {"index", "documents", "chunks", "embedder", "size_bytes", "last_ingest"}
    r = rag("models", "--json", env=env)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    llms = [x for x in rows if x["kind"] == "llm"]
    assert sum(x["default"] for x in llms) == 1 and all("available" in x for x in rows)


def test_index_flag_env_and_xdg_default(hash_models: Path, tmp_path: Path, isolated: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nAlpacas are domesticated camelids from South America.\n")
    base = {"RAG_MODELS": str(hash_models)}
    assert rag("ingest", str(doc), env=base).returncode == 0  # default: $XDG_DATA_HOME/ragcli
    assert (isolated / "data" / "ragcli" / "index.sqlite").is_file()
    assert rag("ingest", str(doc), "--index", str(tmp_path / "flag"), env=base).returncode == 0
    assert (tmp_path / "flag" / "index.sqlite").is_file()
    assert rag("ingest", str(doc), env={**base, "RAG_INDEX": str(tmp_path / "envidx")}).returncode == 0
    assert (tmp_path / "envidx" / "index.sqlite").is_file()


def test_asking_with_another_embedder_is_refused_with_rebuild_command(env: dict, ingested: Path) -> None:
    r = rag("search", "tokens", env={**env, "RAG_EMBEDDER": "hash-slow"})
    assert r.returncode == 1
    assert "rag ingest --rebuild" in r.stderr.decode()


def test_python_dash_m_and_version() -> None:
    r = rag("--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("ragcli ")
