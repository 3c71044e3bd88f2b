"""What a person sees at a terminal, read from a real pseudo-terminal (``tests/tools/pty_run``),
and proof that pipes and --json get the same bytes with or without one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import HASH_MODELS, SAMPLE, rag
from .tools.pty_run import ctrl_c, run_rag


@pytest.fixture(scope="module")
def real_index(tmp_path_factory) -> Path:
    """sample_corpus/ ingested with the real default embedder."""
    base = tmp_path_factory.mktemp("term")
    docs = base / "docs"
    shutil.copytree(SAMPLE, docs)
    r = rag("ingest", str(docs), "--index", str(base / "index"), "--json")
    assert r.returncode == 0, r.stderr.decode()
    return base / "index"


@pytest.fixture
def hash_corpus(tmp_path: Path) -> tuple[Path, dict]:
    models = tmp_path / "models.toml"
    models.write_text(HASH_MODELS)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\n" + "".join(
            f"Sentence {j} of note {i} talks about lighthouse number {i * 100 + j}. " for j in range(40)))
    return docs, {"RAG_MODELS": str(models)}


# -- rag ask ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_shows_what_it_waits_for_on_the_terminal_then_erases_it(real_index: Path) -> None:
    q = "How many tokens are in GPT-2's vocabulary?"
    seen = run_rag(["ask", q, "--index", str(real_index)])
    assert seen.code == 0, seen.terminal
    assert b"searching the index\xe2\x80\xa6" in seen.terminal
    assert b"reading " in seen.terminal and b" passages\xe2\x80\xa6" in seen.terminal
    assert seen.terminal.endswith(b"\r\x1b[K"), seen.terminal  # erased: the terminal is left clean
    plain = rag("ask", q, "--index", str(real_index))  # no terminal anywhere
    assert plain.returncode == 0
    assert seen.stdout == plain.stdout  # stdout a pipe: the same bytes with a terminal on stderr
    assert b"passages" not in plain.stderr and b"searching" not in plain.stderr


@pytest.mark.slow
@pytest.mark.parametrize("stdout_tty", [False, True])
def test_ctrl_c_during_ask_exits_130_at_once_with_an_ask_message(real_index: Path, stdout_tty: bool) -> None:
    seen = run_rag(["ask", "How many tokens are in GPT-2's vocabulary?", "--index", str(real_index)],
                   stdout_tty=stdout_tty, until=b"passages\xe2\x80\xa6", then=ctrl_c)
    assert seen.code == 130, seen.terminal
    assert b"rag: interrupted; no answer was given\n" in seen.terminal
    assert b"ingest" not in seen.terminal and b"Traceback" not in seen.terminal
    # the model is loading or reading the prompt in C code; Python's own handler would wait for it.
    # "At once" here is a wide bound: the exit takes milliseconds, a loaded test machine is slow.
    assert seen.after_signal_s is not None and seen.after_signal_s < 1.5, seen.after_signal_s


def test_off_topic_ask_stdout_is_the_same_with_a_terminal_on_stderr(real_index: Path) -> None:
    for args in (["ask", "What is the capital of Peru?"], ["ask", "What is the capital of Peru?", "--json"],
                 ["search", "GGUF quantization"], ["search", "GGUF", "--json"], ["status"], ["status", "--json"]):
        full = [*args, "--index", str(real_index)]
        seen, plain = run_rag(full), rag(*full)
        assert seen.code == plain.returncode, (args, seen.terminal)
        assert _timeless(seen.stdout) == _timeless(plain.stdout), args
        assert b"\x1b" not in plain.stderr, args


def _timeless(out: bytes) -> bytes:
    """JSON lines without their ``timings`` (seconds differ between any two runs); else as they are."""
    if not out.startswith(b"{"):
        return out
    rows = [json.loads(line) for line in out.splitlines()]
    for r in rows:
        r.pop("timings", None)
    return json.dumps(rows).encode()


# -- rag ingest -------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_ingest_stdout_is_the_same_with_a_terminal_on_stderr(hash_corpus, tmp_path: Path, as_json: bool) -> None:
    docs, env = hash_corpus
    extra = ["--json"] if as_json else []
    seen = run_rag(["ingest", str(docs), "--index", str(tmp_path / "a"), *extra], env=env)
    plain = rag("ingest", str(docs), "--index", str(tmp_path / "b"), *extra, env=env)
    assert seen.code == plain.returncode == 0, seen.terminal

    def same(out: bytes) -> bytes:  # what differs between any two runs: the index path, the time taken
        if as_json:
            d = json.loads(out)
            d.pop("seconds"), d.pop("timings"), d.pop("index")
            return json.dumps(d).encode()
        return out.split(b" chunks embedded in")[0]
    assert same(seen.stdout) == same(plain.stdout)
    assert b"\x1b" not in plain.stderr and b"\x1b" not in plain.stdout and b"\x1b" not in seen.stdout
