"""``rag ingest``'s local executor: the plan's files read and chunked in worker processes.

``read_locally`` hands each file to ``parse_workers`` with the run's ``parsing.ReadLimits``:
a file that runs past ``file_timeout``, takes more than ``max_memory`` or crashes its
worker fails alone with the reason, and a new worker reads the next one. Every ingest with
a file to read uses at least one worker, so the limits hold for a one-file ingest too; the
main process meanwhile loads the embedder's model (``ingest._WarmUp``), so the worker's
start-up (about 0.2 s) is not added to it. ``--workers 0`` reads in the main process, with
the text limit but without the time and memory limits.

Ctrl-C: the thread that starts the workers starts with SIGINT held back
(``_sigint_deferred``), and so do the workers; they ignore it once running.

What it does not do: embed (``ingest._Batches``), or run on other machines (``ingest_ray``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from . import parse_workers
from .chunking import ChunkParams
from .errors import SourceError, UsageError
from .models.embedders import Embedder
from .parsing import Parsed, ReadLimits, Todo, memory_reason, parse_file

PARALLEL_MIN_FILES = 8  # fewer files to read than this (and little data): one worker process
PARALLEL_MIN_BYTES = 4 << 20
PARSED_AHEAD_BYTES = 64 << 20  # parsed files waiting for the embedder hold at most this (pickled), plus one


def _lost_reason(lost: parse_workers.Lost, limits: ReadLimits) -> str:
    """Why a file failed whose worker did not return it (``parse_workers.Lost``)."""
    if lost.why == "timeout":
        return (f"reading it took longer than {limits.file_timeout:g} s, the --file-timeout limit "
                "(raise it to ingest this file)")
    if lost.why == "memory":
        return memory_reason(limits)
    if lost.why == "died":
        hint = "the system ran out of memory?" if "SIGKILL" in lost.detail else "a crash in a parsing library"
        return f"the process reading it died ({lost.detail}: {hint}); the other files were read"
    if lost.detail.startswith("MemoryError"):
        return memory_reason(limits)
    return f"cannot read it ({lost.detail})"


@dataclass(frozen=True)
class _Reader:
    """What a worker process needs to read and chunk a file: pickled to it once."""

    count: Callable[[Sequence[str]], list[int]]
    params: ChunkParams
    limits: ReadLimits
    memory_limited: bool

    def __call__(self, todo: Todo) -> Parsed:
        try:
            data = todo.read(self.limits.max_file_size)  # as the walk found it: no link, FIFO or device
        except SourceError as e:
            return Parsed(todo, failed=((e.path, e.reason),))
        return parse_file(todo, data, self.count, self.params, limits=self.limits, memory_limited=self.memory_limited)


def read_locally(todos: Sequence[Todo], embedder: Embedder, params: ChunkParams, limits: ReadLimits,
                 timings: dict[str, float], workers: int | None = None) -> Generator[Parsed, None, None]:
    """The local executor: parsed files in plan order, not embedded (the batches embed).

    Files are read in ``workers`` worker processes (None: ``default_workers``; at least one
    for any file, so every file is held to ``limits``), ``parse_workers``: a file that runs
    past ``limits.file_timeout`` or crashes its worker fails alone, and its worker is
    replaced. ``workers`` = 0 reads in this process, without the time and memory limits (the
    text limit holds). Parsed files wait in a window bounded in files and in bytes, so memory
    stays flat when parsing outruns embedding.
    """
    if workers is None:
        workers = default_workers(len(todos), sum(t.size for t in todos))
    timings["workers"] = float(workers)
    if workers <= 0:
        read = _Reader(embedder.count_tokens, params, limits, memory_limited=False)
        for t in todos:
            yield read(t)
        return
    read = _Reader(embedder.count_tokens, params, limits, memory_limited=True)
    told = False
    with parse_workers.Workers(read, workers, limits.file_timeout, limits.max_memory,
                               window=2 * workers + 2, window_bytes=PARSED_AHEAD_BYTES) as pool:
        for t, res in zip(todos, pool.map(todos, start=_start_deferred), strict=True):
            parsed = res if isinstance(res, Parsed) else Parsed(t, failed=((t.path, _lost_reason(res, limits)),))
            if pool.unavailable and not told:
                told = True
                timings["workers"] = 0.0
                parsed = replace(parsed, notes=(
                    f"files are read in this process, without the per-file time and memory limits: "
                    f"{pool.unavailable}. An embedder passed to the Python API must be importable by "
                    "name (defined in a module, not in the script run as __main__)",))
            yield parsed


def _start_deferred(start: Callable[[], None]) -> None:
    """Start the thread that starts the workers with Ctrl-C held back: the thread, and every
    worker it starts, inherit the blocked signal (see ``_sigint_deferred``)."""
    with _sigint_deferred():
        start()


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back while worker processes are being started, then deliver it.

    A worker interrupted while its parent is still writing its start-up data dies with an
    EOFError traceback on the user's terminal, and one the pool has not registered yet
    outlives ``terminate()``. Blocking SIGINT in this thread is not enough on its own: the
    kernel hands the signal to any thread that does not block it (BLAS, ONNX Runtime), and
    Python then raises KeyboardInterrupt in the main thread all the same. So a handler
    records it, and the mask (which spawned children inherit) keeps the workers deaf to it
    until their initializer ignores it.
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    got: list[int] = []
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGINT)
        if current is not signal.SIG_IGN:
            old_handler = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
            if got:
                if callable(old_handler):
                    old_handler(signal.SIGINT, None)
                elif old_handler == signal.SIG_DFL:
                    signal.raise_signal(signal.SIGINT)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, as ``taskset`` or a container sets it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(n_files: int, n_bytes: int) -> int:
    """Worker processes for reading: one for small ingests (so every file is held to the time
    and memory limits), else all CPUs but the embedder's one, at most four."""
    if n_files == 0:
        return 0
    if n_files < PARALLEL_MIN_FILES and n_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(4, available_cpus() - 1, n_files))


def check_workers(workers: int | None) -> int | None:
    """``--workers`` for local reading, if this machine can run that many; else a usage error."""
    if workers is None:
        return None
    most = available_cpus()
    if workers < 0 or workers > most:
        raise UsageError(f"--workers {workers}: this machine runs at most {most} worker processes "
                         f"(its CPUs); give a number from 0 to {most}")
    return workers
