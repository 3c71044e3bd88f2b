"""Run ``rag ARGS`` as another (unprivileged) user, for tests that run as root.

    python tests/tools/as_user.py USER rag-args...      # e.g. nobody search "river" --index DIR

Root passes every permission check, so a test of what another user can or cannot do with an
index must drop root. ``subprocess.run(..., user=...)`` cannot be used directly here: the
interpreter lives under root's private home (``/root/.pyenv``), which the other user cannot
even execute. So this starts as root, imports the CLI and every standard module a command
may import later (the other user could not read them), then gives up root for good
(``setgroups``, ``setgid``, ``setuid``) and runs the command. From then on the kernel checks
each open as that user: a real test of the file modes, not a simulation.

Exit status: the command's. 126 when root cannot be dropped (not root, or no such user).
"""

from __future__ import annotations

import importlib
import os
import pwd
import sys
from pathlib import Path

# Standard and third-party modules the commands import lazily (after the drop they cannot be read).
PRELOAD = (
    "ast", "mmap", "ctypes", "llama_cpp", "contextlib", "csv", "dataclasses", "difflib", "email", "functools", "gzip", "hashlib",
    "html", "html.parser", "io", "itertools", "json", "locale", "math", "mimetypes", "numpy",
    "pathlib", "platform", "pwd", "queue", "random", "re", "shlex", "shutil", "signal", "sqlite3", "stat",
    "statistics", "string", "tempfile", "textwrap", "threading", "tomllib", "unicodedata",
    "urllib.parse", "uuid", "zipfile", "zlib", "encodings.idna", "encodings.unicode_escape", "encodings.raw_unicode_escape", "encodings.latin_1", "encodings.utf_8",
    "concurrent.futures", "concurrent.futures.process", "multiprocessing", "multiprocessing.pool",
    "ragcli.cli", "ragcli.pipeline", "ragcli.ingest", "ragcli.retrieval", "ragcli.answer", "ragcli.evidence",
    "ragcli.grounding", "ragcli.verify", "ragcli.models.embedders", "ragcli.models.generators", "ragcli.loaders",
    "ragcli.index.sqlite.reader", "ragcli.index.sqlite.writer", "ragcli.index.sqlite.lock", "ragcli.index.sqlite.directory",
)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        user = pwd.getpwnam(argv[0])
    except KeyError:
        print(f"as_user: no user {argv[0]!r}", file=sys.stderr)
        return 126
    if os.geteuid() != 0:
        print("as_user: must start as root", file=sys.stderr)
        return 126
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from ragcli.cli import run as rag_main

    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)  # for good: real, effective and saved ids
    os.environ["HOME"] = "/nonexistent"
    sys.argv = ["rag", *argv[1:]]
    try:
        rag_main()
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
