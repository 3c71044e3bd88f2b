"""What ragcli reads from disk, tried as a hostile user would (issue 24 cases 4, 9 and 12, and
issue 25's skipped files).

- Links met while walking a folder are not followed unless ``--follow``; a link named on the
  command line is; FIFOs, sockets, devices and anything in /proc, /sys, /dev are never read.
  What the walk does not take is reported as ``skipped`` with the reason, never exit 3.
- A file swapped for a link, a FIFO, or a folder swapped for a link between the walk and the
  read is refused with its reason (the read opens with O_NOFOLLOW and O_NONBLOCK, then fstat).
- A name that is not UTF-8 fails alone, shown with \\x escapes; ``--json`` stays UTF-8.
- ``rag ask`` re-reads a cited file only if it is still a regular file no larger than at
  ingest: a FIFO, a link to /dev/zero, a much larger file are "not verified", with the reason.
- Files of no supported type are skipped with their type; text files without a suffix are read.

Folders are built by ``tests/tools/hostile_paths.py``. A read that would hang or grow without
bound runs in a child process with a timeout and a memory limit, as a backstop only.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragcli import Index, pipeline
from ragcli.config import resolve_settings
from ragcli.errors import SourceError
from ragcli.loaders import page_text_from_file
from ragcli.models.embedders import HashEmbedder
from ragcli.verify import Verifier

from .conftest import ROOT, rag
from .tools.hostile_paths import GOOD, PRIVATE, latin1_name, link_trap

EMB = HashEmbedder()
TOOL = ROOT / "tests" / "tools" / "hostile_paths.py"
NOT_FOLLOWED = "symbolic link, not followed (use --follow)"
NEVER = "ragcli never reads /proc, /sys or /dev"


@pytest.fixture
def env(hash_models: Path, tmp_path: Path) -> dict:
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}


@pytest.fixture
def settings(tmp_path: Path):
    return resolve_settings(index=tmp_path / "index")


def _rel(paths, base: Path) -> set[str]:
    return {Path(p).relative_to(base).as_posix() for p in paths}


def _skipped(rep: dict, base: Path) -> dict[str, str]:
    return {Path(s["path"]).relative_to(base).as_posix(): s["reason"] for s in rep["skipped"]}


def _search(env: dict, query: str) -> list[dict]:
    r = rag("search", query, "-k", "50", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


# -- case 4: links and special files -----------------------------------------------------------


def test_links_met_while_walking_are_skipped_and_reported_not_followed(env: dict, tmp_path: Path) -> None:
    trap = link_trap(tmp_path)
    r = rag("ingest", str(trap.docs), "--json", env=env, timeout=120)
    assert r.returncode == 0, r.stderr  # skipped is not failed
    rep = json.loads(r.stdout)
    assert _rel(rep["added"], trap.docs) == _rel(trap.good, trap.docs) and rep["failed"] == []
    skipped = _skipped(rep, trap.docs)
    assert set(skipped) == set(trap.links) | {"pipe.md"}
    assert all(skipped[name] == NOT_FOLLOWED for name in trap.links)
    assert "FIFO" in skipped["pipe.md"]
    for row in _search(env, "OPENSSH PRIVATE KEY"):  # the committed link to ~/.ssh/id_ed25519 was not read
        assert Path(row["source"]) in trap.good and "BEGIN OPENSSH" not in row["text"]
    assert not any("4711" in row["text"] or "Uid:" in row["text"] for row in _search(env, "safe code 4711 Uid"))

    r = rag("ingest", str(trap.docs), env=env, timeout=120)  # human output: counted, and named on stderr
    assert r.returncode == 0 and "5 skipped" in r.stdout.decode(), r.stdout
    lines = [line for line in r.stderr.decode().splitlines() if line.startswith("skipped: ")]
    assert len(lines) == 5 and any("passwd.txt: " + NOT_FOLLOWED in line for line in lines)


def test_follow_follows_links_in_folders_but_never_into_proc_nor_a_fifo(env: dict, tmp_path: Path) -> None:
    trap = link_trap(tmp_path)
    r = rag("ingest", str(trap.docs), "--follow", "--json", env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert _rel(rep["added"], trap.docs) == _rel(trap.good, trap.docs) | {
        "passwd.txt", "private/diary.txt", "repo/config/deploy_key.txt"}
    skipped = _skipped(rep, trap.docs)
    assert set(skipped) == {"status.txt", "pipe.md"}
    assert "into /proc" in skipped["status.txt"] and NEVER in skipped["status.txt"]
    assert not any("Uid:" in row["text"] or "VmRSS" in row["text"] for row in _search(env, "Uid VmRSS Threads"))


def test_links_named_on_the_command_line_are_followed_but_special_files_are_never_read(
        env: dict, tmp_path: Path) -> None:
    trap = link_trap(tmp_path)
    named = tmp_path / "named"
    named.mkdir()
    (named / "mine.md").symlink_to(trap.outside / "private" / "diary.txt")
    (named / "status.txt").symlink_to("/proc/self/status")
    (named / "zero.txt").symlink_to("/dev/zero")
    (named / "docs-link").symlink_to(trap.docs)  # a folder named through a link: walked, its links not followed
    (named / "tool").write_bytes(b"\x7fELF\x02\x01" + bytes(300))  # named, so not skipped: it fails
    args = [named / "mine.md", named / "status.txt", named / "zero.txt", trap.fifo, "/proc/self/status",
            named / "docs-link", named / "tool"]
    r = rag("ingest", *map(str, args), "--json", env=env, timeout=120)
    assert r.returncode == 3 and b"Traceback" not in r.stderr, r.stderr
    rep = json.loads(r.stdout)
    link_docs = named / "docs-link"
    assert set(rep["added"]) == {str(named / "mine.md")} | {str(link_docs / g.relative_to(trap.docs)) for g in trap.good}
    failed = {f["path"]: f["reason"] for f in rep["failed"]}
    assert set(failed) == {str(named / "status.txt"), str(named / "zero.txt"), str(trap.fifo), "/proc/self/status",
                           str(named / "tool")}
    assert failed[str(named / "tool")] == "binary file without a known type"
    assert NEVER in failed[str(named / "status.txt")] and NEVER in failed["/proc/self/status"]
    assert NEVER in failed[str(named / "zero.txt")] and "/dev/zero" in failed[str(named / "zero.txt")]
    assert failed[str(trap.fifo)].startswith("a FIFO (named pipe), not a regular file")
    skipped = _skipped(rep, link_docs)
    assert set(skipped) == set(trap.links) | {"pipe.md"} and all(skipped[n] == NOT_FOLLOWED for n in trap.links)
    hit = next(row for row in _search(env, "safe code 4711") if "4711" in row["text"])
    assert hit["source"] == str(named / "mine.md")  # the name the user gave, not the target's


def test_reingest_without_paths_walks_the_same_and_drops_what_a_link_brought_in(env: dict, tmp_path: Path) -> None:
    trap = link_trap(tmp_path)
    followed = {"passwd.txt", "private/diary.txt", "repo/config/deploy_key.txt"}
    r = rag("ingest", str(trap.docs), "--follow", "--json", env=env, timeout=120)
    assert r.returncode == 0 and followed <= _rel(json.loads(r.stdout)["added"], trap.docs)

    r = rag("ingest", "--json", env=env, timeout=120)  # no paths: the recorded folder, links not followed
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert _rel(rep["removed"], trap.docs) == followed  # the walk no longer takes them: they leave the index
    assert _rel(rep["unchanged"], trap.docs) == _rel(trap.good, trap.docs)
    assert set(_skipped(rep, trap.docs)) == set(trap.links) | {"pipe.md"}
    assert not any("4711" in row["text"] or "BEGIN OPENSSH" in row["text"] for row in _search(env, "safe code 4711 key"))

    r = rag("ingest", str(trap.docs), "--json", env=env, timeout=120)  # the same, named
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["removed"] == [] and set(_skipped(rep, trap.docs)) == set(trap.links) | {"pipe.md"}


def test_the_python_api_takes_follow_and_reports_what_it_skipped(tmp_path: Path) -> None:
    trap = link_trap(tmp_path)
    with Index(tmp_path / "idx", embedder=EMB) as idx:
        report = idx.ingest([trap.docs])
        assert not report.failed and set(_rel((p for p, _ in report.skipped), trap.docs)) == set(trap.links) | {"pipe.md"}
        assert report.to_json()["skipped"][0].keys() == {"path", "reason"}
        report = idx.ingest([trap.docs], follow=True)
        assert str(trap.docs / "private" / "diary.txt") in report.added


def _swap(kind: str, victim: Path, outside: Path) -> None:
    """Put something else where ``victim`` was (or, "folder-link", where its folder was)."""
    if kind == "link":
        victim.unlink()
        victim.symlink_to(outside / "secret.md")
    elif kind == "fifo":
        victim.unlink()
        os.mkfifo(victim)
    else:
        victim.parent.rename(outside / "moved")
        (outside / "evil").mkdir()
        (outside / "evil" / victim.name).write_text(PRIVATE)
        victim.parent.symlink_to(outside / "evil")


@pytest.mark.parametrize("kind, why", [("link", "symbolic link now: not followed"), ("fifo", "FIFO"),
                                       ("folder-link", "'sub' on its way is a symbolic link now")])
def test_a_file_swapped_after_the_walk_is_neither_followed_nor_read(kind: str, why: str, tmp_path: Path,
                                                                     settings) -> None:
    docs, outside = tmp_path / "docs", tmp_path / "outside"
    (docs / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.md").write_text(PRIVATE)
    (docs / "a.md").write_text(GOOD)
    victim = docs / "sub" / "b.md"
    victim.write_text(GOOD.replace("pears", "plums"))
    done, over = threading.Event(), threading.Event()

    def progress(phase: str, n: int, total: int) -> None:
        if phase == "reading" and n == 2 and not done.is_set():  # walked; b.md (2nd in order) not read yet
            done.set()
            _swap(kind, victim, outside)
            if kind == "fifo":  # backstop: a read that blocks on the FIFO is released, not left hanging
                threading.Thread(target=_release_fifo_until, args=(victim, over), daemon=True).start()

    try:
        r = pipeline.ingest([str(docs)], settings, embedder=EMB, progress=progress)
    finally:
        over.set()
    assert done.is_set() and r.added == (str(docs / "a.md"),)
    assert len(r.failed) == 1 and r.failed[0][0] == str(victim) and why in r.failed[0][1], r.failed
    assert not any("4711" in h.chunk.text for h in pipeline.search("safe code 4711", settings, embedder=EMB).hits)


def _release_fifo_until(fifo: Path, over: threading.Event) -> None:
    """Every 30 s until ``over``: open the FIFO for writing and close it, which ends a read
    blocked on it (with no data); each read of it is released in turn."""
    while not over.wait(30):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # nobody is blocked reading it: nothing to release
            pass


def test_the_parse_read_is_as_safe_as_the_plan_read(tmp_path: Path) -> None:
    from ragcli.parsing import Todo

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    f = docs / "sub" / "b.md"
    f.write_text(GOOD)
    todo = Todo(str(f), str(docs), None)
    assert todo.read(1000) == GOOD.encode()
    with pytest.raises(SourceError, match="--max-file-size"):
        todo.read(10)
    _swap("folder-link", f, tmp_path)
    with pytest.raises(SourceError, match="'sub' on its way is a symbolic link now"):
        todo.read(1000)
    (docs / "sub").unlink()
    (docs / "sub").mkdir()
    os.mkfifo(f)
    with pytest.raises(SourceError, match="FIFO"):
        todo.read(1000)


# -- case 9: names that are not UTF-8 ------------------------------------------------------------


def test_a_name_that_is_not_utf8_fails_alone_and_json_stays_utf8(env: dict, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD)
    (docs / "naïve.md").write_text(GOOD.replace("apples", "quinces"))  # UTF-8 names are fine
    bad = latin1_name(docs, b"caf\xe9.txt", GOOD.encode())
    latin1_name(docs / os.fsdecode(b"r\xe9sum\xe9s"), b"inner.md", GOOD.encode())
    r = rag("ingest", str(docs), "--json", env=env)
    assert r.returncode == 3 and b"Traceback" not in r.stderr, r.stderr
    rep = json.loads(r.stdout.decode("utf-8"))  # strict UTF-8
    assert sorted(rep["added"]) == [str(docs / "good.md"), str(docs / "naïve.md")]
    failed = {f["path"]: f["reason"] for f in rep["failed"]}
    assert set(failed) == {f"{docs}/caf\\xe9.txt", f"{docs}/r\\xe9sum\\xe9s"}
    assert "file name is not valid UTF-8" in failed[f"{docs}/caf\\xe9.txt"]
    assert "nothing in it was read" in failed[f"{docs}/r\\xe9sum\\xe9s"] and "rename" in failed[f"{docs}/r\\xe9sum\\xe9s"]

    r = rag("ingest", str(docs), env=env)  # human output, and the name given on the command line
    assert r.returncode == 3 and "caf\\xe9.txt: file name is not valid UTF-8" in r.stderr.decode("utf-8")
    r = rag("ingest", str(bad), str(docs / "good.md"), "--json", env=env)
    rep = json.loads(r.stdout.decode("utf-8"))
    assert r.returncode == 3 and rep["unchanged"] == [str(docs / "good.md")]
    assert [f["path"] for f in rep["failed"]] == [f"{docs}/caf\\xe9.txt"]


# -- case 12: what `rag ask` re-reads -----------------------------------------------------------


def _limit_memory() -> None:  # a child that reads /dev/zero without bound stops at this, not the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _ask_in_child(index: Path, question: str) -> dict:
    r = subprocess.run([sys.executable, str(TOOL), "--ask", str(index), question], capture_output=True,
                       timeout=120, preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("swap, why", [
    ("fifo", "a FIFO (named pipe), not a regular file"),
    ("dev-zero", "a character device, not a regular file"),
    ("much-larger", "changed since it was ingested: it is 8589934592 bytes now"),
])
def test_a_cited_file_replaced_by_a_fifo_a_device_or_a_larger_file_is_not_verified(
        swap: str, why: str, tmp_path: Path, settings) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    f = docs / "orchard.md"
    f.write_text(GOOD)
    assert pipeline.ingest([str(docs)], settings, embedder=EMB).added == (str(f),)
    question = "When do apples ripen in the orchard?"
    ans = _ask_in_child(settings.index, question)
    assert ans["status"] == "answered" and ans["citations"][0]["source"] == str(f)  # it is cited, and verifies

    f.unlink()
    if swap == "fifo":
        os.mkfifo(f)
    elif swap == "dev-zero":
        f.symlink_to("/dev/zero")
    else:
        with open(f, "wb") as fh:  # sparse: costs no disk; read whole, it would take 8 GB of memory
            fh.write(GOOD.encode())
            fh.truncate(8 << 30)
    ans = _ask_in_child(settings.index, question)
    assert ans["status"] == "no_evidence" and ans["citations"] == []
    assert str(f) in ans["reason"] and why in ans["reason"], ans["reason"]
    if swap == "much-larger":
        assert f"{len(GOOD.encode())} then (not read)" in ans["reason"]
    else:
        assert "cannot be verified" in ans["reason"]


def test_hits_carry_the_size_recorded_at_ingest_and_the_verifier_reads_no_more(tmp_path: Path, settings) -> None:
    f = tmp_path / "orchard.md"
    f.write_text(GOOD)
    pipeline.ingest([str(f)], settings, embedder=EMB)
    hit = pipeline.search("apples ripen", settings, embedder=EMB).hits[0]
    assert hit.origin.size == len(GOOD.encode())  # documents.size, from the same query as the chunk
    f.write_text(GOOD + "More text appended after the ingest.\n")
    assert Verifier(sizes={str(f): hit.origin.size}).data(str(f)) is None
    assert "bytes now" in Verifier(sizes={str(f): hit.origin.size}).unreadable(str(f))
    assert Verifier().data(str(f)) == f.read_bytes()  # no recorded size (a JSON citation): the default cap


# -- issue 25: files of no supported type --------------------------------------------------------


def _untyped_folder(docs: Path) -> dict[str, str]:
    """Writes text files without a suffix (to read) and files ragcli cannot read (to skip);
    returns {name to skip: reason}."""
    docs.mkdir()
    (docs / "guide.md").write_text(GOOD)
    (docs / "README").write_text("Quokkas live on Rottnest Island. They are marsupials.\n")
    (docs / "LICENSE").write_text("Permission is hereby granted, free of charge, to any person.\n")
    (docs / "Makefile").write_text("test:\n\tpytest -q   # runs the marsupial tests\n")
    (docs / "notes.md.gz").write_bytes(gzip.compress(GOOD.encode()))
    (docs / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    (docs / "sheet.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    (docs / "tool").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4)
    (docs / "CHANGES").write_bytes(b"")
    return {"notes.md.gz": "unsupported file type '.gz'", "old.doc": "unsupported file type '.doc'",
            "sheet.xlsx": "unsupported file type '.xlsx'", "tool": "binary file without a known type",
            "CHANGES": "empty file without a known type"}


def test_files_of_no_known_type_are_skipped_with_their_type_and_text_without_a_suffix_is_read(
        env: dict, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    expected = _untyped_folder(docs)
    r = rag("ingest", str(docs), "--json", env=env)
    assert r.returncode == 0, r.stderr  # skipped never makes exit 3
    rep = json.loads(r.stdout)
    assert _rel(rep["added"], docs) == {"guide.md", "README", "LICENSE", "Makefile"} and rep["failed"] == []
    assert _skipped(rep, docs) == expected
    hit = next(row for row in _search(env, "quokkas Rottnest marsupials") if row["source"] == str(docs / "README"))
    assert page_text_from_file(hit["source"], None, hit["encoding"])[hit["start"]:hit["end"]] == hit["text"]

    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 0 and "5 skipped" in r.stdout.decode()
    assert sum(line.startswith("skipped: ") for line in r.stderr.decode().splitlines()) == 5


def test_many_skipped_files_are_counted_by_reason_not_listed(env: dict, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(GOOD)
    for i in range(30):
        (docs / f"sheet{i}.xlsx").write_bytes(b"PK\x03\x04")
        (docs / f"link{i}.md").symlink_to(docs / "guide.md")
    for i in range(12):
        (docs / f"photo{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    r = rag("ingest", str(docs), env=env)
    assert r.returncode == 0 and "72 skipped" in r.stdout.decode(), r.stdout
    lines = r.stderr.decode().splitlines()
    assert "skipped: 30 x unsupported file type '.xlsx'" in lines and f"skipped: 30 x {NOT_FOLLOWED}" in lines
    assert "skipped: 12 x unsupported file type '.png'" in lines and len(lines) <= 12
    r = rag("ingest", str(docs), "--json", env=env)
    assert len(json.loads(r.stdout)["skipped"]) == 72  # the full list is in the JSON

