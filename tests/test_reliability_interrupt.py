"""Interruption, damage, a full disk and concurrent commands: the index is never lost or mixed.

Real processes throughout (``python -m ragcli``). An ingest commits in atomic batches, so
after any interruption the index must hold the previous content plus the first *j* whole
batches of the new one (for ``--rebuild``: the previous content until the switch-over,
then the new one), never part of a batch; it must open, agree with its vector segments,
answer searches, and the same ingest run again must complete and report what it resumed.

The crash tests kill the writer at each named crash point (``ragcli/index/crash.py``) and
check the exact expected state: deterministic, whatever the disk's speed. A randomised
``kill -9`` keeps fuzzing the same invariant, with no quota on where the kills land.
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

from ragcli import index, pipeline
from ragcli.answer import AnswerParams
from ragcli.chunking import ChunkParams
from ragcli.cli import app
from ragcli.config import resolve_settings
from ragcli.errors import IndexNotFoundError
from ragcli.index import crash
from ragcli.index.sqlite.schema import SCHEMA, current_db
from ragcli.ingest import index_info
from ragcli.models.embedders import HashEmbedder
from ragcli.models.generators import ScriptedGenerator
from ragcli.retrieval import search as retrieve

from .conftest import HASH_MODELS, rag
from .tools.signals import sigint_default

# The hash double's cosines are lower than a real embedder's: gate on chunks only.
HASH_PARAMS = AnswerParams(min_sentence_similarity=0.0)
EMB = HashEmbedder(name="hash-slow")  # same name and id as the registry's, without the delay
WORDS = "river stone cloud maple orbit lantern copper meadow harbor signal velvet quartz".split()
KILL_TRIALS = 12
BATCH = "12"  # chunks per batch: the replacement corpus commits in about 10 batches, then merges


def write_corpus(d: Path, n_files: int, n_sentences: int, tag: str) -> Path:
    rng = random.Random(tag)
    d.mkdir(parents=True)
    for i in range(n_files):
        sents = [f"The {tag} note {i}.{j} says " + " ".join(rng.choice(WORDS) for _ in range(12)) + "."
                 for j in range(n_sentences)]
        (d / f"doc{i:02d}.md").write_text(f"# {tag} document {i}\n\n" + " ".join(sents) + "\n")
    return d


def doc_chunks(location: Path, query: str = "") -> dict[str, int] | tuple[dict[str, int], set[str]]:
    """{path: chunks} of the index's last committed state (opening it checks the vectors);
    with ``query``, also the sources a lexical search finds, in the same snapshot."""
    with index.open(location).reader() as st:
        ids = [r[0] for r in st.con.execute("SELECT id FROM chunks")]
        rows = st.chunks(ids)
        out: dict[str, int] = {}
        for chunk, _doc in rows.values():
            out[chunk.source] = out.get(chunk.source, 0) + 1
        assert st.counts()["chunks"] == len(ids) == st.vector_set.live
        if not query:
            return out
        return out, {h.chunk.source for h in retrieve(st, EMB, query, 10, "lexical")}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """An index of the 'previous' corpus (template, copied per trial), a bigger 'replacement',
    and the replacement's complete per-file chunk counts and batch boundaries."""
    base = tmp_path_factory.mktemp("interrupt")
    models = base / "models.toml"
    models.write_text(HASH_MODELS)
    fast = base / "fast-models.toml"  # same embedder, no delay: for the deterministic crash points
    fast.write_text(HASH_MODELS.replace("delay = 0.2", "delay = 0.0"))
    old = write_corpus(base / "old", 8, 20, "previous")
    new = write_corpus(base / "new", 30, 32, "replacement")
    template = base / "template"
    pipeline.ingest([str(old)], resolve_settings(index=template), embedder=EMB)
    ref = base / "reference"
    pipeline.ingest([str(new)], resolve_settings(index=ref), embedder=EMB, batch_chunks=int(BATCH))
    new_chunks = doc_chunks(ref)
    prefixes, acc, pending = [set()], set(), 0  # files committed after batch 0, 1, 2, ...
    for path in sorted(new_chunks):
        acc.add(path)
        pending += new_chunks[path]
        if pending >= int(BATCH):
            prefixes.append(set(acc))
            pending = 0
    if pending:
        prefixes.append(set(acc))
    with index.open(template).reader() as st:
        old_gen = st.info.generation
    return {"base": base, "models": models, "fast": fast, "old": old, "new": new, "template": template,
            "old_chunks": doc_chunks(template), "new_chunks": new_chunks, "prefixes": prefixes,
            "old_gen": old_gen}


