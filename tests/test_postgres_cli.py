"""The command-line contract against a PostgreSQL index on a real server (``--index postgresql://``):
same JSON, same exit codes as a directory index; two ingests at once take turns on the
advisory lock; a writer killed mid-batch leaves the last committed batch and no lock behind;
a machine without the source files still gets verified quotes, from the index's page copies.

Fast: the hashing embedder and a scripted generator; the server is the session's throwaway
one (``conftest.pg_server_url``), one schema per test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragcli import pipeline
from ragcli.config import resolve_settings
from ragcli.models.generators import ScriptedGenerator

from .conftest import SAMPLE, rag


@pytest.fixture
def env(hash_models: Path, pg_index: str) -> dict:
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": pg_index}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    return d


def test_ingest_search_status_json_with_the_url_as_flag_or_env(env: dict, docs: Path, pg_index: str) -> None:
    r = rag("ingest", str(docs), "--json", "--index", pg_index, env={"RAG_MODELS": env["RAG_MODELS"]})
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert len(rep["added"]) == 9 and rep["failed"] == [] and rep["index"] == pg_index and rep["batches"] >= 1
    again = json.loads(rag("ingest", str(docs), "--json", env=env).stdout)
    assert len(again["unchanged"]) == 9 and again["chunks"] == 0
    r = rag("search", "GBNF grammar for constrained decoding", "-k", "3", "--json", env=env)
    assert r.returncode == 0, r.stderr
    hits = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(hits) == 3 and hits[0]["source"].endswith("grammars_and_constrained_decoding.md")
    for mode in ("dense", "lexical"):
        r = rag("search", "quantization GGUF", "--mode", mode, "--json", env=env)
        assert r.returncode == 0 and r.stdout.strip(), (mode, r.stderr)
    st = json.loads(rag("status", "--json", env=env).stdout)
    assert st["documents"] == 9 and st["chunks"] > 9 and st["index"] == pg_index
    assert st["vectors"]["store"] == "postgresql" and st["vectors"]["search"] == "approximate"
    assert st["roots"] == [str(docs)] and st["size_bytes"] > 0
    human = rag("status", env=env).stdout.decode()
    assert "PostgreSQL 18" in human and "HNSW" in human


def test_changed_and_deleted_files_are_updated_and_removed(env: dict, docs: Path) -> None:
    assert rag("ingest", str(docs), env=env).returncode == 0
    (docs / "tokenization.md").unlink()
    (docs / "sampling_notes.txt").write_text("Temperature zero makes decoding greedy.\n")
    rep = json.loads(rag("ingest", str(docs), "--json", env=env).stdout)
    assert rep["removed"] == [str(docs / "tokenization.md")] and rep["updated"] == [str(docs / "sampling_notes.txt")]
    r = rag("search", "temperature greedy", "--json", "-k", "1", env=env)
    assert json.loads(r.stdout.decode().splitlines()[0])["source"].endswith("sampling_notes.txt")
    assert json.loads(rag("status", "--json", env=env).stdout)["documents"] == 8


def test_exit_codes_missing_index_no_evidence_usage_and_unreachable_server(env: dict, docs: Path) -> None:
    r = rag("search", "anything", env=env)
    assert r.returncode == 1 and "rag ingest PATH --index" in r.stderr.decode()
    assert rag("ingest", str(docs), env=env).returncode == 0
    r = rag("ask", "zebra quokka xylophone marmalade", "--json", env=env)
    assert r.returncode == 4 and json.loads(r.stdout)["status"] == "no_evidence"
    assert rag("search", "x", "-k", "0", env=env).returncode == 2
    r = rag("search", "x", env={**env, "RAG_INDEX": env["RAG_INDEX"].split("?")[0] + "?schema=Bad-Name"})
    assert r.returncode == 2 and "schema=" in r.stderr.decode()
    r = rag("status", env={**env, "RAG_INDEX": "postgresql://nobody:secret@127.0.0.1:1/none"})
    err = r.stderr.decode()
    assert r.returncode == 1 and "cannot connect" in err and "secret" not in err and "***" in err


def _ingest_proc(env: dict, path: Path, *extra: str) -> subprocess.Popen:
    import os

    return subprocess.Popen([sys.executable, "-m", "ragcli", "ingest", str(path), "--json", *extra],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_until_batches(env: dict, n: int, proc: subprocess.Popen) -> None:
    import psycopg

    url, schema = env["RAG_INDEX"].split("?schema=")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            with psycopg.connect(url, autocommit=True) as con:
                row = con.execute(f"SELECT COALESCE(SUM(batches), 0) FROM {schema}.runs").fetchone()
            if row and row[0] >= n:
                return
        except psycopg.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the first ingest never committed {n} batches: {proc.communicate()}")


def _read_until(proc: subprocess.Popen, needle: bytes, timeout: float) -> bytes:
    """What ``proc`` writes on stderr up to and including ``needle`` (all of it, if ``needle``
    does not come within ``timeout`` s or the process ends first). Reads the pipe unbuffered,
    so ``communicate`` still gets the rest."""
    import os
    import select

    got, fd, deadline = b"", proc.stderr.fileno(), time.monotonic() + timeout
    while needle not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            data = os.read(fd, 4096)
            if not data:
                break
            got += data
    return got


def test_two_machines_ingesting_at_once_take_turns(env: dict, docs: Path, tmp_path: Path) -> None:
    """Two processes (two machines, as far as the server can tell) write one index: the second
    waits on the advisory lock, or with --no-wait fails at once naming the first; both land."""
    other = tmp_path / "other"
    other.mkdir()
    for i in range(6):
        (other / f"note{i}.md").write_text(f"# Note {i}\n\nA llama named Nube{i} guards the alpacas at night.\n")
    # The first run stops after its first batch, holding the lock, until the test lets it go.
    go = tmp_path / "go"
    held = {**env, "RAGCLI_PAUSE_AT": "batch:db-committed@1", "RAGCLI_PAUSE_UNTIL": str(go)}
    first = _ingest_proc(held, docs, "--batch-size", "5", "--workers", "0")
    second = None
    try:
        _wait_until_batches(env, 1, first)
        busy = rag("ingest", str(other), "--no-wait", env=env)
        assert busy.returncode == 1 and "is writing to" in busy.stderr.decode() and "ragcli ingest pid" in \
            busy.stderr.decode(), busy.stderr
        second = _ingest_proc(env, other, "--batch-size", "5")
        waiting = _read_until(second, b"waiting for", timeout=120)  # it waits for the first run's lock
        assert b"waiting for" in waiting, waiting
        assert second.poll() is None
        go.touch()
        out1, err1 = first.communicate(timeout=300)
        assert first.returncode == 0, err1
        out2, err2 = second.communicate(timeout=300)
        assert second.returncode == 0, waiting + err2
    finally:
        go.touch()
        first.kill()
        if second is not None:
            second.kill()
    assert len(json.loads(out1)["added"]) == 9 and len(json.loads(out2)["added"]) == 6
    st = json.loads(rag("status", "--json", env=env).stdout)
    assert st["documents"] == 15 and sorted(st["roots"]) == sorted([str(docs), str(other)])


def test_a_writer_killed_mid_batch_leaves_committed_batches_and_no_lock(env: dict, docs: Path) -> None:
    crash = {**env, "RAGCLI_CRASH_AT": "batch:vectors-written@2"}  # killed inside the 2nd batch's transaction
    r = rag("ingest", str(docs), "--batch-size", "5", "--workers", "0", env=crash)
    assert r.returncode == -9
    st = json.loads(rag("status", "--json", env=env).stdout)  # status also checks the row counts
    assert 1 <= st["documents"] < 9
    r = rag("ingest", str(docs), "--json", "--no-wait", env=env)  # the server released the dead run's lock
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert len(rep["resumed"]) == st["documents"] and len(rep["added"]) == 9 - st["documents"]


def test_a_machine_without_the_files_verifies_quotes_against_the_index_copy(env: dict, docs: Path,
                                                                            tmp_path: Path) -> None:
    assert rag("ingest", str(docs), env=env).returncode == 0
    settings = resolve_settings(index=env["RAG_INDEX"], models=env["RAG_MODELS"])
    question = "Retrieval-augmented generation, usually shortened to RAG, means answering a question by first retrieving"
    gen = ScriptedGenerator('{"evidence": [1], "answer": ""}')
    here = pipeline.ask(question, settings, generator=gen)
    assert here.status == "answered" and {c.verified for c in here.citations} == {"file"}
    shutil.move(docs, tmp_path / "elsewhere")  # this machine no longer has the files
    away = pipeline.ask(question, settings, generator=gen)
    assert away.status == "answered" and {c.verified for c in away.citations} == {"index"}
    assert [c.quote for c in away.citations] == [c.quote for c in here.citations]
    assert all(c.to_json()["verified"] == "index" for c in away.citations)
