"""The index directory does no harm (issue 24, cases 1, 5, 7 and two of its clear errors).

- ``--index`` at someone's own folder is refused, and nothing in it is deleted or added;
  ragcli deletes only files its own records prove it wrote (``loose_files``), never by name.
- An index an earlier ragcli wrote (no marker) is adopted and keeps working.
- Every file of the index is 0600 and every directory 0700 whatever the umask, and another
  user really cannot read it (checked as an unprivileged user: root passes every check).
- Links planted in the index directory are refused, never written through; a directory
  another user owns, or others may write, is refused with the command that fixes it.
- A read-only index is read (as an unprivileged user, and on a read-only mount), never called
  damaged; an ``--index`` that is a file is called a file.

Real processes (``python -m ragcli``), real files, real SQLite; the other user is ``nobody``
(``tests/tools/as_user.py`` drops root for good before the command runs).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragcli import index
from ragcli.index import SqliteStore, crash
from ragcli.index.sqlite import schema

from .conftest import HASH_MODELS, rag
from .test_index_store import INFO, docs, use_approximate_search, write

AS_USER = Path(__file__).parent / "tools" / "as_user.py"
MARKER = "RAGCLI_INDEX"  # (spelled out: these tests also run against ragcli before the marker, and fail there)
OTHER = "nobody"


def _other_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(OTHER)
    except KeyError:
        return None


needs_root_and_other = pytest.mark.skipif(
    os.geteuid() != 0 or _other_user() is None,
    reason=f"needs to run as root with a user {OTHER!r} to switch to (root passes every permission check)")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    p = tmp_path / "models.toml"
    p.write_text(HASH_MODELS)
    return p


@pytest.fixture
def env(models: Path) -> dict:
    return {"RAG_MODELS": str(models), "RAG_EMBEDDER": "hash"}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "vault.md").write_text("# Vault\n\nThe vault code is 4711 and the river stone is blue.\n")
    (d / "notes.md").write_text("# Notes\n\nThe harbor signal glows copper at night.\n")
    return d


def snapshot(d: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``d`` (links as links): content (None for a directory or link) and mode."""
    out: dict[str, tuple[bytes | None, int]] = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            st = os.lstat(p)
            body = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(p.relative_to(d))] = (body, stat.S_IMODE(st.st_mode))
    return out


def modes(d: Path) -> dict[str, int]:
    return {str(Path(root, n).relative_to(d)): stat.S_IMODE(os.lstat(Path(root, n)).st_mode)
            for root, dirs, files in os.walk(d) for n in dirs + files} | {".": stat.S_IMODE(os.stat(d).st_mode)}


def loosen(d: Path) -> None:
    """Directories 0755, files 0644: what ragcli before this change left under the usual umask."""
    for root, _dirs, files in os.walk(d):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(Path(root, f), 0o644)


def used_by(db: Path) -> set[str]:
    """The segment files (relative to the index) the database ``db`` names."""
    con = sqlite3.connect(db)
    try:
        return {f"segments/{n}.{k}.npy" for (n,) in con.execute("SELECT name FROM segments") for k in ("vec", "ids")}
    finally:
        con.close()


def err(r: subprocess.CompletedProcess) -> str:
    return r.stderr.decode()


# -- case 1: an ordinary folder is never an index, and never tidied ------------------------------------


@pytest.mark.parametrize("rebuild", [False, True], ids=["ingest", "rebuild"])
def test_an_ordinary_folder_is_refused_and_nothing_in_it_changes(env: dict, corpus: Path, tmp_path: Path,
                                                                 rebuild: bool) -> None:
    folder = tmp_path / "folder"
    (folder / "segments").mkdir(parents=True)
    (folder / "segments" / "take2.wav").write_bytes(b"RIFF take two")
    (folder / "index_backup.sqlite").write_bytes(b"SQLite format 3\x00 a backup of something else")
    (folder / "notes.md").write_text("my notes\n")
    before = snapshot(folder)
    r = rag("ingest", str(corpus), "--index", str(folder), *(["--rebuild"] if rebuild else []), env=env)
    assert r.returncode == 1, err(r)
    assert str(folder) in err(r) and "not a ragcli index" in err(r) and "new or empty directory" in err(r)
    assert "Traceback" not in err(r) and len(err(r).strip().splitlines()) == 1
    assert snapshot(folder) == before  # nothing deleted, nothing added (not even a lock file)


