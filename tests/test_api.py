"""The Python API as a user calls it: only what ``ragcli/__init__.py`` exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ragcli
from ragcli import Index, IndexNotFoundError

from .conftest import SAMPLE

N_SAMPLE = sum(1 for p in SAMPLE.iterdir() if p.is_file())

REPLY = '{"answer": "The K stands for the k-quant family.", "evidence": [1]}'


def test_every_exported_name_exists() -> None:
    for name in ragcli.__all__:
        assert getattr(ragcli, name) is not None, name


def test_index_is_the_one_public_way_in() -> None:
    """The pipeline functions (their own defaults) are private; the records and errors are not."""
    assert not {"ask", "ingest", "search", "status", "Settings", "resolve_settings"} & set(ragcli.__all__)
    with pytest.raises(AttributeError):
        ragcli.ask  # noqa: B018
    import inspect

    from ragcli.config import DEFAULT_K, DEFAULT_MODE

    sig = inspect.signature(Index.search)
    assert (sig.parameters["k"].default, sig.parameters["mode"].default) == (DEFAULT_K, DEFAULT_MODE)


def test_index_handle_ingests_searches_asks_and_reports_status(tmp_path: Path) -> None:
    from ragcli import AnswerParams
    from ragcli.models.embedders import HashEmbedder
    from ragcli.models.generators import ScriptedGenerator

    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    with Index(tmp_path / "idx", embedder=HashEmbedder(), generator=ScriptedGenerator(REPLY)) as idx:
        report = idx.ingest([docs])
        assert len(report.added) == N_SAMPLE and not report.failed
        assert idx.ingest().unchanged == report.added  # no paths: the recorded directories
        hits = idx.search("k-quant family Q4_K_M", k=3, mode="lexical").hits
        assert hits and hits[0].chunk.source.endswith("quantization_and_gguf.md")
        answer = idx.ask("What does the K in Q4_K_M stand for?",
                         params=AnswerParams(min_sentence_similarity=0.0))
        assert answer.status == "answered" and answer.citations
        c = answer.citations[0]
        assert Path(c.source).read_text(encoding="utf-8")[c.start:c.end] == c.quote
        st = idx.status()
        assert st["documents"] == N_SAMPLE and st["vectors"]["search"] == "exact"
        (docs / "blob.bin").write_bytes(bytes(range(256)) * 4)  # not text: skipped, and listed so
        idx.ingest([docs])
        assert len(idx.documents()) == N_SAMPLE and [u.status for u in idx.unindexed()] == ["skipped"]
        assert idx.remove("*.md").paths and len(idx.documents("*.md")) == 0


def test_open_fails_clearly_where_there_is_no_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        Index.open(tmp_path / "nothing")
