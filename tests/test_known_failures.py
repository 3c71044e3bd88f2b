"""Files that failed before and have not changed are reported as failing without being read
again, and ``--accept-known-failures`` lets a scheduled run call that success."""

from __future__ import annotations

import json
from pathlib import Path

from ragcli import pipeline
from ragcli.config import resolve_settings
from ragcli.models.embedders import HashEmbedder

from .conftest import rag


def _docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "good.md").write_text("The lighthouse was built in 1871 by the harbour board.\n")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all\n")
    return d


def _run(docs: Path, index: Path, **kw):
    seen = []
    r = pipeline.ingest([str(docs)], resolve_settings(index=index), embedder=HashEmbedder(), workers=0,
                        tally=seen.append, **kw)
    read = max((t.files_total for t in seen if t.phase == "ingesting"), default=0)
    return r, read


def test_an_unchanged_failed_file_is_not_read_again_until_it_changes(tmp_path: Path) -> None:
    docs, index = _docs(tmp_path), tmp_path / "index"
    first, read = _run(docs, index)
    assert read == 2 and [p for p, _ in first.failed] == [str(docs / "broken.pdf")]
    second, read = _run(docs, index)
    assert read == 0  # nothing handed to the readers
    assert second.known_failed == (str(docs / "broken.pdf"),)
    assert second.only_known_failures
    reason = second.failed[0][1]
    assert reason.startswith(first.failed[0][1]) and "not read again" in reason
    _, read = _run(docs, index, retry_failed=True)
    assert read == 1
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 changed, still not a PDF\n")
    third, read = _run(docs, index)
    assert read == 1 and third.known_failed == () and third.failed
    (docs / "broken.pdf").unlink()
    (docs / "fixed.md").write_text("Now readable.\n")
    fourth, _ = _run(docs, index)
    assert fourth.failed == ()


def test_a_raised_limit_reads_the_file_again(tmp_path: Path) -> None:
    docs, index = _docs(tmp_path), tmp_path / "index"
    _run(docs, index)
    _, read = _run(docs, index, max_file_size=10_000_000)
    assert read == 1


def test_accept_known_failures_makes_a_scheduled_run_exit_0(tmp_path: Path, hash_models: Path) -> None:
    docs, env = _docs(tmp_path), {"RAG_MODELS": str(hash_models)}
    args = ("ingest", str(docs), "--index", str(tmp_path / "i"))
    assert rag(*args, "--accept-known-failures", env=env).returncode == 3  # new failure: still 3
    r = rag(*args, "--json", env=env)
    assert r.returncode == 3 and json.loads(r.stdout)["known_failed"] == [str(docs / "broken.pdf")]
    assert rag(*args, "--accept-known-failures", env=env).returncode == 0
    assert rag(*args, env={**env, "RAG_ACCEPT_KNOWN_FAILURES": "1"}).returncode == 0
    (docs / "other.pdf").write_bytes(b"not a pdf either")
    assert rag(*args, "--accept-known-failures", env=env).returncode == 3  # a new one is not accepted
