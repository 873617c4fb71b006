"""Starting a child the way a terminal would: SIGINT at its default disposition and not blocked.

A shell starts a background job with SIGINT ignored (`make test &`, `nohup ... &`, many CI agents), every
child inherits that across exec, and Python then never raises KeyboardInterrupt. A test of Ctrl-C checks
what a user at a terminal gets, so its child resets both before it becomes the program under test.
"""

from __future__ import annotations

import sys

_RESET_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def from_a_terminal(*python_argv: str) -> list[str]:
    """The command that runs `python *python_argv` with SIGINT as a terminal's foreground job has it."""
    return [sys.executable, "-c", _RESET_THEN_EXEC, *python_argv]
