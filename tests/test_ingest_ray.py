"""``rag ingest --ray``: the same index, the same incremental runs and the same report as a
local ingest, with parsing, chunking and embedding done by actors on a real Ray cluster.

One local cluster for the module (2 CPUs, and 1 logical GPU, which is how a CPU-only machine
tests that embedding actors ask Ray for a GPU); in-process ingests join it, the `rag`
subprocesses reach it by its address (``--ray HOST:PORT``) with the module's auth token.
The hashing embedder everywhere but one slow test with the default ONNX embedder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragcli import index, pipeline
from ragcli.config import resolve_settings
from ragcli.models.embedders import HashEmbedder

from .conftest import SAMPLE, rag

EMB = HashEmbedder()
N_SAMPLE = sum(1 for p in SAMPLE.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def ray_address() -> str:
    """A local Ray cluster for this module's tests; its GCS address."""
    with pytest.MonkeyPatch.context() as mp:
        # the `rag` subprocesses join with this token (ours: the tests change HOME, where Ray keeps its
        # own); set before Ray is imported, which reads the mode once
        mp.setenv("RAY_AUTH_MODE", "token")
        mp.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]' (make test does)")
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, object_store_memory=100 << 20)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    return d


@pytest.fixture
def env(hash_models: Path) -> dict:
    return {"RAG_MODELS": str(hash_models)}


def snapshot(location) -> dict[tuple, tuple]:
    """Everything a search can see, by content: {(source, page, start, end): (chunk, document
    fields, vector)}; chunk ids and ingest times left out."""
    with index.open(location).reader() as st:
        ids = [r[0] for r in st.con.execute("SELECT id FROM chunks")]
        rows = st.chunks(ids)
        vecs = st.vectors(ids)
        assert len(rows) == len(ids) == st.counts()["chunks"] > 0
    out = {}
    for cid, v in zip(ids, vecs, strict=True):
        chunk, doc = rows[cid]
        fields = (doc.path, doc.root, doc.sha256, doc.kind, doc.encoding, doc.size, doc.mtime, doc.n_pages)
        out[(chunk.source, chunk.page, chunk.start, chunk.end)] = (chunk, fields, np.asarray(v, dtype=np.float32))
    return out


def assert_same_index(a, b, atol: float = 1e-6) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb)
    for key, (chunk, doc, vec) in sa.items():
        assert sb[key][0] == chunk and sb[key][1] == doc, key
        np.testing.assert_allclose(sb[key][2], vec, atol=atol, err_msg=str(key))


def ingest(paths, location, **kw):
    settings = resolve_settings(index=location)
    return pipeline.ingest([str(p) for p in paths], settings, embedder=kw.pop("embedder", EMB), **kw)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_ray_ingest_matches_a_local_ingest_chunk_for_chunk(ray_address: str, docs: Path, tmp_path: Path,
                                                             request, store: str) -> None:
    if store == "postgres":
        local = request.getfixturevalue("pg_index")
        remote = local + "_ray"  # a schema of its own
    else:
        local, remote = tmp_path / "local", tmp_path / "ray"
    mine = ingest([docs], local, batch_chunks=20)
    theirs = ingest([docs], remote, batch_chunks=20, ray=ray_address)
    assert len(theirs.added) == N_SAMPLE and not theirs.failed and not theirs.failed
    assert (theirs.added, theirs.chunks, theirs.batches) == (mine.added, mine.chunks, mine.batches)
    assert theirs.timings["workers"] == 2.0 and theirs.timings["embed_s"] > 0  # measured on the actors
    assert_same_index(local, remote)


