"""Shared fixtures: every test gets its own index, config and data dirs under tmp_path.

Nothing touches the real home directory. Model files assembled from PyPI packages go to
one cache per test session (assembling the 491 MB GGUF once, not once per test).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import pg_server

ROOT = Path(__file__).resolve().parent.parent
# A loaded CI machine can take longer than ragcli's default 10 s to let a test connect to its
# throwaway PostgreSQL; the tests are about results, not about how busy the machine is.
os.environ.setdefault("PGCONNECT_TIMEOUT", "120")
SAMPLE = ROOT / "sample_corpus"

HASH_MODELS = """
[defaults]
embedder = "hash"
[embedder.hash]
description = "test double: hashed bag of words"
source = "builtin"
backend = "hash"
dim = 256
max_tokens = 256
[embedder.hash-slow]
description = "test double: hashed bag of words, 0.2 s per batch"
source = "builtin"
backend = "hash"
dim = 256
max_tokens = 256
delay = 0.2
"""


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    shared = os.environ.get("RAG_TEST_CACHE")  # reuse between runs: make test sets this
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("RAG_CACHE", str(model_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for var in ("RAG_INDEX", "RAG_MODEL", "RAG_EMBEDDER", "RAG_MODELS"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def _pg_server(tmp_path_factory) -> str:
    if not pg_server.available():
        pytest.skip(pg_server.REASON)
    with pg_server.start(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def pg_server_url(_pg_server: str) -> str:
    """A throwaway PostgreSQL 18 + pgvector server on 127.0.0.1 for the whole session; a test
    after the server stopped fails with its log, instead of a connection error."""
    if why := pg_server.died(_pg_server):
        pytest.fail(why)
    return _pg_server


_schemas = itertools.count(1)


@pytest.fixture
def pg_index(pg_server_url: str) -> str:
    """An index URL of its own for each test: a fresh schema on the session's server."""
    return f"{pg_server_url}?schema=t{os.getpid()}_{next(_schemas)}"


@pytest.fixture
def hash_models(tmp_path: Path) -> Path:
    """A models.toml that makes the hash test-double the default embedder."""
    p = tmp_path / "hash-models.toml"
    p.write_text(HASH_MODELS)
    return p


@pytest.fixture
def sample_env(hash_models: Path, tmp_path: Path) -> dict:
    """The environment of a ``rag`` run on a copy of sample_corpus/ ingested with the hash models."""
    import shutil

    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    e = {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}
    assert rag("ingest", str(d), env=e).returncode == 0
    return e


def rag(*args: str, stdin: str | bytes | None = None, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `rag` command in a new process (exit codes, stdin, no terminal)."""
    full_env = {**os.environ, **(env or {})}
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args], input=data, capture_output=True, env=full_env,
        cwd=cwd, timeout=timeout, stdin=None if data is not None else subprocess.DEVNULL,
    )