def test_ingesting_a_folder_into_itself_is_refused(env: dict, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "segments").mkdir(parents=True)
    (proj / "segments" / "part1.md").write_text("# Part 1\n\nThe first part of the project.\n")
    (proj / "index.md").write_text("# Index\n\nWhat the project is.\n")
    before = snapshot(proj)
    r = rag("ingest", str(proj), "--index", str(proj), env=env)
    assert r.returncode == 1 and "not a ragcli index" in err(r), err(r)
    assert snapshot(proj) == before


def test_an_index_inside_the_folder_it_indexes_is_never_ingested(env: dict, corpus: Path) -> None:
    """Its marker and pointer files are text a walk would take: skipped, with the reason."""
    idx = corpus / "idx"
    for _ in range(2):  # the second run meets the index's own files
        r = rag("ingest", str(corpus), "--index", str(idx), "--json", env=env)
        assert r.returncode == 0, err(r)
        out = json.loads(r.stdout)
        assert not any(p.startswith(str(idx)) for p in out["added"] + out["unchanged"]), out
        assert {"path": str(idx), "reason": "the index being written (ragcli never ingests its own index)"} \
            in out["skipped"], out
    ls = rag("ls", "--json", "--index", str(idx), env=env)
    assert sorted(json.loads(x)["path"] for x in ls.stdout.decode().splitlines()) == sorted(
        str(p) for p in corpus.glob("*.md"))


