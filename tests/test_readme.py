"""The README's command examples run, as written, with the real models: every line of its
``sh`` blocks (but those marked ``<!-- not run ... -->``: installing, ``make``), in order, in a
folder holding a copy of ``sample_corpus/``, one index shared by them all. A line's exit code
is the one its comment names (``exit 4``), else 0; ``rag ingest --watch`` is stopped with a
Ctrl-C (SIGINT) once it says it is watching. And every command of the README's table has an
example among them; the README stays within 300 lines.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE
from .tools.signals import sigint_default

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
NOT_RUN = "<!-- not run"
FENCE = re.compile(r"^```(\w*)\s*$")


def examples(text: str) -> list[str]:
    """The command lines of the README's ``sh`` blocks that are not marked as not run.

    >>> examples("x\\n```sh\\nrag status   # what\\n\\n# a comment\\n```\\n<!-- not run -->\\n```sh\\nmake\\n```\\n")
    ['rag status   # what']
    """
    out: list[str] = []
    lines = text.splitlines()
    block: list[str] | None = None
    skip = False
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if block is None and m and m.group(1):
            block = []
            skip = m.group(1) != "sh" or (i > 0 and lines[i - 1].startswith(NOT_RUN))
        elif block is not None and line.startswith("```"):
            if not skip:
                out += [x for x in block if x.strip() and not x.lstrip().startswith("#")]
            block = None
        elif block is not None:
            block.append(line)
    return out


def expected_code(line: str) -> int:
    m = re.search(r"#.*\bexit (\d+)", line)
    return int(m.group(1)) if m else 0


def commands_in_table(text: str) -> set[str]:
    return set(re.findall(r"^\| `rag (\w+)", text, flags=re.M))


@pytest.fixture
def workdir(tmp_path: Path) -> tuple[Path, dict]:
    """A folder with sample_corpus/ and a ``rag`` on PATH that runs this checkout's ragcli."""
    work = tmp_path / "work"
    shutil.copytree(SAMPLE, work / "sample_corpus")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "rag"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ragcli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RAG_INDEX": str(tmp_path / "index"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    return work, env


def _run_watch(line: str, work: Path, env: dict) -> tuple[int, str]:
    """Start it, wait (up to 120 s) for its ``watching`` line, then Ctrl-C."""
    p = subprocess.Popen(["bash", "-c", f"exec {line}"], preexec_fn=sigint_default, cwd=work, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    err = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = p.stderr.readline()
        if not got:
            break
        err.append(got)
        if got.startswith("watching "):
            break
    p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=120)
    return p.returncode, "".join(err) + rest + out


def test_every_readme_example_runs_with_the_exit_code_it_says(workdir: tuple[Path, dict]) -> None:
    text = README.read_text()
    lines = examples(text)
    used = {m.group(1) for x in lines for m in re.finditer(r"(?:^|\| )rag (\w+)", x)}
    assert commands_in_table(text) <= used, f"commands without an example: {commands_in_table(text) - used}"
    work, env = workdir
    for line in lines:
        if "--watch" in line:
            code, shown = _run_watch(line, work, env)
        else:
            r = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=env, capture_output=True,
                               text=True, stdin=subprocess.DEVNULL, timeout=600)
            code, shown = r.returncode, r.stdout + r.stderr
        assert code == expected_code(line), f"{line}\nexit {code}, expected {expected_code(line)}:\n{shown[-3000:]}"


def test_readme_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= 300