def test_a_second_ray_run_is_incremental_and_reports_like_a_local_one(ray_address: str, docs: Path, tmp_path: Path,
                                                                      env: dict) -> None:
    idx, ref = str(tmp_path / "idx"), str(tmp_path / "ref")
    first = rag("ingest", str(docs), "--index", idx, "--ray", ray_address, "--json", env=env)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stderr == b""  # Ray's own logging stays quiet
    assert len(json.loads(first.stdout)["added"]) == N_SAMPLE

    changed, gone, new = docs / "tokenization.md", docs / "sampling_notes.txt", docs / "new.md"
    changed.write_text(changed.read_text() + "\n\nZebra crossings are painted white. Penguins cannot fly.\n")
    gone.unlink()
    new.write_text("# New\n\nA brand new file about llamas and alpacas.\n")
    r = rag("ingest", str(docs), "--index", idx, "--ray", ray_address, "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    assert rep["updated"] == [str(changed)] and rep["removed"] == [str(gone)] and rep["added"] == [str(new)]
    assert len(rep["unchanged"]) == N_SAMPLE - 2 and rep["failed"] == [] and rep["resumed"] == []

    local = rag("ingest", str(docs), "--index", ref, "--json", env=env)
    assert local.returncode == 0, local.stderr.decode()
    local_rep = json.loads(local.stdout)
    assert set(rep) == set(local_rep)  # the same report
    assert set(local_rep["timings"]) <= set(rep["timings"]) and "cluster_start_s" in rep["timings"]
    assert_same_index(ref, idx)  # the same index as one built locally from the files as they are now

    again = json.loads(rag("ingest", str(docs), "--index", idx, "--ray", ray_address, "--json", env=env).stdout)
    assert len(again["unchanged"]) == N_SAMPLE and again["chunks"] == 0 and again["timings"]["workers"] == 0
    human = rag("ingest", str(docs), "--index", idx, "--ray", ray_address, env=env)
    assert human.returncode == 0 and f"0 added, 0 updated, {N_SAMPLE} unchanged" in human.stdout.decode()


def test_a_bad_file_fails_on_its_own(ray_address: str, tmp_path: Path, env: dict) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "good.md").write_text("# Good\n\nThis file is fine and has text.\n")
    (d / "empty.txt").write_text("")
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a PDF at all\n")
    r = rag("ingest", str(d), "--index", str(tmp_path / "idx"), "--ray", ray_address, env=env)
    assert r.returncode == 3, r.stderr.decode()
    err = r.stderr.decode()
    assert "failed: " in err and "empty.txt" in err and "broken.pdf" in err and "Traceback" not in err
    assert "1 added" in r.stdout.decode() and "2 failed" in r.stdout.decode()