def test_a_new_or_empty_directory_is_marked_and_used(env: dict, corpus: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    empty.chmod(0o777)  # ours and empty: nothing can have been planted yet, so it is made private and used
    for d in (tmp_path / "new" / "deeper", empty):
        r = rag("ingest", str(corpus), "--index", str(d), env=env)
        assert r.returncode == 0, err(r)
        marker = json.loads((d / MARKER).read_text())
        assert marker["ragcli_index"] == "sqlite" and marker["format"] == index.FORMAT_VERSION and marker["created"]
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert rag("search", "vault code", "--index", str(d), env=env).returncode == 0


def _make_earlier_index(location: Path, corpus: Path, env: dict) -> None:
    """What ragcli before the marker left: the same files, no marker, 0755 directories, 0644 files."""
    assert rag("ingest", str(corpus), "--index", str(location), env=env).returncode == 0
    (location / MARKER).unlink(missing_ok=True)
    loosen(location)


def test_an_index_an_earlier_ragcli_wrote_is_adopted_and_keeps_working(env: dict, corpus: Path,
                                                                       tmp_path: Path) -> None:
    old = tmp_path / "old"
    _make_earlier_index(old, corpus, env)
    (old / "segments" / "take2.wav").write_bytes(b"not ragcli's")  # files it cannot prove it wrote
    (old / "index_backup.sqlite").write_bytes(b"a user's backup")
    r = rag("search", "vault code", "--index", str(old), "--json", env=env)  # readers need no marker
    assert r.returncode == 0 and "vault.md" in r.stdout.decode(), err(r)
    (corpus / "more.md").write_text("# More\n\nA lantern hangs over the meadow.\n")
    r = rag("ingest", str(corpus), "--index", str(old), env=env)
    assert r.returncode == 0, err(r)
    assert (old / "segments" / "take2.wav").read_bytes() == b"not ragcli's"
    assert (old / "index_backup.sqlite").read_bytes() == b"a user's backup"
    assert f"adopted {old}" in err(r) and "1 file in" in err(r) and "left alone" in err(r), err(r)
    assert (old / MARKER).is_file() and "adopted" in json.loads((old / MARKER).read_text())
    ours = {k: v for k, v in modes(old).items() if k not in ("segments/take2.wav", "index_backup.sqlite")}
    assert all(m == (0o700 if (old / k).is_dir() else 0o600) for k, m in ours.items()), ours
    r = rag("search", "lantern meadow", "--index", str(old), "--json", env=env)
    assert r.returncode == 0 and "more.md" in r.stdout.decode(), err(r)
    r = rag("ingest", str(corpus), "--index", str(old), env=env)  # the second time: nothing to say
    assert r.returncode == 0 and "adopted" not in err(r), err(r)


def test_a_stray_database_is_not_an_earlier_index(env: dict, corpus: Path, tmp_path: Path) -> None:
    """An index.sqlite another program wrote (no ragcli tables) does not make a folder an index."""
    folder = tmp_path / "app"
    folder.mkdir()
    con = sqlite3.connect(folder / "index.sqlite")
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = snapshot(folder)
    r = rag("ingest", str(corpus), "--index", str(folder), "--rebuild", env=env)
    assert r.returncode == 1 and "is not a database ragcli wrote" in err(r), err(r)
    assert snapshot(folder) == before


def test_files_ragcli_recorded_are_removed_and_no_others(env: dict, corpus: Path, tmp_path: Path) -> None:
    """A writer killed with its batch's files on disk: the next one removes exactly those files.
    Files that look like ragcli's but that it has no record of stay, whatever their names."""
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    planted = {"segments/take2.wav": b"audio", "segments/b9-000000000000.vec.npy": b"looks like a segment",
               "index_backup.sqlite": b"backup", "index-0123456789ab.sqlite": b"looks like a rebuild",
               ".notes.tmp": b"editor swap file", "notes.md": b"notes"}
    for rel, body in planted.items():
        (loc / rel).write_bytes(body)
    (corpus / "later.md").write_text("# Later\n\nThe quartz orbit turns slowly.\n")
    r = rag("ingest", str(corpus), "--index", str(loc), env={**env, crash.ENV: "batch:vectors-written"})
    assert r.returncode == -signal.SIGKILL, err(r)
    for rel, body in planted.items():  # (the killed writer tidied up when it opened, too)
        assert (loc / rel).read_bytes() == body, rel
    con = sqlite3.connect(loc / "index.sqlite")
    recorded = [p for (p,) in con.execute("SELECT path FROM loose_files")]
    con.close()
    assert len(recorded) == 2 and all((loc / f"{p}.tmp").is_file() for p in recorded)  # the killed batch's
    r = rag("ingest", str(corpus), "--index", str(loc), env=env)
    assert r.returncode == 0, err(r)
    assert not any((loc / p).exists() or (loc / f"{p}.tmp").exists() for p in recorded)
    for rel, body in planted.items():
        assert (loc / rel).read_bytes() == body, rel
    with index.open(loc).reader() as st:
        named = {f"{n}.{k}.npy" for (n,) in st.con.execute("SELECT name FROM segments") for k in ("vec", "ids")}
    assert set(os.listdir(loc / "segments")) == named | {"take2.wav", "b9-000000000000.vec.npy"}


def test_an_unfinished_rebuild_with_other_settings_is_discarded_with_its_files(tmp_path: Path) -> None:
    """Its database and segments go, by its records, also when a kill interrupted the discarding."""
    store = SqliteStore(tmp_path / "idx")
    rng = np.random.default_rng(11)
    write(store, docs(rng, 0, 3))
    other = index.IndexInfo("synthetic", "synthetic-32b", INFO.dim, {"chunk_tokens": 2})
    write(store, docs(rng, 10, 2, tag="a"), docs(rng, 20, 2, tag="b"), rebuild=True, finish=False)
    first = schema.staging_db(store.location)
    first_files = used_by(first)
    assert first is not None and len(first_files) == 4
    # a kill half-way through discarding it: marked, one file already gone
    con = sqlite3.connect(first)
    con.execute("INSERT INTO meta VALUES ('discarded', '1')")
    con.commit()
    con.close()
    (store.location / sorted(first_files)[0]).unlink()
    (store.location / "segments" / "take2.wav").write_bytes(b"user's")
    with store.lock():
        w = store.writer(INFO, rebuild=True)  # same settings as the first: still not resumed
        w.close()
    assert (store.location / "segments" / "take2.wav").read_bytes() == b"user's"
    assert "carrying on with an unfinished rebuild" not in w.messages
    assert w.db != first and not first.exists()
    assert not any((store.location / p).exists() for p in first_files)
    with store.lock():
        w = store.writer(other, rebuild=True)  # other settings: the unfinished one is discarded
        assert "discarded an unfinished rebuild made with other settings" in w.messages
        w.begin_run(["/c"], True)
        w.commit_batch([], docs(rng, 30, 2, tag="c"))
        w.finish()
        w.close()
    with store.reader() as r:
        assert r.counts()["documents"] == 2 and r.info.embedder_id == "synthetic-32b"
    names = set(os.listdir(store.location / "segments"))
    assert names == {p.split("/")[1] for p in used_by(store.current_db())} | {"take2.wav"}


# -- case 5: private files, whatever the umask ------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_every_file_is_0600_and_every_directory_0700_whatever_the_umask(tmp_path: Path, umask: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Database with its -wal and -shm (a reader holds them open), segments, the approximate
    index (FAISS), pointers, lock, marker."""
    store = SqliteStore(tmp_path / "idx")
    use_approximate_search(store, monkeypatch)
    rng = np.random.default_rng(12)
    old = os.umask(umask)
    try:
        write(store, docs(rng, 0, 3))
        write(store, *[docs(rng, 250 * i, 250) for i in range(5)], rebuild=True)  # CURRENT, FAISS
        with store.reader():
            got = modes(store.location)
    finally:
        os.umask(old)
    want = {k: (0o700 if k in (".", "segments") else 0o600) for k in got}
    assert got == want
    names = set(got)
    db = store.current_db().name
    assert {".lock", "CURRENT", "segments", db, f"{db}-wal", f"{db}-shm"} <= names
    assert any(n.endswith(".faiss") for n in names) and any(n.endswith(".vec.npy") for n in names)
    assert MARKER in names


def test_an_index_made_world_readable_is_tightened_by_the_next_writer(env: dict, corpus: Path,
                                                                      tmp_path: Path) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    loosen(loc)
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    got = modes(loc)
    assert got == {k: (0o700 if (loc / k).is_dir() else 0o600) for k in got}


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="ragcli-shared-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _other_reads(path: Path) -> bool:
    """Whether the other user can read ``path`` (a file: its bytes; a directory: its listing)."""
    cmd = ["ls", str(path)] if path.is_dir() else ["head", "-c", "1", str(path)]
    return subprocess.run(cmd, user=OTHER, capture_output=True).returncode == 0


@needs_root_and_other
def test_another_user_cannot_read_a_private_document_out_of_the_index(env: dict, shared: Path) -> None:
    docs_dir = shared / "docs"
    docs_dir.mkdir()
    secret = docs_dir / "vault.md"
    secret.write_text("# Vault\n\nThe vault code is 4711.\n")
    secret.chmod(0o600)
    (shared / "public.txt").write_text("anyone may read this\n")
    assert _other_reads(shared / "public.txt")  # the check can see a readable file
    assert not _other_reads(secret)
    loc = shared / "idx"
    assert rag("ingest", str(docs_dir), "--index", str(loc), env=env).returncode == 0
    assert b"4711" in (loc / "index.sqlite").read_bytes()  # the text is in there
    for p in [loc, *loc.rglob("*")]:
        assert not _other_reads(p), p
    r = subprocess.run(["grep", "-c", "4711", str(loc / "index.sqlite")], user=OTHER, capture_output=True)
    assert r.returncode == 2 and b"Permission denied" in r.stderr


# -- case 7: links and shared directories -------------------------------------------------------


@pytest.mark.parametrize("name,args", [(".lock", ()), (".STAGING.tmp", ("--rebuild",))])
def test_a_link_planted_in_the_index_is_never_written_through(env: dict, corpus: Path, tmp_path: Path,
                                                              name: str, args: tuple[str, ...]) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    victim = tmp_path / "victim.conf"
    victim.write_text("precious settings\n")
    (loc / name).unlink(missing_ok=True)
    (loc / name).symlink_to(victim)
    r = rag("ingest", str(corpus), "--index", str(loc), *args, env=env)
    assert victim.read_text() == "precious settings\n"
    if name == ".lock":  # the lock is kept: refused, with what to do
        assert r.returncode == 1 and "is a symbolic link" in err(r) and "rm " in err(r), err(r)
        assert "Traceback" not in err(r)
    else:  # a temporary file ragcli writes afresh: the link is removed, not followed
        assert r.returncode == 0, err(r)


def test_a_linked_segments_directory_is_refused(env: dict, corpus: Path, tmp_path: Path) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    shutil.move(loc / "segments", elsewhere)
    (loc / "segments").symlink_to(elsewhere)
    before = snapshot(elsewhere)
    (corpus / "later.md").write_text("# Later\n\nThe quartz orbit turns slowly.\n")
    r = rag("ingest", str(corpus), "--index", str(loc), env=env)
    assert r.returncode == 1 and "is a symbolic link" in err(r), err(r)
    assert snapshot(elsewhere) == before


def test_an_index_directory_a_user_linked_to_is_fine(env: dict, corpus: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    real.mkdir()
    assert rag("ingest", str(corpus), "--index", str(tmp_path / "link"), env=env).returncode == 0
    assert (real / MARKER).is_file()


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_an_index_others_may_write_is_refused(env: dict, corpus: Path, tmp_path: Path, mode: int) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    loc.chmod(mode)
    before = snapshot(loc)
    r = rag("ingest", str(corpus), "--index", str(loc), env=env)
    assert r.returncode == 1, err(r)
    assert "can be written by other users" in err(r) and f"chmod 700 {loc}" in err(r), err(r)
    assert snapshot(loc) == before
    assert rag("search", "vault code", "--index", str(loc), env=env).returncode == 0  # reading is fine


@needs_root_and_other
def test_an_index_another_user_owns_is_refused(env: dict, corpus: Path, tmp_path: Path) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    other = _other_user()
    os.chown(loc, other.pw_uid, other.pw_gid)
    before = snapshot(loc)
    r = rag("ingest", str(corpus), "--index", str(loc), env=env)
    assert r.returncode == 1, err(r)
    assert "belongs to another user" in err(r) and "chown -R" in err(r), err(r)
    assert snapshot(loc) == before


# -- clear errors: a file, a read-only index ----------------------------------------------------


@pytest.mark.parametrize("cmd", [("status",), ("search", "river"), ("ask", "what is the river?"),
                                 ("ingest", "CORPUS")])
def test_an_index_path_that_is_a_file_is_called_a_file(env: dict, corpus: Path, tmp_path: Path,
                                                       cmd: tuple[str, ...]) -> None:
    f = tmp_path / "somefile.txt"
    f.write_text("not an index\n")
    r = rag(*[str(corpus) if a == "CORPUS" else a for a in cmd], "--index", str(f), env=env)
    assert r.returncode == 1, err(r)
    assert f"{f} is a file, not an index directory" in err(r) and "damaged" not in err(r), err(r)
    assert len(err(r).strip().splitlines()) == 1
    assert f.read_text() == "not an index\n"


def _as_other(shared: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAG_MODELS": str(shared / "models.toml"), "RAG_EMBEDDER": "hash",
           "XDG_CONFIG_HOME": str(shared / "none"), "XDG_DATA_HOME": str(shared / "none"),
           "XDG_CACHE_HOME": str(shared / "none")}
    return subprocess.run([sys.executable, str(AS_USER), OTHER, *args], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def _shared_index(shared: Path) -> tuple[Path, Path]:
    (shared / "models.toml").write_text(HASH_MODELS)
    docs_dir = shared / "docs"
    docs_dir.mkdir()
    (docs_dir / "river.md").write_text("# River\n\nThe river stone is blue and smooth.\n")
    loc = shared / "idx"
    r = rag("ingest", str(docs_dir), "--index", str(loc), env={"RAG_MODELS": str(shared / "models.toml"),
                                                               "RAG_EMBEDDER": "hash"})
    assert r.returncode == 0, err(r)
    loosen(shared)  # shared read-only: the other user may read, not write
    return loc, docs_dir


def _reads_fine(shared: Path, loc: Path) -> None:
    r = _as_other(shared, "search", "river stone", "--index", str(loc), "--json")
    assert r.returncode == 0 and "river.md" in r.stdout.decode(), err(r)
    r = _as_other(shared, "status", "--index", str(loc))
    assert r.returncode == 0 and "damaged" not in err(r), err(r)
    r = _as_other(shared, "ask", "what colour is the river stone?", "--index", str(loc))
    assert "damaged" not in err(r) and "internal error" not in err(r) and "read-only" not in err(r), err(r)
    if _other_reads(Path(os.environ["RAG_CACHE"])):  # the model too (else it says it cannot read that)
        assert r.returncode in (0, 4), err(r)


@needs_root_and_other
def test_an_index_shared_read_only_is_read_by_another_user_and_not_written(shared: Path) -> None:
    loc, docs_dir = _shared_index(shared)
    before = snapshot(loc)
    _reads_fine(shared, loc)
    r = _as_other(shared, "ingest", str(docs_dir), "--index", str(loc))
    assert r.returncode == 1 and "will not write there" in err(r) and "damaged" not in err(r), err(r)
    assert len(err(r).strip().splitlines()) == 1
    assert snapshot(loc) == before


@needs_root_and_other
def test_a_users_own_read_only_index_is_read_and_ingest_says_it_cannot_write(shared: Path) -> None:
    loc, docs_dir = _shared_index(shared)
    other = _other_user()
    for p in [loc, *loc.rglob("*")]:
        os.chown(p, other.pw_uid, other.pw_gid)
        p.chmod(0o500 if p.is_dir() else 0o400)  # theirs, and read-only (chmod a-w)
    before = snapshot(loc)
    _reads_fine(shared, loc)
    r = _as_other(shared, "ingest", str(docs_dir), "--index", str(loc))
    assert r.returncode == 1 and "it is read-only" in err(r) and "damaged" not in err(r), err(r)
    assert len(err(r).strip().splitlines()) == 1
    assert snapshot(loc) == before


def _can_bind_read_only() -> bool:
    if not shutil.which("unshare"):
        return False
    d = tempfile.mkdtemp()
    try:
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {d} {d} && mount -o remount,bind,ro {d}"],
                               capture_output=True)
        return probe.returncode == 0
    finally:
        os.rmdir(d)


@pytest.mark.skipif(not _can_bind_read_only(), reason="needs `unshare -rm` to bind-mount a directory read-only")
def test_an_index_on_a_read_only_mount_is_read_and_ingest_says_it_cannot_write(env: dict, corpus: Path,
                                                                               tmp_path: Path) -> None:
    loc = tmp_path / "idx"
    assert rag("ingest", str(corpus), "--index", str(loc), env=env).returncode == 0
    before = snapshot(loc)
    py = sys.executable
    script = (f"mount --bind {loc} {loc} && mount -o remount,bind,ro {loc} && "
              f"{py} -m ragcli search 'vault code' --index {loc} --json; echo \"search=$?\"; "
              f"{py} -m ragcli status --index {loc}; echo \"status=$?\"; "
              f"{py} -m ragcli ingest {corpus} --index {loc}; echo \"ingest=$?\"")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], env={**os.environ, **env}, capture_output=True,
                       timeout=300, cwd=tmp_path)
    out = r.stdout.decode()
    assert "search=0" in out and "vault.md" in out and "status=0" in out, (out, err(r))
    assert "ingest=1" in out and "it is read-only" in err(r) and "damaged" not in err(r), err(r)
    assert snapshot(loc) == before
