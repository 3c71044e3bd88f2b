"""``rag ingest --watch`` with real file edits in a temporary folder, on a directory index and
on PostgreSQL (a real throwaway server): create, modify, an editor's atomic save (temporary
file + ``os.replace``), rename, delete, a file that fails, then Ctrl-C (SIGINT): exit 130,
the index opens, ``rag ls`` and ``rag search`` show the folder as it is.

The real ``rag`` command as a subprocess, the hashing embedder. Nothing waits a fixed time:
each step polls the watcher's ``--json`` lines with a generous timeout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ragcli.types import IngestReport
from ragcli.watch import Change, Retrying, Synced, Watching, changes_of, watch

from .conftest import rag
from .tools.signals import sigint_default

pytest.importorskip("watchfiles")
TIMEOUT = 60.0  # s for one change to show: far above the 2 s it takes on an idle machine


class Watcher:
    """A running ``rag ingest --watch``: its stdout lines read in a thread, as they come."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ragcli", "ingest", "--watch", *args], preexec_fn=sigint_default,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env}, stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for t in self.readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def wait_for_err(self, text: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if found := [line for line in list(self.err) if text in line]:
                return found[0]
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"no {text!r} on stderr within {TIMEOUT:g} s: {self.err}")

    def wait_for(self, found: Callable[[str], bool], what: str) -> str:
        """The first line (seen before or still to come) that ``found`` accepts."""
        deadline = time.monotonic() + TIMEOUT
        for line in self.seen:
            if found(line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if found(line):
                return line
        self.stop()
        raise AssertionError(f"no line for {what} within {TIMEOUT:g} s; stdout: {self.seen}; stderr: {self.err}")

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.seen]

    def event(self, kind: str, path: Path) -> dict:
        line = self.wait_for(lambda s: (e := json.loads(s))["event"] == kind and e.get("path") == str(path),
                             f"{kind} {path.name}")
        return json.loads(line)

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=TIMEOUT)
        for t in self.readers:
            t.join(timeout=TIMEOUT)
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            self.seen.append(line)
        return self.proc.returncode, "".join(self.err)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request, hash_models: Path, tmp_path: Path) -> tuple[dict, Path]:
    """The folder to watch and the env: a directory index *inside* that folder (it must
    never be watched or ingested), or a PostgreSQL schema of its own."""
    docs = tmp_path / "docs"
    docs.mkdir()
    where = str(docs / "idx") if request.param == "sqlite" else request.getfixturevalue("pg_index")
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": where}, docs


