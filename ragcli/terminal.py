"""What a person sees on a terminal while ``rag`` works: status lines, ingest progress, colour,
and a Ctrl-C that ends ``rag ask`` at once.

Everything here writes to stderr, and only when stderr is a terminal: pipes, files and
``--json`` get exactly the bytes they got without it (tests/test_terminal.py runs the commands
under a pseudo-terminal and compares). Colour follows https://no-color.org: ``NO_COLOR`` set
to anything, ``--no-color``, ``TERM=dumb`` or a stream that is not a terminal turn it off,
each stream decided on its own.

``IngestLine`` turns ``ingest.Tally`` counts into one line: files read, chunks embedded (of an
estimate of the total, from the chunks per byte seen so far), what is committed, and an ETA
from the embedding rate in chunks. Its clock is injectable, so its output is tested exactly.

Deliberately not here: what the commands print on stdout (``cli``), escaping (``display``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from .exits import Exit

if TYPE_CHECKING:
    from .ingest import Tally

CLEAR = "\r\033[K"  # to the start of the line, erase it


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or a stream without a file
        return False


def colour_enabled(stream: TextIO, no_color: bool = False) -> bool:
    """Colour on ``stream``: a terminal, no ``--no-color``, no ``NO_COLOR``, not ``TERM=dumb``."""
    if no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


_SGR = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def paint(text: str, style: str, enabled: bool) -> str:
    """``text`` in ``style`` (red, green, yellow, bold, dim) when ``enabled``, else unchanged.

    >>> paint("failed", "red", True), paint("failed", "red", False)
    ('\\x1b[31mfailed\\x1b[0m', 'failed')
    """
    return f"\033[{_SGR[style]}m{text}\033[0m" if enabled else text


def _width() -> int:
    return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


class StatusLine:
    """One line on stderr that is replaced in place, and erased by ``clear``; it writes
    nothing unless ``enabled`` (stderr is a terminal)."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write(CLEAR + text[: _width()])
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.shown = False


def plural(n: int, word: str, many: str = "") -> str:
    """``1 chunk``, ``2 chunks``, ``1,200 files``.

    >>> plural(1, "chunk"), plural(0, "chunk"), plural(1200, "file"), plural(2, "batch", "batches")
    ('1 chunk', '0 chunks', '1,200 files', '2 batches')
    """
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``1h02m``.

    >>> duration(44.6), duration(185), duration(3725)
    ('45s', '3m05s', '1h02m')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class IngestLine:
    """``rag ingest``'s progress line, from ``ingest.Tally`` counts.

    While the files are checked: ``checking 120/168 files``. Then::

        12/159 files read · 3,400/~9,800 chunks embedded · 2,000 committed (10 files) · ETA 1m20s

    The total of chunks is exact once every file is read, else estimated from the chunks per
    byte read so far (``~``); the ETA is the chunks left over the embedding rate since the
    first chunk was embedded, shown once there is a rate to speak of.
    """

    def __init__(self, status: StatusLine, clock: Callable[[], float] = time.monotonic) -> None:
        self.status, self.clock = status, clock
        self.last_shown = -1.0
        self.t_first: float | None = None  # when chunks were first seen embedded
        self.first_embedded = 0
        self.last: Tally | None = None

    def __call__(self, t: Tally) -> None:
        self.last = t
        now = self.clock()
        if t.chunks_embedded and self.t_first is None:
            self.t_first, self.first_embedded = now, t.chunks_embedded
        if not self.status.enabled or now - self.last_shown < 0.1 and t.files_done < t.files_total:
            return
        self.last_shown = now
        self.status.show(self.render(t, now))

    def total_chunks(self, t: Tally) -> tuple[int, bool]:
        """(chunks in all, exact?)"""
        if t.files_done >= t.files_total or not t.bytes_done:
            return t.chunks_parsed, t.files_done >= t.files_total
        return max(t.chunks_parsed, round(t.chunks_parsed * t.bytes_total / t.bytes_done)), False

    def render(self, t: Tally, now: float) -> str:
        if t.phase == "checking":
            return f"checking {t.files_done:,}/{plural(t.files_total, 'file')}"
        total, exact = self.total_chunks(t)
        parts = [f"{t.files_done:,}/{plural(t.files_total, 'file')} read"]
        if t.bytes_done or t.chunks_parsed:
            parts.append(f"{t.chunks_embedded:,}/{'' if exact else '~'}{plural(total, 'chunk')} embedded")
        parts.append(f"{t.chunks_committed:,} committed ({plural(t.files_committed, 'file')})")
        eta = self.eta(t, total, now)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}")
        return " · ".join(parts)

    def eta(self, t: Tally, total: int, now: float) -> float | None:
        if self.t_first is None or now - self.t_first < 2.0 or t.chunks_embedded <= self.first_embedded:
            return None
        rate = (t.chunks_embedded - self.first_embedded) / (now - self.t_first)  # chunks per second
        return max(0.0, total - t.chunks_embedded) / rate

    def kept(self) -> str:
        """For the interruption message: what this run committed."""
        t = self.last
        if t is None or not t.files_committed:
            return "nothing of this run was committed yet"
        return f"{plural(t.files_committed, 'file')} ({plural(t.chunks_committed, 'chunk')}) of this run are kept"


@contextmanager
def exit_on_interrupt(message: str, before: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Within: a Ctrl-C prints ``message`` on stderr and ends the process at once with 130.

    For commands that write nothing (``rag ask``): nothing needs cleaning up, and the model
    may be inside llama.cpp for seconds, where Python's own handler would not run until it
    returns. The C-level handler writes the signal to a wake-up pipe at once; a thread
    waiting on that pipe (the model's C code has released the GIL) prints and exits.
    ``before`` runs first (erase a status line, end a streamed line).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Lock()

    def bail(*_: object) -> None:
        if not done.acquire(blocking=False):
            return
        try:
            before()
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        finally:
            os._exit(Exit.INTERRUPTED)

    r, w = os.pipe()
    os.set_blocking(w, False)

    def watch() -> None:
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:  # the write end closed: the command is over
                return
            if signal.SIGINT in data:
                bail()

    old_handler = signal.signal(signal.SIGINT, bail)
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    thread = threading.Thread(target=watch, name="ragcli-interrupt", daemon=True)
    thread.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGINT, old_handler)
        os.close(w)  # the watcher's read returns b"" and it ends
        thread.join(timeout=1)
        os.close(r)