def test_an_interrupted_ray_ingest_keeps_its_batches_and_the_next_run_resumes(ray_address: str, docs: Path,
                                                                             tmp_path: Path, env: dict) -> None:
    idx = str(tmp_path / "idx")
    # killed (SIGKILL, as a power cut) right after its second batch committed; a batch per file
    killed = rag("ingest", str(docs), "--index", idx, "--ray", ray_address, "--batch-size", "1",
                 env={**env, "RAGCLI_CRASH_AT": "batch:db-committed@2"})
    assert killed.returncode == -9, killed.stderr.decode()
    r = rag("ingest", str(docs), "--index", idx, "--ray", ray_address, "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    first_two = sorted(str(p) for p in docs.iterdir())[:2]  # plan order: the walk's, by name
    assert rep["resumed"] == rep["unchanged"] == first_two and len(rep["added"]) == N_SAMPLE - 2
    ref = tmp_path / "ref"
    ingest([docs], ref)
    assert_same_index(ref, idx)


class GpuProbe(HashEmbedder):
    """The hashing double, noting on which GPUs Ray lets each actor run (a file per process)."""

    def __init__(self, probe_dir: Path) -> None:
        super().__init__(device="cuda:1")
        self.probe_dir = str(probe_dir)

    def embed(self, texts):
        import ray

        seen = {"gpu_ids": [str(g) for g in ray.get_gpu_ids()], "device": self.device,
                "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}
        Path(self.probe_dir, f"{os.getpid()}.json").write_text(json.dumps(seen))
        return super().embed(texts)


@pytest.mark.parametrize("workers", [None, 2])
def test_embedding_actors_ask_ray_for_the_gpu_when_the_device_is_cuda(ray_address: str, docs: Path, tmp_path: Path,
                                                                     workers: int | None) -> None:
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the probe travels by value
    probes = tmp_path / "probes"
    probes.mkdir()
    rep = ingest([docs], tmp_path / "idx", embedder=GpuProbe(probes), ray=ray_address, workers=workers)
    assert len(rep.added) == N_SAMPLE
    assert rep.timings["workers"] == (workers or 1)  # one actor per GPU, or the number asked for, sharing it
    seen = [json.loads(p.read_text()) for p in probes.iterdir()]
    assert len(seen) == (workers or 1)
    for s in seen:  # its own GPU, made visible to it alone by Ray; the device then "cuda", whatever the index
        assert s["gpu_ids"] == ["0"] and s["CUDA_VISIBLE_DEVICES"] == "0" and s["device"] == "cuda"


def test_a_cuda_embedder_on_a_cluster_without_gpus_is_refused(tmp_path: Path, docs: Path, hash_models: Path) -> None:
    """A fresh local cluster (``--ray`` alone) on this machine, with no GPU to offer."""
    pytest.importorskip("ray")
    gpu_models = tmp_path / "gpu.toml"
    gpu_models.write_text(hash_models.read_text().replace('[embedder.hash]\n', '[embedder.hash]\ndevice = "cuda"\n'))
    r = rag("ingest", str(docs), "--index", str(tmp_path / "idx"), "--ray", env={"RAG_MODELS": str(gpu_models),
                                                                                  "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert err.startswith("rag: error:") and "has no GPUs" in err and 'device = "cpu"' in err and "\n" not in err


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path: Path, docs: Path, env: dict) -> None:
    idx = tmp_path / "idx"
    hide_ray = "import sys; sys.modules['ray'] = None; from ragcli.cli import run; sys.argv[0] = 'rag'; run()"
    r = subprocess.run([sys.executable, "-c", hide_ray, "ingest", str(docs), "--index", str(idx), "--ray"],
                       capture_output=True, env={**os.environ, **env}, timeout=120)
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode() == "rag: error: rag ingest --ray needs Ray, which is not installed here: " \
                                "pip install 'ragcli[ray]'\n"
    assert not idx.exists()  # refused before anything was written


def test_a_path_after_ray_is_a_usage_error(tmp_path: Path, docs: Path, env: dict) -> None:
    r = rag("ingest", "--ray", str(docs), "--index", str(tmp_path / "idx"), env=env)
    assert r.returncode == 2
    assert f"rag ingest {docs} --ray [ADDRESS]" in r.stderr.decode()


def test_a_local_ingest_never_imports_ray(tmp_path: Path, docs: Path, env: dict) -> None:
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "ragcli", "ingest", str(docs), "--index",
                        str(tmp_path / "idx")], capture_output=True, env={**os.environ, **env}, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", r.stderr.decode(), flags=re.M)
    assert "ragcli.ingest" in imported and not [m for m in imported if m.split(".")[0] == "ray"]


def test_a_worker_without_the_model_files_names_its_node_and_the_fix(tmp_path: Path) -> None:
    from ragcli.errors import ModelUnavailableError
    from ragcli.ingest_ray import _check_model_files

    missing = tmp_path / "models" / "all-minilm-l6-v2-int8.onnx"
    with pytest.raises(ModelUnavailableError, match=rf"Ray worker on {re.escape(socket.gethostname())} has no "
                       rf"{re.escape(str(missing))}: .*rag models --fetch. with the same RAG_CACHE"):
        _check_model_files(EMB, [str(missing)])


@pytest.mark.slow
def test_a_ray_ingest_with_the_onnx_embedder_matches_a_local_one(ray_address: str, tmp_path: Path) -> None:
    """The real embedder (fp32 ONNX), loaded once per actor: an actor embeds one file's chunks, a
    local ingest a batch of many files', and the vectors agree to float precision. (Not the int8
    default: it quantizes activations per batch, so its vectors move with the batch they were in,
    cosine >= 0.99, in a local ingest too when --batch-size changes.)"""
    local, remote = tmp_path / "local", tmp_path / "ray"
    fp32 = ("--embedder", "all-minilm-l6-v2")
    assert rag("ingest", str(SAMPLE), "--index", str(local), *fp32).returncode == 0
    r = rag("ingest", str(SAMPLE), "--index", str(remote), *fp32, "--ray", ray_address, "--json")
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    assert len(rep["added"]) == N_SAMPLE and rep["timings"]["embedder_load_s"] > 0
    assert_same_index(local, remote, atol=2e-5)