def _ls(env: dict, status: str = "indexed") -> list[str]:
    r = rag("ls", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return sorted(row["path"] for row in map(json.loads, r.stdout.decode().splitlines()) if row["status"] == status)


def _sources(env: dict, query: str) -> set[str]:
    r = rag("search", "--json", "-k", "20", "--mode", "lexical", query, env=env)
    assert r.returncode in (0, 4), r.stderr
    return {json.loads(line)["source"] for line in r.stdout.decode().splitlines() if '"source"' in line}


def test_watch_follows_edits_saves_renames_deletions_and_exits_130_with_the_index_intact(
        setup: tuple[dict, Path], tmp_path: Path) -> None:
    env, docs = setup
    a, b = docs / "alpacas.md", docs / "bees.txt"
    a.write_text("# Alpacas\n\nAlpacas hum softly while grazing on the highland meadow.\n")
    b.write_text("Bees dance to tell the hive where the clover grows.\n")
    (docs / ".hidden").mkdir()
    (docs / ".hidden" / "secret.md").write_text("Hidden folders are left out, watched or not.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "far.md").write_text("A file reached only through a symbolic link.\n")
    (docs / "linked").symlink_to(outside)  # met in the folder: not followed
    w = Watcher(["--json", str(docs)], env)
    try:
        w.wait_for(lambda s: json.loads(s)["event"] == "watching", "the watcher to start")
        synced = next(e for e in w.events() if e["event"] == "synced")
        assert sorted(synced["added"]) == [str(a), str(b)], synced

        c = docs / "camels.md"  # created
        c.write_text("# Camels\n\nCamels store fat in their humps for the long desert crossing.\n")
        assert w.event("added", c)["chunks"] >= 1

        a.write_text(a.read_text() + "\nThe herd sleeps close together on cold nights.\n")  # modified
        assert w.event("updated", a)["chunks"] >= 1

        tmp = docs / "tmp4f2a9c"  # an editor's atomic save: a temporary file renamed over the old one
        tmp.write_text("Bees also gather resin to seal the hive against draughts.\n")
        os.replace(tmp, b)
        w.event("updated", b)

        (outside / "far.md").write_text("Changed behind the link: still not followed.\n")
        d = docs / "dromedaries.md"  # renamed
        os.rename(c, d)
        w.event("removed", c)
        assert w.event("added", d)["chunks"] >= 1

        bad = docs / "broken.pdf"  # one bad file is reported, the others go on
        bad.write_bytes(b"%PDF-1.7 this is not a PDF at all")
        assert w.event("failed", bad)["reason"]

        a.unlink()  # deleted
        w.event("removed", a)
        code, err = w.interrupt()
    finally:
        w.stop()

    assert code == 130, err
    assert "interrupted" in err and "intact" in err, err
    changed = {e["path"] for e in w.events() if "path" in e}
    assert not any("tmp4f2a9c" in p or "linked" in p or ".hidden" in p or "/idx" in p for p in changed), changed
    assert rag("status", env=env).returncode == 0  # the index opens
    assert _ls(env) == [str(b), str(d)]
    assert _ls(env, "failed") == [str(bad)]
    assert _sources(env, "dromedaries camels humps desert") == {str(d)}
    assert _sources(env, "resin draughts") == {str(b)}
    assert not _sources(env, "alpacas herd highland meadow")
    r = rag("ingest", "--no-wait", "--json", str(docs), env=env)  # the writer lock went with the process
    assert r.returncode == 3, r.stderr  # broken.pdf still fails; nothing else to do
    out = json.loads(r.stdout)
    assert out["added"] == [] and out["removed"] == [] and sorted(out["unchanged"]) == [str(b), str(d)]


def test_watch_human_lines_one_per_change(hash_models: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    env = {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}
    w = Watcher([str(docs)], env)
    try:
        assert "0 added" in w.wait_for(lambda s: "added," in s, "the first ingest's summary")
        assert "Ctrl-C" in w.wait_for_err("watching")
        note = docs / "note.md"
        note.write_text("Notes taken during the meeting about the llama shearing schedule.\n")
        shown = w.wait_for(lambda s: s.startswith("added: "), "the added line")
        assert "note.md" in shown and "(1 chunk)" in shown, shown
        code, err = w.interrupt()
    finally:
        w.stop()
    assert code == 130, err


# -- the loop on its own: a scripted sequence of changes, a store that fails once --------------


def _report(**kw) -> IngestReport:
    fields = dict(index="i", added=(), updated=(), unchanged=(), removed=(), failed=(), chunks=0, seconds=0.0)
    return IngestReport(**{**fields, **kw})


def test_watch_loop_syncs_first_then_each_group_and_retries_a_failed_run() -> None:
    from ragcli.errors import StorageError

    calls: list[object] = []
    results: list[object] = [_report(added=("/d/a.md",), doc_chunks=(("/d/a.md", 3),)),
                             StorageError("disk full"),
                             _report(updated=("/d/a.md",), removed=("/d/b.md",), doc_chunks=(("/d/a.md", 4),))]

    def sync(only):
        calls.append(None if only is None else tuple(only))
        r = results.pop(0) if calls[-1] is not None else _report()
        if isinstance(r, Exception):
            raise r
        return r

    events: list[object] = []
    watch(["/d"], sync, events.append, iter([set(), {"/d/a.md"}, set(), {"/d/b.md"}, {"/d/a.md"}]),
          clock=lambda: 0.0)
    assert calls == [None, ("/d/a.md",), ("/d/b.md",), ("/d/a.md", "/d/b.md")]
    assert isinstance(events[0], Synced) and events[1] == Watching(("/d",))
    assert events[2:] == [Change("/d/a.md", "added", 3), Retrying("disk full", 1),
                          Change("/d/a.md", "updated", 4), Change("/d/b.md", "removed")]


def test_changes_of_a_report_leave_out_unchanged_and_skipped_files() -> None:
    r = _report(added=("/d/n.md",), unchanged=("/d/u.md",), failed=(("/d/x.pdf", "cannot read it"),),
                skipped=(("/d/n.md~", "unsupported file type '.md~'"),), doc_chunks=(("/d/n.md", 2),))
    assert changes_of(r) == [Change("/d/n.md", "added", 2), Change("/d/x.pdf", "failed", reason="cannot read it")]


def test_index_watch_in_process_with_scripted_changes(hash_models: Path, tmp_path: Path) -> None:
    """``Index.watch`` with ``changes=`` instead of the file watcher: the same loop, in process."""
    from email.message import EmailMessage

    from ragcli import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpacas hum softly while grazing.\n")
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "Shearing", "a@example.org", "b@example.org"
    mail.set_content("The shearing starts on Monday at the north barn.\n")
    mail.add_attachment(b"Shearing list: Nube, Pita, Luna.\n", maintype="text", subtype="plain", filename="list.txt")
    (docs / "m.eml").write_bytes(mail.as_bytes())

    def changes():
        yield set()  # the watcher is up: the first ingest runs
        (docs / "b.md").write_text("# B\n\nBees dance to tell the hive where the clover grows.\n")
        (docs / "a.md").unlink()
        (docs / "m.eml").unlink()  # the mail goes with its attachment
        (docs / "skip.xyz").write_text("not a format ragcli reads")
        yield {str(docs / "a.md"), str(docs / "b.md"), str(docs / "m.eml"), str(docs / "skip.xyz")}

    events: list[object] = []
    with Index(tmp_path / "idx", models=hash_models) as idx:
        idx.watch([docs], events.append, changes=changes())
        assert [d.path for d in idx.documents()] == [str(docs / "b.md")]
    assert isinstance(events[0], Synced)
    assert sorted(events[0].report.added) == [str(docs / "a.md"), str(docs / "m.eml"), str(docs / "m.eml#list.txt")]
    assert events[1:] == [Watching((str(docs),)), Change(str(docs / "a.md"), "removed"),
                          Change(str(docs / "b.md"), "added", 1), Change(str(docs / "m.eml"), "removed"),
                          Change(str(docs / "m.eml#list.txt"), "removed")]
