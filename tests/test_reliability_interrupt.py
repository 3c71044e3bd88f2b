"""Interruption, damage, a full disk and concurrent commands: the index is never lost or mixed.

Real processes throughout (``python -m ragcli``), with the "hash-slow" test embedder (0.2 s
per batch, no torch) so that a kill lands while the ingest is reading, embedding or
committing. After every interruption the index must open, hold either the previous or
the new content (never a mix), answer searches, and accept the ingest again.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import pipeline, store
from ragcli.answer import AnswerParams
from ragcli.cli import app
from ragcli.config import resolve_settings
from ragcli.embedders import HashEmbedder
from ragcli.errors import IndexNotFoundError
from ragcli.generators import ScriptedGenerator
from ragcli.writer import open_for_write

from .conftest import HASH_MODELS, rag

# The hash double's cosines are lower than a real embedder's: gate on chunks only.
HASH_PARAMS = AnswerParams(min_sentence_similarity=0.0)
EMB = HashEmbedder(name="hash-slow")  # same name and id as the registry's, without the delay
WORDS = "river stone cloud maple orbit lantern copper meadow harbor signal velvet quartz".split()
KILL_TRIALS = 20


def write_corpus(d: Path, n_files: int, n_sentences: int, tag: str) -> Path:
    rng = random.Random(tag)
    d.mkdir(parents=True)
    for i in range(n_files):
        sents = [f"The {tag} note {i}.{j} says " + " ".join(rng.choice(WORDS) for _ in range(12)) + "."
                 for j in range(n_sentences)]
        (d / f"doc{i:02d}.md").write_text(f"# {tag} document {i}\n\n" + " ".join(sents) + "\n")
    return d


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """An index of the 'previous' corpus (template, copied per trial) and a bigger 'replacement'."""
    base = tmp_path_factory.mktemp("interrupt")
    models = base / "models.toml"
    models.write_text(HASH_MODELS)
    old = write_corpus(base / "old", 8, 20, "previous")
    new = write_corpus(base / "new", 30, 32, "replacement")  # 4 batches: 0.8 s of embedding
    template = base / "template"
    pipeline.ingest([str(old)], resolve_settings(index=template), embedder=EMB)
    with store.Store.open(template) as st:
        old_counts, old_gen = st.counts(), st.info.generation
    return {"base": base, "models": models, "old": old, "new": new, "template": template,
            "old_counts": old_counts, "old_gen": old_gen}


def env_for(world: dict) -> dict:
    return {**os.environ, "RAG_MODELS": str(world["models"]), "RAG_EMBEDDER": "hash-slow", "HF_HUB_OFFLINE": "1"}


def fresh_index(world: dict, name: str) -> Path:
    dst = world["base"] / name
    shutil.copytree(world["template"], dst)
    return dst


def start_ingest(world: dict, index: Path, *extra: str, src: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ragcli", "ingest", str(src or world["new"]), "--index", str(index), *extra],
        env=env_for(world), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for_lock(index: Path, pid: int, timeout: float = 30) -> None:
    """Until the ingest with ``pid`` holds the writer lock (it writes its pid into .lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (index / ".lock").read_text().strip() == str(pid):
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError("the ingest never took the writer lock")


def content_of(world: dict, index: Path, new: str = "add", rebuilt: bool = False) -> str:
    """'old' or 'new' after checking that counts, vectors and search agree on one complete
    version. ``new``: which replacement ran, "add" (old files kept) or "rebuild" (dropped);
    ``rebuilt``: the old content was rebuilt since (a later generation)."""
    settings = resolve_settings(index=index)
    st = pipeline.status(settings)  # also checks the FAISS file against the database
    counts = {k: st[k] for k in ("documents", "chunks", "spans", "pages")}
    if counts == world["old_counts"]:
        assert st["generation"] == world["old_gen"] or rebuilt
        for mode in ("lexical", "dense", "hybrid"):  # nothing of the new version is visible
            hits = pipeline.search("replacement note says river stone", settings, k=10, mode=mode, embedder=EMB).hits
            assert hits and all(h.chunk.source.startswith(str(world["old"]) + "/") for h in hits), mode
        return "old"
    assert counts == world[f"{new}_counts"], f"a mix of old and new content: {counts}"
    assert st["generation"] >= world[f"{new}_gen"]  # a re-run --rebuild commits again
    for mode in ("lexical", "dense", "hybrid"):
        hits = pipeline.search("replacement note says river stone", settings, k=5, mode=mode, embedder=EMB).hits
        assert hits and hits[0].chunk.source.startswith(str(world["new"]) + "/"), mode
    return "new"


def new_version_counts(world: dict) -> None:
    """Run both replacement ingests once to completion: counts, generation, wall time."""
    if "add_counts" in world:
        return
    for key, extra in (("add", ()), ("rebuild", ("--rebuild",))):
        index = fresh_index(world, f"calibrate-{key}")
        t0 = time.monotonic()
        p = start_ingest(world, index, *extra)
        _, err = p.communicate(timeout=120)
        world[f"{key}_wall"] = time.monotonic() - t0
        assert p.returncode == 0, err
        with store.Store.open(index) as st:
            world[f"{key}_counts"], world[f"{key}_gen"] = st.counts(), st.info.generation
    world["wall"] = max(world["add_wall"], world["rebuild_wall"])


def wal_written(wal: Path) -> bool:
    """Whether a writer has started writing its transaction (the WAL is empty until then)."""
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False


def test_kill_9_at_random_moments_never_loses_or_mixes_the_index(world: dict) -> None:
    new_version_counts(world)
    wall = world["wall"]
    rng = random.Random(20240611)
    # 15 kills at delays spread over the whole run (startup, reading, embedding, commit,
    # exit); 5 aimed at the commit: 0-12 ms after the first write to the SQLite WAL.
    delays: list[float | None] = [rng.uniform(0.0, wall * 1.05) for _ in range(KILL_TRIALS - 5)] + [None] * 5
    outcomes: dict[str, int] = {}
    for trial, delay in enumerate(delays):
        index = fresh_index(world, f"kill-{trial}")
        wal = index / (store.DB_NAME + "-wal")
        rebuild = trial % 2 == 1
        p = start_ingest(world, index, *(["--rebuild"] if rebuild else []))
        if delay is None:
            while p.poll() is None and not wal_written(wal):
                time.sleep(0.001)
            delay = rng.uniform(0.0, 0.012)
        in_commit = wal_written(wal)
        time.sleep(delay)
        p.kill()
        p.communicate(timeout=60)
        kind = "rebuild" if rebuild else "add"
        side = content_of(world, index, kind)
        if p.returncode == 0:
            outcome = "finished before the kill"
        elif side == "new":
            outcome = "killed after commit"
        elif in_commit:
            outcome = "killed inside the commit"
        else:
            outcome = "killed before commit"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if trial % 10 == 0:  # the real commands too, not only the functions behind them
            r = rag("status", "--json", "--index", str(index), env=env_for(world))
            assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
            assert json.loads(r.stdout)["documents"] == world[f"{'old' if side == 'old' else kind}_counts"]["documents"]
            r = rag("search", "note says river", "--index", str(index), env=env_for(world))
            assert r.returncode == 0 and r.stdout.strip(), r.stderr
        # the same ingest again completes and gives the new content
        pipeline.ingest([str(world["new"])], resolve_settings(index=index), embedder=EMB, rebuild=rebuild)
        assert content_of(world, index, kind) == "new"
        shutil.rmtree(index)
    print(f"kill -9 outcomes over {KILL_TRIALS} trials: {outcomes}")
    assert sum(outcomes.values()) == KILL_TRIALS
    assert outcomes.get("killed before commit", 0) >= 3  # the kills did land mid-ingest
    assert outcomes.get("killed inside the commit", 0) >= 1


def test_kill_9_during_the_first_ingest_leaves_no_broken_index(world: dict) -> None:
    new_version_counts(world)
    rng = random.Random(7)
    for trial in range(3):
        index = world["base"] / f"first-{trial}"
        p = start_ingest(world, index, src=world["old"])
        time.sleep(rng.uniform(0.2, 1.0))
        p.kill()
        p.communicate(timeout=60)
        r = rag("status", "--index", str(index), env=env_for(world))
        assert b"Traceback" not in r.stderr
        if r.returncode != 0:  # nothing committed yet: "not built", with the command to run
            assert r.returncode == 1 and b"rag ingest" in r.stderr, r.stderr
        pipeline.ingest([str(world["old"])], resolve_settings(index=index), embedder=EMB)
        assert content_of(world, index) == "old"


def test_database_created_without_metadata_is_completed_by_the_next_ingest(world: dict, tmp_path: Path) -> None:
    """The state a kill between creating the tables and writing meta used to leave behind."""
    index = tmp_path / "idx"
    index.mkdir()
    con = sqlite3.connect(index / store.DB_NAME)
    con.executescript(store._SCHEMA)
    con.close()
    r = rag("ingest", str(world["old"]), "--index", str(index), env=env_for(world))
    assert r.returncode == 0, r.stderr
    assert content_of(world, index) == "old"


def test_generation_zero_index_says_it_was_never_built(tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "idx")
    settings.index_dir.mkdir()
    con, _ = open_for_write(settings.index_dir, pipeline._index_info(EMB, pipeline.ChunkParams()))
    con.close()
    with pytest.raises(IndexNotFoundError, match="not been built yet"):
        pipeline.status(settings)


@pytest.mark.parametrize("after", [0.05, 0.4, 0.8])
def test_ctrl_c_exits_130_with_a_short_message_and_keeps_the_index(world: dict, after: float) -> None:
    new_version_counts(world)
    index = fresh_index(world, f"sigint-{after}")
    p = start_ingest(world, index)
    wait_for_lock(index, p.pid)
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    if p.returncode == 0:  # finished first (a slow machine); nothing to check
        pytest.skip("the ingest finished before Ctrl-C")
    assert p.returncode == 130, err
    assert b"Traceback" not in err and b"interrupted" in err and len(err.splitlines()) <= 2
    assert content_of(world, index) == "old"
    r = rag("ingest", str(world["new"]), "--index", str(index), env=env_for(world))
    assert r.returncode == 0, r.stderr
    assert content_of(world, index) == "new"


# -- damage ------------------------------------------------------------------------------------


def _damage(index: Path, how: str) -> None:
    db = index / store.DB_NAME
    faiss_file = next(index.glob("vectors-*.faiss"))
    rng = random.Random(how)
    if how == "truncated vectors":
        faiss_file.write_bytes(faiss_file.read_bytes()[:1000])
    elif how == "garbage vectors":
        faiss_file.write_bytes(rng.randbytes(faiss_file.stat().st_size))
    elif how == "missing vectors":
        faiss_file.unlink()
    elif how == "garbage database":
        db.write_bytes(rng.randbytes(db.stat().st_size))
    elif how == "garbage inside database":
        data = bytearray(db.read_bytes())
        n = len(data)
        data[n // 2 : n // 2 + n // 4] = rng.randbytes(n // 4)
        db.write_bytes(bytes(data))
    elif how == "truncated database":
        os.truncate(db, db.stat().st_size // 2)
    elif how == "garbage metadata":
        con = sqlite3.connect(db)
        con.execute("UPDATE meta SET value = 'many' WHERE key = 'dim'")
        con.commit()
        con.close()


DAMAGE = ["truncated vectors", "garbage vectors", "missing vectors", "garbage database",
          "garbage inside database", "truncated database", "garbage metadata"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_index_is_reported_with_the_command_that_rebuilds_it(world: dict, how: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "idx"
    shutil.copytree(world["template"], index)
    _damage(index, how)
    monkeypatch.setenv("RAG_MODELS", str(world["models"]))
    monkeypatch.setenv("RAG_EMBEDDER", "hash-slow")
    runner = CliRunner()
    hint = ""
    for args in (["status"], ["search", "previous note says river"], ["ask", "what does the previous note say"]):
        r = runner.invoke(app, [*args, "--index", str(index)])
        assert r.exit_code == 1, (args, r.output, r.stderr)
        assert "damaged" in r.stderr and "rag ingest --rebuild" in r.stderr, r.stderr
        assert "Traceback" not in r.output and "internal error" not in r.stderr
        hint = re.search(r"Rebuild it: (rag ingest --rebuild .*)$", r.stderr.strip()).group(1)
    r = runner.invoke(app, ["status", "--index", str(index), "--debug"])
    assert "Traceback" in r.stderr  # --debug shows where it was detected
    # the printed command works (PATH... stands for the folders when the database lost them)
    cmd = shlex.split(hint.replace("PATH...", str(world["old"])))
    r = runner.invoke(app, cmd[1:])
    assert r.exit_code == 0, r.output
    assert content_of(world, index, rebuilt=True) == "old"


# -- a full disk -------------------------------------------------------------------------------


def test_file_size_limit_mid_ingest_fails_clearly_and_keeps_the_index(world: dict) -> None:
    """RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk fails them."""
    new_version_counts(world)
    for limit in (20_000, 150_000, 400_000):  # fails opening the WAL / writing FAISS / writing SQLite
        index = fresh_index(world, f"fsize-{limit}")

        def cap(limit: int = limit) -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        r = subprocess.run([sys.executable, "-m", "ragcli", "ingest", str(world["new"]), "--index", str(index)],
                           env=env_for(world), capture_output=True, preexec_fn=cap, timeout=120)
        assert r.returncode == 1, (limit, r.stderr)
        err = r.stderr.decode()
        assert "cannot write the index" in err and "previous index is intact" in err, err
        assert "Traceback" not in err and "internal error" not in err
        assert content_of(world, index) == "old"


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs `unshare -rm` to mount a small tmpfs")
def test_disk_full_on_a_real_small_tmpfs(world: dict, tmp_path: Path) -> None:
    """A 1 MB tmpfs (private mount namespace): the replacement ingest meets ENOSPC for real."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    index = mnt / "idx"
    py = shlex.quote(sys.executable)
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {mnt} && "
        f"{py} -m ragcli ingest {world['old']} --index {index} >/dev/null && "
        f"cp -r {index} {tmp_path}/before && "
        f"{py} -m ragcli ingest {world['new']} --index {index}; echo \"rc=$?\"; "
        f"cp -r {index} {tmp_path}/after"
    )
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env_for(world), capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert "rc=1" in r.stdout.decode(), (r.stdout, err)
    assert "disk" in err and "previous index is intact" in err and "Traceback" not in err, err
    assert content_of(world, tmp_path / "after") == "old"


# -- concurrency -------------------------------------------------------------------------------


def test_second_ingest_waits_and_no_wait_fails_fast(world: dict, tmp_path: Path) -> None:
    new_version_counts(world)
    index = fresh_index(world, "two-writers")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "a.md").write_text("# Extra\n\nA third writer adds this sentence about harbors.\n")
    first = start_ingest(world, index)
    wait_for_lock(index, first.pid)
    t0 = time.monotonic()
    busy = rag("ingest", str(extra), "--no-wait", "--index", str(index), env=env_for(world))
    assert busy.returncode == 1 and time.monotonic() - t0 < world["wall"] + 5
    assert f"another ingest (pid {first.pid}) is writing".encode() in busy.stderr and b"Traceback" not in busy.stderr
    second = start_ingest(world, index, src=extra)
    _, err2 = second.communicate(timeout=120)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert b"waiting for another ingest" in err2 and str(first.pid).encode() in err2
    with store.Store.open(index) as st:
        counts = st.counts()
        assert st.vector_index().ntotal == counts["chunks"]
        assert st.info.generation == world["old_gen"] + 2  # two commits, one after the other
    assert counts["documents"] == world["add_counts"]["documents"] + 1


def test_readers_during_an_ingest_see_the_last_complete_index(world: dict) -> None:
    new_version_counts(world)
    index = fresh_index(world, "readers")
    settings = resolve_settings(index=index)
    allowed = {json.dumps(world["old_counts"], sort_keys=True), json.dumps(world["add_counts"], sort_keys=True)}
    seen: list[str] = []
    reply = '{"answer": "The previous note says river things.", "evidence": [1]}'
    writer = start_ingest(world, index)
    wait_for_lock(index, writer.pid)
    cli_reads: list[subprocess.CompletedProcess] = []
    t = threading.Thread(target=lambda: cli_reads.extend(
        [rag("search", "previous note says", "--json", "--index", str(index), env=env_for(world)),
         rag("status", "--json", "--index", str(index), env=env_for(world))]))
    t.start()
    while writer.poll() is None:
        st = pipeline.status(settings)
        counts = {k: st[k] for k in ("documents", "chunks", "spans", "pages")}
        assert json.dumps(counts, sort_keys=True) in allowed, counts
        seen.append("old" if counts == world["old_counts"] else "new")
        assert pipeline.search("previous note says river", settings, k=3, embedder=EMB).hits
        ans = pipeline.ask("What does the previous note 3.4 say?", settings, embedder=EMB,
                           generator=ScriptedGenerator(reply), params=HASH_PARAMS)
        assert ans.status == "answered" and ans.citations[0].source.startswith(str(world["old"]))
    t.join()
    assert writer.returncode == 0
    assert "old" in seen
    for r in cli_reads:
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    assert json.loads(cli_reads[1].stdout)["documents"] in (world["old_counts"]["documents"],
                                                           world["add_counts"]["documents"])
