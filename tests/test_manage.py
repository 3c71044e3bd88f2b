"""``rag ls`` and ``rag rm`` on a directory index and on PostgreSQL (a real throwaway server):
the documents with pages and chunks; removal by path, folder or glob with counts, gone from
search and status, idempotent; a later ingest of the folder brings a file back.
Real ``rag`` processes, the hashing embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragcli.manage import matches

from .conftest import SAMPLE, rag

N_SAMPLE = sum(1 for p in SAMPLE.iterdir() if p.is_file())


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, hash_models: Path, tmp_path: Path) -> dict:
    where = str(tmp_path / "idx") if request.param == "sqlite" else request.getfixturevalue("pg_index")
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": where}


@pytest.fixture
def docs(env: dict, tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    r = rag("ingest", str(d), env=env)
    assert r.returncode == 0, r.stderr
    return d


def _ls(env: dict, *args: str) -> list[dict]:
    r = rag("ls", "--json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def test_ls_lists_documents_with_pages_and_chunks(env: dict, docs: Path) -> None:
    rows = _ls(env)
    assert len(rows) == N_SAMPLE and all(r["chunks"] > 0 and r["pages"] >= 1 for r in rows)
    assert sum(r["chunks"] for r in rows) == json.loads(rag("status", "--json", env=env).stdout)["chunks"]
    assert [r["path"] for r in _ls(env, "*.md")] == sorted(str(p) for p in docs.glob("*.md"))
    r = rag("ls", str(docs / "tokenization.md"), env=env)
    assert r.returncode == 0 and "tokenization.md" in r.stdout.decode() and "chunks" in r.stdout.decode()


def test_rm_by_glob_and_path_counts_is_idempotent_and_leaves_search(env: dict, docs: Path) -> None:
    before = json.loads(rag("status", "--json", env=env).stdout)
    r = rag("rm", "--json", "*.txt", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["removed"]) == sorted(str(p) for p in docs.glob("*.txt")) and out["documents"] == 2
    after = json.loads(rag("status", "--json", env=env).stdout)
    assert after["documents"] == before["documents"] - 2
    assert after["chunks"] == before["chunks"] - out["chunks"] and after["spans"] == before["spans"] - out["sentences"]
    again = json.loads(rag("rm", "--json", "*.txt", env=env).stdout)
    assert again["documents"] == 0 and again["chunks"] == 0  # removing nothing is not an error
    hits = [json.loads(x) for x in rag("search", "--json", "-k", "50", "sampling temperature", env=env).stdout.splitlines()]
    assert hits and not any(h["source"].endswith(".txt") for h in hits)

    r = rag("rm", str(docs / "tokenization.md"), env=env)
    assert r.returncode == 0 and "1 documents removed" in r.stdout.decode()
    assert len(_ls(env)) == N_SAMPLE - 3
    assert (docs / "tokenization.md").exists()  # the file itself is untouched
    assert rag("ingest", str(docs), env=env).returncode == 0  # a later ingest of the folder adds them back
    assert len(_ls(env)) == N_SAMPLE


def test_ls_lists_the_files_the_last_ingest_failed_or_skipped_until_they_are_fixed_or_gone(
        env: dict, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "good.md").write_text("The lighthouse was built in 1871 by the harbour board.\n")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all\n")
    (d / "blob.dat").write_bytes(bytes(range(256)) * 8)  # not text: skipped
    assert rag("ingest", str(d), env=env).returncode == 3
    rows = {r["path"]: r for r in _ls(env)}
    assert rows[str(d / "good.md")]["status"] == "indexed" and rows[str(d / "good.md")]["chunks"] >= 1
    assert rows[str(d / "broken.pdf")]["status"] == "failed" and rows[str(d / "broken.pdf")]["reason"]
    assert rows[str(d / "blob.dat")]["status"] == "skipped" and rows[str(d / "blob.dat")]["reason"]
    assert len(rows) == 3
    human = rag("ls", env=env).stdout.decode()
    assert f"failed: {d / 'broken.pdf'}: " in human and f"skipped: {d / 'blob.dat'}: " in human
    assert [r["path"] for r in _ls(env, "*.pdf")] == [str(d / "broken.pdf")]  # patterns apply to them too

    assert rag("ingest", str(d), env=env).returncode == 3  # unchanged: still listed, with its first reason
    assert {r["path"]: r.get("reason") for r in _ls(env)}[str(d / "broken.pdf")] == rows[str(d / "broken.pdf")]["reason"]

    (d / "broken.pdf").unlink()
    (d / "broken.md").write_text("Fixed: the keeper's log survives.\n")
    (d / "blob.dat").unlink()
    assert rag("ingest", str(d), env=env).returncode == 0
    assert {r["path"]: r["status"] for r in _ls(env)} == {str(d / "good.md"): "indexed", str(d / "broken.md"): "indexed"}


def test_matches_paths_folders_and_globs() -> None:
    assert matches("/d/a/x.pdf", "*.pdf") and matches("/d/a/x.pdf", "/d/a") and matches("/d/a/x.pdf", "/d/a/")
    assert not matches("/d/ab/x.pdf", "/d/a") and not matches("/d/a/x.pdf", "*.md") and not matches("/d/a", "")