def env_for(world: dict, fast: bool = False) -> dict:
    return {**os.environ, "RAG_MODELS": str(world["fast" if fast else "models"]), "RAG_EMBEDDER": "hash-slow",
            "HF_HUB_OFFLINE": "1"}


def fresh_index(world: dict, name: str) -> Path:
    dst = world["base"] / name
    shutil.copytree(world["template"], dst)
    return dst


def start_ingest(world: dict, location: Path, *extra: str, src: Path | None = None, fast: bool = False,
                 env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ragcli", "ingest", str(src or world["new"]), "--index", str(location),
         "--batch-size", BATCH, "--json", *extra],
        env={**env_for(world, fast), **(env or {})}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, preexec_fn=sigint_default,
    )


def wait_for_lock(location: Path, pid: int, timeout: float = 30) -> None:
    """Until the ingest with ``pid`` holds the writer lock (it writes its pid into .lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (location / ".lock").read_text().strip() == str(pid):
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError("the ingest never took the writer lock")


def state_of(world: dict, location: Path, rebuild: bool = False) -> int:
    """How many whole batches of the replacement the index holds (-1: the rebuilt index,
    replacement only), after checking that it is exactly the previous content plus that
    many whole batches: every file complete, nothing else, searches agree."""
    got, found = doc_chunks(location, "replacement note says river stone")
    new_files = {p for p in got if p.startswith(str(world["new"]) + "/")}
    for p in new_files:
        assert got[p] == world["new_chunks"][p], f"{p} is incomplete: {got[p]} of {world['new_chunks'][p]} chunks"
    old_part = {p: n for p, n in got.items() if p not in new_files}
    assert {p for p in found if "/new/" in p} <= new_files
    if rebuild and new_files and not old_part:
        assert new_files == set(world["new_chunks"]), "a rebuild became current before it was complete"
        return -1
    assert old_part == world["old_chunks"], "the previous content changed"
    assert new_files in world["prefixes"], f"not a prefix of whole batches: {sorted(new_files)}"
    if rebuild:
        assert not new_files, "part of a rebuild is visible before the switch-over"
    return world["prefixes"].index(new_files)


def full(world: dict, rebuild: bool) -> int:
    return -1 if rebuild else len(world["prefixes"]) - 1


def assert_only_named_files(location: Path) -> None:
    """After a finished ingest the directory holds the current database, the files it names, the
    marker, the lock and the pointers: everything a killed writer left was recorded, and removed."""
    db = current_db(location)
    con = sqlite3.connect(db)
    try:
        named = {f"{n}.{k}.npy" for (n,) in con.execute("SELECT name FROM segments") for k in ("vec", "ids")}
        ann = con.execute("SELECT value FROM meta WHERE key = 'ann'").fetchone()
        named |= {json.loads(ann[0])["file"]} if ann else set()
        assert con.execute("SELECT * FROM loose_files").fetchall() == []
    finally:
        con.close()
    assert set(os.listdir(location / "segments")) == named
    top = set(os.listdir(location)) - {"segments"}
    assert top <= {"RAGCLI_INDEX", ".lock", "CURRENT", db.name, f"{db.name}-wal", f"{db.name}-shm"}, top
    assert {"RAGCLI_INDEX", ".lock", db.name} <= top


def finish_and_check(world: dict, location: Path, rebuild: bool, committed: int) -> None:
    """The same ingest run again completes, says which files it found already committed, and
    leaves none of the files the killed run wrote behind."""
    p = start_ingest(world, location, *(["--rebuild"] if rebuild else []), fast=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert state_of(world, location, rebuild) == full(world, rebuild)
    assert_only_named_files(location)
    report = json.loads(out)
    if rebuild or committed == 0:
        return
    if committed == full(world, False) and not report["resumed"]:
        return  # the killed run had already marked itself finished: nothing to resume
    assert set(report["resumed"]) == world["prefixes"][committed]


# -- crash points: deterministic ---------------------------------------------------------------

# (crash point, occurrence) -> batches of the replacement visible afterwards: in an ingest that
# adds to the index, and in a --rebuild (None: the previous index, -1: the rebuilt one)
CASES = [
    ("run:started", 1, 0, None),
    ("batch:intent-recorded", 1, 0, None),
    ("batch:intent-recorded", 3, 2, None),
    ("batch:vectors-written", 1, 0, None),
    ("batch:vectors-renamed", 1, 0, None),
    ("batch:db-committed", 1, 1, None),
    ("batch:vectors-written", 3, 2, None),
    ("batch:vectors-renamed", 3, 2, None),
    ("batch:db-committed", 3, 3, None),
    ("merge:written", 1, "all", None),
    ("merge:db-committed", 1, "all", None),
    ("merge:cleanup-done", 1, "all", None),
    ("rebuild:old-db-recorded", 1, None, None),
    ("rebuild:swapped", 1, None, -1),
    ("run:finished", 1, "all", -1),
]


def test_every_crash_point_is_covered() -> None:
    assert {c[0] for c in CASES} == set(crash.POINTS)


TRIALS = [(point, nth, rebuild, after_rebuild if rebuild else after_add)
          for point, nth, after_add, after_rebuild in CASES for rebuild in (False, True)
          if rebuild or after_add is not None]  # an ingest that adds never switches databases


@pytest.mark.parametrize("point,nth,rebuild,expected", TRIALS,
                         ids=[f"{t[0]}@{t[1]}-{'rebuild' if t[2] else 'add'}" for t in TRIALS])
def test_kill_at_each_crash_point_leaves_exactly_the_state_before_or_after_that_step(
        world: dict, point: str, nth: int, rebuild: bool, expected) -> None:
    location = fresh_index(world, f"crash-{point.replace(':', '-')}-{nth}-{rebuild}")
    p = start_ingest(world, location, *(["--rebuild"] if rebuild else []), fast=True,
                     env={crash.ENV: f"{point}@{nth}"})
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, (p.returncode, err)  # it did reach the point
    state = state_of(world, location, rebuild)
    if expected is None:
        expected = 0
    elif expected == "all":
        expected = full(world, rebuild)
    assert state == expected, (point, nth, state)
    r = rag("status", "--json", "--index", str(location), env=env_for(world, fast=True))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    finish_and_check(world, location, rebuild, committed=max(state, 0))
    shutil.rmtree(location)


# -- kill -9 at random moments: a fuzz of the same invariant ------------------------------------


def test_kill_9_at_random_moments_never_loses_or_mixes_the_index(world: dict) -> None:
    """Kills spread over the whole run; no quota on where they land (the crash points above
    cover each step deterministically). Whatever the moment, the invariant holds."""
    rng = random.Random(20240611)
    t0 = time.monotonic()
    p = start_ingest(world, fresh_index(world, "kill-calibrate"))
    p.communicate(timeout=120)
    wall = time.monotonic() - t0
    landed: dict[int, int] = {}
    for trial in range(KILL_TRIALS):
        location = fresh_index(world, f"kill-{trial}")
        rebuild = trial % 2 == 1
        p = start_ingest(world, location, *(["--rebuild"] if rebuild else []))
        time.sleep(rng.uniform(0.0, wall * 1.05))
        p.kill()
        p.communicate(timeout=60)
        state = state_of(world, location, rebuild)
        landed[state] = landed.get(state, 0) + 1
        if trial % 4 == 0:  # the real commands too, not only the functions behind them
            r = rag("search", "note says river", "--index", str(location), env=env_for(world))
            assert r.returncode == 0 and r.stdout.strip(), r.stderr
        finish_and_check(world, location, rebuild, committed=max(state, 0))
        shutil.rmtree(location)
    print(f"kill -9 over {KILL_TRIALS} trials: batches visible afterwards -> trials {landed}")


def test_kill_9_during_the_first_ingest_leaves_no_broken_index(world: dict) -> None:
    rng = random.Random(7)
    for trial in range(3):
        location = world["base"] / f"first-{trial}"
        p = start_ingest(world, location, src=world["old"])
        time.sleep(rng.uniform(0.2, 1.0))
        p.kill()
        p.communicate(timeout=60)
        r = rag("status", "--index", str(location), env=env_for(world))
        assert b"Traceback" not in r.stderr
        if r.returncode != 0:  # nothing committed yet: "not built", with the command to run
            assert r.returncode == 1 and b"rag ingest" in r.stderr, r.stderr
        pipeline.ingest([str(world["old"])], resolve_settings(index=location), embedder=EMB)
        assert doc_chunks(location) == world["old_chunks"]


def test_database_created_without_metadata_is_completed_by_the_next_ingest(world: dict, tmp_path: Path) -> None:
    """The state a kill between creating the tables and writing meta used to leave behind."""
    index = tmp_path / "idx"
    index.mkdir()
    con = sqlite3.connect(index / "index.sqlite")
    con.executescript(SCHEMA)
    con.close()
    r = rag("ingest", str(world["old"]), "--index", str(index), env=env_for(world))
    assert r.returncode == 0, r.stderr
    assert doc_chunks(index) == world["old_chunks"]


def test_generation_zero_index_says_it_was_never_built(tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "idx")
    settings.index.mkdir()
    w = index.open(settings.index).writer(index_info(EMB, ChunkParams()))
    w.close()
    with pytest.raises(IndexNotFoundError, match="not been built yet"):
        pipeline.status(settings)


@pytest.mark.parametrize("after", [0.0, 0.02, 0.05, 0.1, 0.4, 0.8])
def test_ctrl_c_exits_130_with_a_short_message_and_keeps_the_committed_batches(world: dict, after: float) -> None:
    location = fresh_index(world, f"sigint-{after}")
    p = start_ingest(world, location)
    wait_for_lock(location, p.pid)
    time.sleep(after)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    # the replacement takes >= 2 s of embedding (10 batches of the 0.2 s/batch double): Ctrl-C comes first
    assert p.returncode == 130, (p.returncode, err)
    assert b"Traceback" not in err and b"interrupted" in err and len(err.splitlines()) <= 2, err
    state = state_of(world, location)
    finish_and_check(world, location, False, committed=state)


# -- damage ------------------------------------------------------------------------------------


def _damage(index: Path, how: str) -> None:
    db = index / "index.sqlite"
    faiss_file = next((index / "segments").glob("*.vec.npy"))
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
    assert doc_chunks(index) == world["old_chunks"]


# -- a full disk -------------------------------------------------------------------------------


def test_file_size_limit_mid_ingest_fails_clearly_and_keeps_the_index(world: dict) -> None:
    """RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk fails them."""
    for limit in (20_000, 150_000, 400_000):  # fails opening the WAL / writing FAISS / writing SQLite
        location = fresh_index(world, f"fsize-{limit}")

        def cap(limit: int = limit) -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        r = subprocess.run([sys.executable, "-m", "ragcli", "ingest", str(world["new"]), "--index", str(location)],
                           env=env_for(world), capture_output=True, preexec_fn=cap, timeout=120)
        assert r.returncode == 1, (limit, r.stderr)
        err = r.stderr.decode()
        assert "cannot write the index" in err and "is intact" in err, err
        assert "Traceback" not in err and "internal error" not in err
        state_of(world, location)  # the previous content and whole batches only
        subprocess.run([sys.executable, "-m", "ragcli", "ingest", str(world["new"]), "--index", str(location)],
                       env=env_for(world, fast=True), check=True, capture_output=True, timeout=120)
        assert state_of(world, location) == full(world, False)


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
    assert "disk" in err and "is intact" in err and "Traceback" not in err, err
    state_of(world, tmp_path / "after")


# -- concurrency -------------------------------------------------------------------------------


def test_second_ingest_waits_and_no_wait_fails_fast(world: dict, tmp_path: Path) -> None:
    index = fresh_index(world, "two-writers")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "a.md").write_text("# Extra\n\nA third writer adds this sentence about harbors.\n")
    first = start_ingest(world, index)
    wait_for_lock(index, first.pid)
    t0 = time.monotonic()
    busy = rag("ingest", str(extra), "--no-wait", "--index", str(index), env=env_for(world))
    assert busy.returncode == 1 and time.monotonic() - t0 < 30
    assert f"another ingest (pid {first.pid}) is writing".encode() in busy.stderr and b"Traceback" not in busy.stderr
    second = start_ingest(world, index, src=extra)
    _, err2 = second.communicate(timeout=120)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert b"waiting for another ingest" in err2 and str(first.pid).encode() in err2
    got = doc_chunks(index)  # checks vectors against the database too
    assert len(got) == len(world["old_chunks"]) + len(world["new_chunks"]) + 1  # both, one after the other


def test_readers_during_an_ingest_see_whole_batches_only(world: dict) -> None:
    location = fresh_index(world, "readers")
    settings = resolve_settings(index=location)
    seen: list[int] = []
    reply = '{"answer": "The previous note says river things.", "evidence": [1]}'
    writer = start_ingest(world, location)
    wait_for_lock(location, writer.pid)
    cli_reads: list[subprocess.CompletedProcess] = []
    t = threading.Thread(target=lambda: cli_reads.extend(
        [rag("search", "previous note says", "--json", "--index", str(location), env=env_for(world)),
         rag("status", "--json", "--index", str(location), env=env_for(world))]))
    t.start()
    while writer.poll() is None:
        seen.append(state_of(world, location))  # previous content + whole batches, checked
        assert pipeline.search("previous note says river", settings, k=3, embedder=EMB).hits
        ans = pipeline.ask("What does the previous note 3.4 say?", settings, embedder=EMB,
                           generator=ScriptedGenerator(reply), params=HASH_PARAMS)
        assert ans.status == "answered" and ans.citations[0].source.startswith(str(world["old"]))
    t.join()
    assert writer.returncode == 0
    assert seen and seen == sorted(seen)  # batches only ever arrive
    for r in cli_reads:
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    docs = json.loads(cli_reads[1].stdout)["documents"]
    assert docs - len(world["old_chunks"]) in [len(p) for p in world["prefixes"]]
