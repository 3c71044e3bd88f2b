"""Run ``rag`` as a person at a terminal would: stderr (and, if asked, stdout) on a real
pseudo-terminal, read back as the bytes the terminal was sent.

``run_rag(args, stdout_tty=False)`` gives (exit code, stdout bytes, terminal bytes).
``stdout_tty=False`` keeps stdout a pipe: what a script reads, to compare with a run that
has no terminal at all. ``until`` / ``then`` let a test act (send Ctrl-C) once the terminal
has shown a given byte string: no sleeps, no guessing how long a step takes.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    code: int
    stdout: bytes
    terminal: bytes
    after_signal_s: float | None = None  # seconds from the Ctrl-C to the exit, if one was sent


def _child_setup() -> None:
    os.setsid()  # a session of its own, whose controlling terminal is the pty, as in a shell:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # Ctrl-C written to the pty then sends it SIGINT
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_rag(args: list[str], env: dict | None = None, stdout_tty: bool = False, until: bytes | None = None,
            then: Callable[[subprocess.Popen, int], None] | None = None, timeout: float = 300) -> Seen:
    """Run ``python -m ragcli ARGS`` with stderr on a pty; when the terminal has shown ``until``,
    call ``then(process, pty_fd)`` once (e.g. write Ctrl-C to the pty)."""
    master, slave = pty.openpty()
    out_r, out_w = (None, None) if stdout_tty else os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "ragcli", *args], env={**os.environ, **(env or {})},
                         stdin=slave, stdout=slave if stdout_tty else out_w, stderr=slave,
                         preexec_fn=_child_setup, close_fds=True)
    os.close(slave)
    if out_w is not None:
        os.close(out_w)
    term, out = bytearray(), bytearray()
    fired_at: float | None = None
    deadline = time.monotonic() + timeout
    fds = [master] + ([out_r] if out_r is not None else [])
    while fds and time.monotonic() < deadline:
        ready, _, _ = select.select(fds, [], [], 0.5)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the pty's other side is closed
                data = b""
            if not data:
                fds.remove(fd)
                continue
            (term if fd == master else out).extend(data)
        if until is not None and fired_at is None and until in term and then is not None:
            fired_at = time.monotonic()
            then(p, master)
        if p.poll() is not None and not ready:
            break
    code = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    ended = time.monotonic()
    os.close(master)
    if out_r is not None:
        os.close(out_r)
    return Seen(code, bytes(out), bytes(term).replace(b"\r\n", b"\n"),
                None if fired_at is None else ended - fired_at)


def ctrl_c(p: subprocess.Popen, fd: int) -> None:
    """What pressing Ctrl-C does: the terminal driver sends SIGINT to the foreground group."""
    os.write(fd, b"\x03")
