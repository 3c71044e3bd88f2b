"""An embedder double whose token counting misbehaves on purpose, inside the parse workers.

``ingest`` counts tokens while it chunks, in the worker process that reads the file, so a
trap word in a file's text makes that worker do what a broken parsing library would: crash
in C, be killed, hang, or raise. Everything else is ``HashEmbedder``'s. The class lives in a
module (not a test's ``__main__``) so that a worker process can import it by name.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Sequence

from ragcli.models.embedders import HashEmbedder

TRAPS = ("SEGFAULT-TRAP", "KILL-TRAP", "HANG-TRAP", "RAISE-TRAP")


class TrapEmbedder(HashEmbedder):
    """``SEGFAULT-TRAP``: reads address 0 (SIGSEGV); ``KILL-TRAP``: SIGKILL, as the kernel's OOM
    killer sends it; ``HANG-TRAP``: sleeps for an hour; ``RAISE-TRAP``: ZeroDivisionError."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        joined = "\n".join(texts)
        if "SEGFAULT-TRAP" in joined:
            ctypes.string_at(0)
        if "KILL-TRAP" in joined:
            os.kill(os.getpid(), signal.SIGKILL)
        if "HANG-TRAP" in joined:
            time.sleep(3600)
        if "RAISE-TRAP" in joined:
            raise ZeroDivisionError("a reader library's bug")
        return super().count_tokens(texts)
