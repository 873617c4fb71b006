"""Engine processes die with the process that started them, even after `kill -9` of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

PARENT = """
import subprocess, sys, time
from reasoner.engines.watchdog import watch_new_children

with watch_new_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""


def gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def start_parent() -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def test_a_watched_child_dies_when_its_parent_is_killed_with_sigkill() -> None:
    parent, child = start_parent()
    try:
        assert psutil.pid_exists(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert gone(child, timeout_s=10)
    finally:
        for pid in (child, parent.pid):
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_watched_child_lives_while_its_parent_lives() -> None:
    parent, child = start_parent()
    try:
        time.sleep(1.0)
        assert psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait(timeout=10)
        assert gone(child, timeout_s=10)
