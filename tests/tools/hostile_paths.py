"""Folders a hostile or unlucky user gives ``rag ingest``: links out of the folder, special
files, names that are not UTF-8, files without a suffix; and ``ask_scripted``, a ``rag ask``
with the hashing embedder and a scripted model, to run in a child process (a read that hangs
or grows without bound then costs a timeout, not the test run).

    python tests/tools/hostile_paths.py DIR            # writes the link trap into DIR
    python tests/tools/hostile_paths.py --ask INDEX Q  # prints ask's JSON (cites evidence 1)
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

GOOD = "# Orchard notes\n\nThe orchard grows apples and pears. Apples ripen in September.\n"
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA secret key material\n"
PRIVATE = "Private diary: the safe code is 4711. Nobody else should read this.\n"


@dataclass(frozen=True)
class Trap:
    docs: Path  # the folder to ingest
    good: tuple[Path, ...]  # the regular files in it, which must be ingested
    links: dict[str, Path]  # name (relative to docs) -> what the link points at
    fifo: Path  # a named pipe inside docs
    outside: Path  # the private folder the links lead to


def link_trap(base: Path) -> Trap:
    """``base/docs`` with good files and links out of it: a file link to a private file, a
    folder link to a private folder, a "cloned repository" whose committed symlink points at
    an SSH key, a link to /proc/self/status, and a FIFO; the private things are in ``base/home``."""
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(SECRET)
    (home / "private").mkdir()
    (home / "private" / "diary.txt").write_text(PRIVATE)
    (home / "passwd").write_text("root:x:0:0:root:/root:/bin/bash OPENSSH PRIVATE KEY holder\n")
    docs = base / "docs"
    (docs / "repo" / "config").mkdir(parents=True)
    good = (docs / "notes.md", docs / "repo" / "README.md")
    for g in good:
        g.write_text(GOOD)
    links = {
        "passwd.txt": home / "passwd",
        "private": home / "private",
        "repo/config/deploy_key.txt": home / ".ssh" / "id_ed25519",
        "status.txt": Path("/proc/self/status"),
    }
    for name, target in links.items():
        (docs / name).symlink_to(target)
    fifo = docs / "pipe.md"
    os.mkfifo(fifo)
    return Trap(docs, good, links, fifo, home)


def latin1_name(folder: Path, name: bytes, data: bytes) -> Path:
    """A file whose name is ``name``, bytes that need not be UTF-8 (Python keeps them as lone
    surrogates); returns the path as Python spells it."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.path.join(os.fsencode(folder), name)
    with open(raw, "wb") as fh:
        fh.write(data)
    return Path(os.fsdecode(raw))


def ask_scripted(index: str, question: str, reply: str = '{"answer": "Apples.", "evidence": [1]}') -> dict:
    """``rag ask --json`` with the hashing embedder and a model that always cites evidence 1."""
    from ragcli import pipeline
    from ragcli.answer import AnswerParams
    from ragcli.config import resolve_settings
    from ragcli.models.embedders import HashEmbedder
    from ragcli.models.generators import ScriptedGenerator

    loose = AnswerParams(min_similarity=0.0, min_sentence_similarity=0.0, min_evidence_similarity=0.0)
    ans = pipeline.ask(question, resolve_settings(index=index), embedder=HashEmbedder(),
                       generator=ScriptedGenerator(reply), params=loose)
    return {**ans.to_json(), "reason": ans.reason}


if __name__ == "__main__":
    if sys.argv[1] == "--ask":
        print(json.dumps(ask_scripted(sys.argv[2], sys.argv[3])))
    else:
        print(link_trap(Path(sys.argv[1])))
