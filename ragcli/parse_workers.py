"""Worker processes that run one job each at a time, every job bounded in time and memory.

``rag ingest`` reads files in them (``ingest_local.read_locally``): a file that hangs a parser, eats
memory or crashes a C library fails alone, and the others go on. Each worker is a subprocess
of its own, ``python -m ragcli.parse_workers``, that talks with its parent over its standard
input and output in length-prefixed pickles: it never imports the caller's main module (the
``multiprocessing`` spawn start did, so a plain script calling ``Index.ingest()`` without
``if __name__ == "__main__":`` started workers that each started the ingest again, and waited
forever), and it can be killed and replaced at any moment, which a ``multiprocessing.Pool``
cannot do for one task.

- **Time.** A job has ``timeout`` seconds from when its worker is handed it, and as many again
  each time it calls ``extend()`` (a page read by OCR). Past that the worker is killed (SIGKILL:
  a regex or a C parser cannot be interrupted any other way), the job comes back as
  ``Lost("timeout")``, and a new worker takes the next job.
- **Memory.** The parent reads each busy worker's resident memory every ``POLL_S`` seconds;
  past ``memory`` bytes the worker is killed and its job comes back as ``Lost("memory")``.
  Watching, not only an rlimit, because a C library that cannot allocate says anything but
  that (lxml: "XPathEvalError: unknown error", which reads as a damaged file). The rlimit is
  the backstop, for memory taken faster than the watch: ``RLIMIT_DATA`` (heap and private
  mappings; address space reserved and never written, as the tokenizer and ONNX Runtime
  reserve it, is not counted) of twice ``memory``, at least ``memory`` + 1 GB; past it
  Python code gets a ``MemoryError``. A worker left holding over half of ``memory`` after
  a job (the allocator does not always give memory back) is replaced, so the next file is
  not blamed for it.
- **Death.** A worker that dies (a segfault, the kernel's OOM killer) loses its job as
  ``Lost("died", "killed by SIGSEGV")`` and is replaced; one that dies while starting, three
  times running, ends the pool (``Workers.unavailable`` says why) and the jobs left run in
  this process, without the limits, rather than not at all.
- **Order, and the parent's memory.** Results come back in job order. At most ``window``
  jobs are out (running, or done and not taken yet), and while the finished ones not taken
  yet hold ``window_bytes`` no new job is handed out.
- **Ctrl-C** is the parent's: a worker ignores SIGINT (the terminal sends it to the whole
  process group) and starts with it blocked (from a thread that blocks it), so it never
  prints a traceback. It dies with the thread that started it (``PR_SET_PDEATHSIG``) and at
  the end of its input, so none outlives an ingest however that ends.

What it does not do: know what a job is. The job function and its jobs are pickled; their
module must be importable in a fresh process (the parent's ``sys.path`` is passed on).
Pickles cross only these pipes, between ragcli and processes it started itself (as
``multiprocessing``'s did), never a file; a worker's own standard output is /dev/null, so
what a library prints cannot pass for a message.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import brief

_HEADER = struct.Struct(">cQ")  # tag, payload length
READY, INIT_FAILED, DONE, ERROR, EXTEND, JOB = b"R", b"I", b"D", b"E", b"X", b"J"
MAX_START_FAILURES = 3  # workers dying while they start, in a row, before the pool gives up
START_TIMEOUT_S = 120.0  # a worker not ready by then counts as one that died starting
POLL_S = 0.1  # how often a busy worker's memory is read
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Lost:
    """A job that did not come back: ``why`` "timeout", "memory", "died" or "error" (``detail``
    says more: the seconds, the megabytes, "killed by SIGSEGV", the exception)."""

    why: str
    detail: str = ""


# -- the worker's side ---------------------------------------------------------------------------

_OUT: IO[bytes] | None = None  # the pipe to the parent, in a worker; None in any other process


def extend() -> None:
    """Ask for one more ``timeout`` for the job running now (a slow step by nature). Does
    nothing outside a worker."""
    if _OUT is not None:
        _send(_OUT, EXTEND, b"")


def _send(fh: IO[bytes], tag: bytes, payload: bytes) -> None:
    fh.write(_HEADER.pack(tag, len(payload)))
    fh.write(payload)
    fh.flush()


def _read_exactly(fh: IO[bytes], n: int) -> bytes | None:
    parts, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _receive(fh: IO[bytes]) -> tuple[bytes, bytes] | None:
    head = _read_exactly(fh, _HEADER.size)
    if head is None:
        return None
    tag, n = _HEADER.unpack(head)
    payload = _read_exactly(fh, n)
    return None if payload is None else (tag, payload)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the thread that started it ends (Linux); exit now if it has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the end of the input still stops the worker once its job is done
    if os.getppid() != parent:
        os._exit(0)


def main(argv: Sequence[str]) -> None:
    """A worker: read the set-up, then run jobs until the input ends."""
    global _OUT
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # drops a Ctrl-C held back since the start
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(int(argv[0]) if argv else os.getppid())
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # what a library prints (odfpy prints whole XML parts) must not reach the pipe
    _OUT = out
    try:
        got = _receive(inp)
        if got is None:
            return
        setup = pickle.loads(got[1])
        sys.path[:] = setup["sys_path"]
        if setup["memory"]:
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            limit = max(2 * setup["memory"], setup["memory"] + (1 << 30))  # the backstop (module docstring)
            resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        try:
            fn = pickle.loads(setup["fn"])
        except Exception as e:  # the job function's module cannot be imported here (its class is in __main__, ...)
            _send(out, INIT_FAILED, f"{type(e).__name__}: {e}".encode())
            return
        _send(out, READY, b"")
        while (got := _receive(inp)) is not None:
            try:
                tag, payload = DONE, pickle.dumps(fn(pickle.loads(got[1])), pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # fn should handle its own failures; this is the last resort
                tag, payload = ERROR, brief(e, 200).encode()
            _send(out, tag, payload)
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent is gone, or stopped us: nothing to say, no traceback
    finally:
        os._exit(0)  # no interpreter teardown: quick, and silent


# -- the parent's side ---------------------------------------------------------------------------


@dataclass
class _Worker:
    proc: subprocess.Popen
    buf: bytearray = field(default_factory=bytearray)
    ready: bool = False
    seq: int | None = None  # the job it is running
    deadline: float = float("inf")
    spent: bool = False  # it has finished a job since its memory was last read


class Workers:
    """``n`` worker processes running ``fn`` on jobs; ``map`` gives the results in order.

    Use as a context manager: leaving it kills every worker. ``unavailable``: why the
    workers could not run (then ``map`` ran the jobs in this process), else "".
    """

    def __init__(self, fn: Callable[[Any], Any], n: int, timeout: float, memory: int | None = None,
                 window: int = 8, window_bytes: int = 64 << 20) -> None:
        self.fn, self.n, self.timeout, self.memory = fn, max(1, n), timeout, memory
        self.window, self.window_bytes = max(1, window), window_bytes
        self.unavailable = ""
        self._cond = threading.Condition()
        self._done: dict[int, bytes | Lost] = {}
        self._done_bytes = 0
        self._workers: list[_Worker] = []
        self._stop = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, jobs: Sequence[Any], start: Callable[[Callable[[], None]], None] | None = None) -> Iterator[Any]:
        """Each job's result (or ``Lost``), in order. ``start(fn)`` runs ``fn`` to start the
        thread that manages the workers (``ingest`` holds Ctrl-C back around it)."""
        if not jobs:
            return
        try:
            blob = pickle.dumps(self.fn, pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # an embedder holding a lock, a lambda, ...
            self.unavailable = f"the job cannot be sent to a worker process ({type(e).__name__}: {e})"
            yield from (self.fn(j) for j in jobs)
            return
        self._jobs, self._blob, self._next = jobs, blob, 0
        self._thread = threading.Thread(target=self._run, name="ragcli-parse-workers", daemon=True)
        (start or (lambda f: f()))(self._thread.start)
        for seq in range(len(jobs)):
            with self._cond:
                while seq not in self._done and not self.unavailable and self._error is None:
                    self._cond.wait()
                if self._error is not None:
                    raise self._error
                item = self._done.pop(seq, None)
                if isinstance(item, bytes):
                    self._done_bytes -= len(item)
            self._wake()
            if item is None:  # the workers could not run: the rest here
                yield self.fn(jobs[seq])
            else:
                yield item if isinstance(item, Lost) else pickle.loads(item)

    def close(self) -> None:
        """Stop: kill every worker (they hold nothing worth keeping) and the thread."""
        with self._cond:
            self._stop = True
            workers = list(self._workers)
        for w in workers:
            _kill(w.proc)
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    # -- the managing thread: it alone starts workers, hands out jobs and reads results

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # full (a wake-up is pending anyway) or closed

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        failures = 0
        try:
            while True:
                with self._cond:
                    if self._stop:
                        return
                    idle = [w for w in self._workers if w.ready and w.seq is None]
                    out = sum(w.seq is not None for w in self._workers) + len(self._done)
                    jobs_left = self._next < len(self._jobs)
                    if not jobs_left and not any(w.seq is not None for w in self._workers):
                        return  # every job handed out and back
                    want = min(self.n, len(self._jobs) - self._next + sum(w.seq is not None for w in self._workers))
                while len(self._workers) < want and jobs_left:
                    self._start(sel)
                for w in idle:
                    with self._cond:
                        if (self._next >= len(self._jobs) or out >= self.window
                                or (out and self._done_bytes >= self.window_bytes)):
                            break
                        seq, self._next, out = self._next, self._next + 1, out + 1
                    self._hand(w, seq)
                now = time.monotonic()
                deadline = min((w.deadline for w in self._workers), default=float("inf"))
                if self.memory and any(w.seq is not None for w in self._workers):
                    deadline = min(deadline, now + POLL_S)
                for key, _ in sel.select(None if deadline == float("inf") else max(0.0, deadline - now)):
                    if key.data is None:
                        os.read(self._wake_r, 4096)
                    else:
                        failures = self._readable(sel, key.data, failures)
                now = time.monotonic()
                for w in list(self._workers):
                    if w.deadline <= now:
                        failures += not w.ready
                        self._finish(w, Lost("timeout", f"{self.timeout:g}"))
                        self._retire(sel, w)
                    elif self.memory and (w.seq is not None or w.spent):
                        self._watch(sel, w)
                if failures >= MAX_START_FAILURES:
                    self._give_up("worker processes kept dying as they started")
                    return
        except _Stopped:
            pass  # gave up: ``unavailable`` says why, and the caller runs the rest
        except BaseException as e:  # a bug here must reach the caller, not hang it
            with self._cond:
                self._error = e
                self._cond.notify_all()
        finally:
            with self._cond:
                workers, self._workers = self._workers, []
            for w in workers:
                _kill(w.proc)
            sel.close()

    def _start(self, sel: selectors.BaseSelector) -> None:
        import ragcli

        root = str(Path(ragcli.__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]),
               "TOKENIZERS_PARALLELISM": "false"}  # one thread a worker: the workers are the parallelism
        try:
            proc = subprocess.Popen([sys.executable, "-m", "ragcli.parse_workers", str(os.getpid())],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
            setup = {"sys_path": list(sys.path), "memory": self.memory, "fn": self._blob}
            _send(proc.stdin, JOB, pickle.dumps(setup, pickle.HIGHEST_PROTOCOL))  # type: ignore[arg-type]
        except OSError as e:
            self._give_up(f"cannot start a worker process ({e.strerror or e})")
            raise _Stopped from None
        w = _Worker(proc, deadline=time.monotonic() + START_TIMEOUT_S)
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        sel.register(proc.stdout, selectors.EVENT_READ, w)  # type: ignore[arg-type]
        with self._cond:
            self._workers.append(w)

    def _hand(self, w: _Worker, seq: int) -> None:
        w.seq, w.deadline = seq, time.monotonic() + self.timeout
        try:
            _send(w.proc.stdin, JOB, pickle.dumps(self._jobs[seq], pickle.HIGHEST_PROTOCOL))  # type: ignore[arg-type]
        except (OSError, ValueError):
            pass  # it died: its output ends, and _readable reports the job lost

    def _readable(self, sel: selectors.BaseSelector, w: _Worker, failures: int) -> int:
        """Read what ``w`` sent; returns the count of workers that died starting, in a row."""
        try:
            chunk = os.read(w.proc.stdout.fileno(), 1 << 20)  # type: ignore[union-attr]
        except BlockingIOError:
            return failures
        except OSError:
            chunk = b""
        if not chunk:  # it died (or closed its output: then it is stopped)
            try:
                code = w.proc.wait(5)
            except subprocess.TimeoutExpired:
                _kill(w.proc)
                code = w.proc.returncode
            if not w.ready:
                failures += 1
            self._finish(w, Lost("died", _describe(code)))
            self._retire(sel, w)
            return failures
        w.buf += chunk
        while len(w.buf) >= _HEADER.size:
            tag, n = _HEADER.unpack_from(w.buf)
            if tag in (DONE, ERROR):
                w.deadline = float("inf")  # the job is done: only its result is still coming
            if len(w.buf) < _HEADER.size + n:
                break
            payload = bytes(w.buf[_HEADER.size : _HEADER.size + n])
            del w.buf[: _HEADER.size + n]
            if tag == READY:
                w.ready, w.deadline, failures = True, float("inf"), 0
            elif tag == INIT_FAILED:
                self._give_up(f"a worker process cannot load the job ({payload.decode(errors='replace')})")
                raise _Stopped
            elif tag == EXTEND:
                w.deadline += self.timeout
            elif tag == DONE:
                self._finish(w, payload)
                w.spent = True
            elif tag == ERROR:
                self._finish(w, Lost("error", payload.decode(errors="replace")))
        return failures

    def _watch(self, sel: selectors.BaseSelector, w: _Worker) -> None:
        """Kill a busy worker over ``memory`` (its job is lost); replace an idle one left
        holding over half of it."""
        busy, w.spent = w.seq is not None, False
        rss = _rss(w.proc.pid)
        if rss > (self.memory if busy else self.memory // 2):  # type: ignore[operator]
            self._finish(w, Lost("memory", f"{rss / 1e6:.0f}"))  # (idle: nothing to finish)
            self._retire(sel, w)

    def _finish(self, w: _Worker, result: bytes | Lost) -> None:
        """Record ``w``'s job as done with ``result``; ``w`` is idle after."""
        if w.seq is None:
            return
        with self._cond:
            self._done[w.seq] = result
            if isinstance(result, bytes):
                self._done_bytes += len(result)
            w.seq, w.deadline = None, float("inf")
            self._cond.notify_all()

    def _retire(self, sel: selectors.BaseSelector, w: _Worker) -> None:
        _kill(w.proc)
        try:
            sel.unregister(w.proc.stdout)  # type: ignore[arg-type]
        except (KeyError, ValueError):
            pass
        with self._cond:
            if w in self._workers:
                self._workers.remove(w)

    def _give_up(self, why: str) -> None:
        """No worker can run: the jobs not done yet run in the caller's process."""
        with self._cond:
            self.unavailable = why
            self._cond.notify_all()


class _Stopped(Exception):
    """Raised inside the managing thread once it has given up (``unavailable`` is set)."""


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
    for fh in (proc.stdin, proc.stdout):
        try:
            if fh is not None:
                fh.close()
        except OSError:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _describe(code: int) -> str:
    """How a worker ended, in words: "killed by SIGSEGV", "exited with status 1"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


if __name__ == "__main__":  # run as ``python -m``: in the module by its name, whose ``_OUT`` jobs see
    from ragcli import parse_workers

    parse_workers.main(sys.argv[1:])
