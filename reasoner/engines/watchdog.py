"""Engine processes die with the process that started them, even after `kill -9` of it.

vLLM's EngineCore does not watch its parent: when the parent is killed without a chance to
shut the engine down, EngineCore and its workers live on (gigabytes each). So the first
engine start of a process also starts one small watchdog process (this file, run by path:
standard library and psutil only). The parent sends it the pid and start time of each engine
process it spawns, over the watchdog's stdin. When that pipe closes, the parent is gone
(killed or exited: the kernel closes the pipe either way) and the watchdog kills every
watched process that is still the same process, with its descendants, then exits.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import psutil

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
"""The one watchdog of this process, started at the first engine start."""


@contextlib.contextmanager
def watch_new_children(poll_s: float = 0.5) -> Iterator[None]:
    """Child processes this process starts while the block runs die with it.

    New children are handed to the watchdog every `poll_s` seconds while the block runs (an
    engine start takes long enough to be killed during it), and once more at its end.
    """
    me = psutil.Process()
    known = {child.pid for child in me.children()}
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
        stop.set()
        poller.join()
        hand_over_new()


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
            if _watchdog is None or _watchdog.poll() is not None:
                _watchdog = _start_watchdog()
            try:
                stdin: IO[bytes] | None = _watchdog.stdin
                assert stdin is not None
                stdin.write("".join(lines).encode())
                stdin.flush()
                return
            except (BrokenPipeError, OSError):
                _watchdog = None


def _start_watchdog() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's process group leaves it to its job
    )


def _kill_trees(watched: dict[int, float]) -> None:
    """Kill each watched process that is still the one registered, and its descendants."""
    victims: list[psutil.Process] = []
    for pid, created in watched.items():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if abs(process.create_time() - created) < 1e-3:
                victims.extend([*process.children(recursive=True), process])
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
    psutil.wait_procs(victims, timeout=10)


def _serve(commands: IO[str]) -> None:
    """Read `pid create_time` lines until the parent's end of the pipe closes, then kill."""
    watched: dict[int, float] = {}
    for line in commands:
        with contextlib.suppress(ValueError):
            pid, created = line.split()
            watched[int(pid)] = float(created)
    _kill_trees(watched)


if __name__ == "__main__":
    _serve(sys.stdin)
