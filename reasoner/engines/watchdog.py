"""Engine processes die with the process that started them, even after `kill -9` of it.

vLLM's EngineCore does not watch its parent: when the parent is killed without a chance to
shut the engine down, EngineCore and its workers live on (gigabytes each). So an engine
start first starts one small watchdog process (this file, run by path: standard library and
psutil only), once per process, reading a pipe from it. When every write end of that pipe
is closed, the parent is gone (killed or exited: the kernel closes it either way) and the
watchdog kills the processes it knows of, with their descendants, then exits.

It knows of a child from the child's first instruction, so no window is left between a
child's start and the parent's death:
- a child that runs a new program (spawn, subprocess) carries the parent's mark in its
  environment (`MARK_VARIABLE`, set while an engine starts), which the watchdog looks for;
  until its exec the child holds a write end of the pipe, so the watchdog waits for it;
- a child forked from Python (vLLM's `fork` start method) writes its own pid to the pipe
  before it lets go of its write end;
- and the parent hands each new child's pid to the watchdog while the engine starts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import IO

import psutil

MARK_VARIABLE = "REASONER_ENGINE_OF"
SWEEP_S = 3.0
"""How long the watchdog keeps sweeping for marked processes after the parent died (a child
in the middle of its exec shows its mark a moment later)."""

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
"""The one watchdog of this process, started at the first engine start."""
_mark = f"{os.getpid()}-{uuid.uuid4().hex}"
_marking = 0
"""How many `watch_new_children` blocks are running (the mark is in the environment while any is)."""


@contextlib.contextmanager
def watch_new_children(poll_s: float = 0.5) -> Iterator[None]:
    """Child processes this process starts while the block runs die with it.

    The watchdog is running before the block starts, and every process started in the block
    carries this process's mark in its environment, so it dies with this process from its first
    instruction. New children are also handed to the watchdog by pid every `poll_s` seconds
    while the block runs, and once more at its end (their descendants die with them).
    """
    me = psutil.Process()
    known = {child.pid for child in me.children()}
    with _lock:
        _running_watchdog()
    _set_mark(+1)
    stop = threading.Event()

    def hand_over_new() -> None:
        new = [child for child in me.children() if child.pid not in known]
        known.update(child.pid for child in new)
        if new:
            watch(new)

    def poll() -> None:
        while not stop.wait(poll_s):
            hand_over_new()

    poller = threading.Thread(target=poll, name="reasoner-watch-children", daemon=True)
    poller.start()
    try:
        yield
    finally:
        _set_mark(-1)
        stop.set()
        poller.join()
        hand_over_new()


def _set_mark(change: int) -> None:
    """Count a block in (+1) or out (-1); the mark is in `os.environ` while any block runs."""
    global _marking
    with _lock:
        _marking += change
        if _marking > 0:
            os.environ[MARK_VARIABLE] = _mark
        else:
            os.environ.pop(MARK_VARIABLE, None)


def watch(processes: list[psutil.Process]) -> None:
    """Have the watchdog kill `processes` (and their descendants) when this process dies."""
    processes = [process for process in processes if _watchdog is None or process.pid != _watchdog.pid]
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid} {process.create_time()!r}\n")
    global _watchdog
    with _lock:
        for _ in range(2):
            watchdog = _running_watchdog()
            try:
                stdin: IO[bytes] | None = watchdog.stdin
                assert stdin is not None
                stdin.write("".join(lines).encode())
                stdin.flush()
                return
            except (BrokenPipeError, OSError):
                _watchdog = None


def _after_fork_in_child() -> None:
    """In a child forked from Python: say so to the watchdog while an engine starts, then let go of the pipe."""
    global _lock, _watchdog
    _lock = threading.Lock()  # another thread may have held it at the fork
    watchdog, _watchdog = _watchdog, None
    stdin = watchdog.stdin if watchdog is not None else None
    if stdin is None or stdin.closed:
        return
    with contextlib.suppress(OSError, psutil.Error):
        if _marking > 0:
            os.write(stdin.fileno(), f"{os.getpid()} {psutil.Process().create_time()!r}\n".encode())
    with contextlib.suppress(OSError):
        stdin.raw.close()  # type: ignore[attr-defined]


os.register_at_fork(after_in_child=_after_fork_in_child)


def _running_watchdog() -> subprocess.Popen[bytes]:
    """This process's watchdog, started now if there is none (call with `_lock` held)."""
    global _watchdog
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen(
            [sys.executable, "-I", __file__, _mark],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the terminal's process group leaves it to its job
        )
    return _watchdog


def _marked(mark: str) -> list[psutil.Process]:
    """Every other process whose environment carries `mark`."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if process.pid != os.getpid() and process.environ().get(MARK_VARIABLE) == mark:
                found.append(process)
    return found


def _kill_trees(roots: list[psutil.Process]) -> None:
    """Kill `roots` and their descendants."""
    victims: list[psutil.Process] = []
    for process in roots:
        with contextlib.suppress(psutil.Error):
            victims.extend([*process.children(recursive=True), process])
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
    psutil.wait_procs(victims, timeout=10)


def _serve(commands: IO[str], mark: str) -> None:
    """Read `pid create_time` lines until the parent's end of the pipe closes, then kill.

    The watched processes that are still the ones registered go first, then the marked ones,
    sweeping again until none has been seen for `SWEEP_S` seconds.
    """
    watched: list[psutil.Process] = []
    for line in commands:
        with contextlib.suppress(ValueError, psutil.Error):
            pid, created = line.split()
            process = psutil.Process(int(pid))
            if abs(process.create_time() - float(created)) < 1e-3:
                watched.append(process)
    _kill_trees(watched)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < SWEEP_S:
        if marked := _marked(mark):
            _kill_trees(marked)
            quiet_since = time.monotonic()
        time.sleep(0.1)


if __name__ == "__main__":
    _serve(sys.stdin, sys.argv[1])
