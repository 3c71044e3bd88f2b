"""Child processes that hear Ctrl-C as a user's would."""

from __future__ import annotations

import signal


def sigint_default() -> None:
    """``preexec_fn`` for a child the test interrupts: children of a shell's background job (a CI
    runner, ``nohup make test &``) inherit SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler; give the child the terminal's default, as a user's shell would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
