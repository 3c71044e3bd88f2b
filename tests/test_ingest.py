"""Incremental ingest, atomic commits and the index's memory of how it was built.

Uses the hashing test-double embedder (fast); the real embedder is covered in test_e2e.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragcli import pipeline, store
from ragcli.chunking import ChunkParams
from ragcli.config import resolve_settings
from ragcli.embedders import HashEmbedder
from ragcli.errors import DamagedIndexError, IndexNotFoundError, StaleIndexError

from .conftest import SAMPLE


@pytest.fixture
def settings(tmp_path: Path):
    return resolve_settings(index=tmp_path / "index")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    return d


EMB = HashEmbedder()
N_SAMPLE = sum(1 for p in SAMPLE.iterdir() if p.is_file())  # documents in sample_corpus/


def ingest(paths, settings, **kw):
    return pipeline.ingest([str(p) for p in paths], settings, embedder=kw.pop("embedder", EMB), **kw)


def test_first_ingest_then_unchanged(docs: Path, settings) -> None:
    r1 = ingest([docs], settings)
    assert len(r1.added) == N_SAMPLE and not r1.failed and r1.chunks > 20 and r1.exit_code == 0
    r2 = ingest([docs], settings)
    assert len(r2.unchanged) == N_SAMPLE and not r2.added and not r2.updated and r2.chunks == 0
    st = pipeline.status(settings)
    assert st["documents"] == N_SAMPLE and st["chunks"] == r1.chunks


def test_changed_file_is_rechunked_and_old_vectors_removed(docs: Path, settings) -> None:
    ingest([docs], settings)
    before = pipeline.status(settings)["chunks"]
    f = docs / "tokenization.md"
    f.write_text(f.read_text() + "\n\nZebra crossings are painted white. Penguins cannot fly.\n")
    r = ingest([docs], settings)
    assert r.updated == (str(f),) and len(r.unchanged) == N_SAMPLE - 1
    res = pipeline.search("penguins fly", settings, k=3, embedder=EMB, mode="lexical")
    assert res.hits[0].chunk.source == str(f)
    with store.Store.open(settings.index_dir) as st:
        n_vectors = st.vector_index().ntotal
        n_chunks = st.counts()["chunks"]
    assert n_vectors == n_chunks and n_chunks >= before  # old vectors gone, new ones in
    f.write_text("Only one sentence remains here.\n")
    ingest([docs], settings)
    hits = pipeline.search("Zebra crossings", settings, k=50, embedder=EMB, mode="lexical").hits
    assert all("Zebra" not in h.chunk.text for h in hits)


def test_deleted_file_is_removed_when_its_directory_is_ingested_again(docs: Path, settings) -> None:
    ingest([docs], settings)
    (docs / "sampling_notes.txt").unlink()
    r = ingest([docs], settings)
    assert r.removed == (str(docs / "sampling_notes.txt"),)
    assert pipeline.status(settings)["documents"] == N_SAMPLE - 1
    with store.Store.open(settings.index_dir) as st:
        assert st.vector_index().ntotal == st.counts()["chunks"]


def test_files_outside_the_ingested_directory_are_kept(tmp_path: Path, docs: Path, settings) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("Apples are red or green. They grow on trees.")
    ingest([docs, other], settings)
    r = ingest([other], settings)
    assert r.unchanged == (str(other / "a.txt"),) and not r.removed
    assert pipeline.status(settings)["documents"] == N_SAMPLE + 1


def test_failure_in_commit_leaves_previous_index(docs: Path, settings) -> None:
    ingest([docs], settings)
    before = pipeline.status(settings)
    (docs / "new.md").write_text("# New\n\nA brand new file about llamas and alpacas.\n")

    def boom() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest([docs], settings, before_commit=boom)
    after = pipeline.status(settings)
    assert after["documents"] == before["documents"] and after["generation"] == before["generation"]
    hits = pipeline.search("alpacas", settings, embedder=EMB, mode="lexical").hits
    assert all(h.chunk.source != str(docs / "new.md") for h in hits)
    r = ingest([docs], settings)
    assert r.added == (str(docs / "new.md"),)


def test_different_embedder_is_refused_with_the_rebuild_command(docs: Path, settings) -> None:
    ingest([docs], settings)
    with pytest.raises(StaleIndexError) as e:
        ingest([docs], settings, embedder=HashEmbedder(dim=128))
    assert "rag ingest --rebuild" in str(e.value) and str(docs) in str(e.value)
    with pytest.raises(StaleIndexError):
        pipeline.search("tokens", settings, embedder=HashEmbedder(dim=128))
    r = ingest([], settings, embedder=HashEmbedder(dim=128), rebuild=True)
    assert len(r.added) == N_SAMPLE
    assert pipeline.search("tokens", settings, embedder=HashEmbedder(dim=128)).hits


def test_changed_chunking_is_refused(docs: Path, settings) -> None:
    ingest([docs], settings)
    with pytest.raises(StaleIndexError, match="chunked"):
        ingest([docs], settings, params=ChunkParams(chunk_tokens=100))


def test_missing_index_says_how_to_build_one(settings) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        pipeline.search("anything", settings, embedder=EMB)


def test_search_modes_agree_on_an_obvious_query(docs: Path, settings) -> None:
    ingest([docs], settings)
    for mode in ("dense", "lexical", "hybrid"):
        hits = pipeline.search("GBNF grammar rules constrained decoding", settings, k=3, mode=mode, embedder=EMB).hits
        assert hits and hits[0].chunk.source.endswith("grammars_and_constrained_decoding.md"), mode
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_damaged_vector_file_is_reported_and_repaired_by_next_ingest(docs: Path, settings) -> None:
    ingest([docs], settings)
    with store.Store.open(settings.index_dir) as st:
        gen = st.info.generation
    f = settings.index_dir / f"vectors-{gen}.faiss"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(DamagedIndexError, match="rag ingest --rebuild"):
        pipeline.search("tokens", settings, embedder=EMB)
    (docs / "x.txt").write_text("Something new to commit here.")
    ingest([docs], settings)  # rebuilds the vector file from the database copy
    assert pipeline.search("tokens", settings, embedder=EMB).hits
