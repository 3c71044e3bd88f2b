"""Incremental ingest, atomic batches, resuming, and the index's memory of how it was built.

Uses the hashing test-double embedder (fast); the real embedder is covered in test_e2e.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragcli import index, pipeline
from ragcli.chunking import ChunkParams
from ragcli.config import resolve_settings
from ragcli.errors import DamagedIndexError, IndexNotFoundError, StaleIndexError
from ragcli.models.embedders import HashEmbedder

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
    assert len(r1.added) == N_SAMPLE and not r1.failed and r1.chunks > 20 and not r1.failed
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
    with index.open(settings.index).reader() as st:
        n_vectors = st.vector_set.live
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
    with index.open(settings.index).reader() as st:
        assert st.vector_set.live == st.counts()["chunks"]


def test_files_outside_the_ingested_directory_are_kept(tmp_path: Path, docs: Path, settings) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("Apples are red or green. They grow on trees.")
    ingest([docs, other], settings)
    r = ingest([other], settings)
    assert r.unchanged == (str(other / "a.txt"),) and not r.removed
    assert pipeline.status(settings)["documents"] == N_SAMPLE + 1


class FailingEmbedder(HashEmbedder):
    """Raises (as Ctrl-C would) on its ``fail_at``-th call to ``embed``."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def embed(self, texts):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_interrupted_ingest_keeps_committed_batches_and_the_next_run_resumes(docs: Path, settings) -> None:
    ingest([docs], settings)
    before = pipeline.status(settings)
    new = docs / "new"
    new.mkdir()
    for i in range(6):
        (new / f"n{i}.md").write_text(f"# New {i}\n\nA brand new file number {i} about llamas and alpacas.\n")
    # one file per batch: the 4th batch's embedding is interrupted
    with pytest.raises(KeyboardInterrupt):
        ingest([docs], settings, embedder=FailingEmbedder(fail_at=4), batch_chunks=1)
    mid = pipeline.status(settings)
    assert mid["documents"] == before["documents"] + 3 and mid["generation"] == before["generation"] + 3
    kept = {h.chunk.source for h in pipeline.search("brand new file llamas alpacas", settings, k=50,
                                                    embedder=EMB, mode="lexical").hits if h.chunk.source.startswith(str(new))}
    assert kept == {str(new / f"n{i}.md") for i in range(3)}  # whole batches, in plan order
    r = ingest([docs], settings)
    assert r.resumed == tuple(str(new / f"n{i}.md") for i in range(3))
    assert r.added == tuple(str(new / f"n{i}.md") for i in range(3, 6))
    assert pipeline.status(settings)["documents"] == before["documents"] + 6
    assert ingest([docs], settings).resumed == ()  # that run finished: nothing to resume next time


def test_changed_file_is_replaced_in_the_batch_that_brings_its_new_version(docs: Path, settings) -> None:
    ingest([docs], settings)
    f = docs / "tokenization.md"
    f.write_text(f.read_text() + "\n\nZebra crossings are painted white.\n")
    with pytest.raises(KeyboardInterrupt):  # dies before the changed file's batch
        ingest([docs], settings, embedder=FailingEmbedder(fail_at=1), batch_chunks=1)
    hits = pipeline.search("tokenization", settings, k=50, embedder=EMB, mode="lexical").hits
    versions = {h.chunk.sha256 for h in hits if h.chunk.source == str(f)}
    assert len(versions) == 1  # the old version, whole: never neither, never both
    ingest([docs], settings)
    hits = pipeline.search("Zebra crossings", settings, k=5, embedder=EMB, mode="lexical").hits
    assert hits[0].chunk.source == str(f)


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


def test_damaged_vector_segment_is_reported_and_repaired_by_a_rebuild(docs: Path, settings) -> None:
    ingest([docs], settings)
    seg = next((settings.index / "segments").glob("*.vec.npy"))
    seg.write_bytes(seg.read_bytes()[:100])
    with pytest.raises(DamagedIndexError, match="rag ingest --rebuild"):
        pipeline.search("tokens", settings, embedder=EMB)
    (docs / "x.txt").write_text("Something new to commit here.")
    with pytest.raises(DamagedIndexError, match="rag ingest --rebuild"):  # vectors are stored once:
        ingest([docs], settings)  # a lost segment is re-embedded by a rebuild, not patched over
    r = ingest([], settings, rebuild=True)
    assert len(r.added) == N_SAMPLE + 1
    assert pipeline.search("tokens", settings, embedder=EMB).hits


def test_a_ctrl_c_while_workers_start_is_held_back_then_delivered_once() -> None:
    """A SIGINT that the kernel hands to another thread (BLAS, ONNX Runtime) while the parse
    workers start is not raised until they have started: one raised mid-start left a worker
    reading half its start-up data (an EOFError traceback on the terminal, seen in CI).

    Deterministic: the other thread signals itself, so the C handler has run when it says so
    (raise() semantics); the main thread then takes the GIL back, which makes it run Python's
    handler at its next instruction, inside the block."""
    import signal
    import threading
    import time

    from ragcli.ingest_local import _sigint_deferred

    go, sent = threading.Event(), threading.Event()

    def other_thread() -> None:  # started before the block, so it does not block SIGINT (a BLAS worker)
        go.wait(60)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        sent.set()

    # Python's own Ctrl-C handler, whatever this process inherited (a shell's background job,
    # as CI may run the suite in, starts with SIGINT ignored)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    t = threading.Thread(target=other_thread)
    t.start()
    raised_inside = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with _sigint_deferred():
                try:
                    go.set()
                    assert sent.wait(60)
                    t.join(60)
                    for _ in range(5):  # more instructions and GIL hand-overs: Python's handler has run
                        time.sleep(0.001)
                except KeyboardInterrupt:
                    raised_inside = True
        assert not raised_inside
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_an_ignored_ctrl_c_stays_ignored_while_workers_start() -> None:
    import signal

    from ragcli.ingest_local import _sigint_deferred

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _sigint_deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize("before", [ChunkParams(name_in_header=False, page_headings=False), ChunkParams(page_headings=False)])
def test_index_built_before_a_header_field_existed_is_refused_with_the_rebuild_hint(
        docs: Path, settings, before: ChunkParams) -> None:
    ingest([docs], settings, params=before)  # as indexes from before were built
    with pytest.raises(StaleIndexError, match="rag ingest --rebuild"):
        ingest([docs], settings)
    assert pipeline.search("tokens", settings, embedder=EMB).hits  # it still answers searches
    r = ingest([docs], settings, rebuild=True)
    assert r.added and not r.failed
    with index.open(settings.index).reader() as st:
        assert st.info.chunking["name_in_header"] is True and st.info.chunking["page_headings"] is True
