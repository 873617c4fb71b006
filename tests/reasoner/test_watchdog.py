"""Engine processes die with the process that started them, even after `kill -9` of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

PARENT = """
import subprocess, sys, time
from reasoner.engines.watchdog import watch_new_children

with watch_new_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""


UNPOLLED_PARENT = """
import subprocess, sys, time
from reasoner.engines.watchdog import watch_new_children

with watch_new_children(poll_s=600):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(child.pid, flush=True)
    time.sleep(300)
"""

FORKING_PARENT = """
import multiprocessing, time
from reasoner.engines.watchdog import watch_new_children

with watch_new_children(poll_s=600):
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(300,))
    child.start()
    print(child.pid, flush=True)
    time.sleep(300)
"""

AFTER_PARENT = """
import subprocess, sys, time
from reasoner.engines.watchdog import watch_new_children

with watch_new_children():
    pass
later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
print(later.pid, flush=True)
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


def start_parent(script: str = PARENT) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def test_a_watched_child_lives_while_its_parent_lives() -> None:
    parent, child = start_parent()
    try:
        time.sleep(1.0)
        assert psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait(timeout=10)
        assert gone(child, timeout_s=10)


@pytest.mark.parametrize(
    "script", [PARENT, UNPOLLED_PARENT, FORKING_PARENT], ids=["handed-over", "spawned-unpolled", "forked-unpolled"]
)
def test_a_watched_child_dies_when_its_parent_is_killed_with_sigkill(script: str) -> None:
    """Also in the window of the first half second, where the parent never handed the child's pid to the watchdog."""
    parent, child = start_parent(script)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert gone(child, timeout_s=15)
    finally:
        for pid in (child, parent.pid):
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_started_after_the_engine_start_is_left_alone() -> None:
    parent, later = start_parent(AFTER_PARENT)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert not gone(later, timeout_s=5)
    finally:
        for pid in (later, parent.pid):
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries `ORPHAN_TEST_TAG=tag` (every descendant of the CLI does)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("ORPHAN_TEST_TAG") == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def first_engine_child(cli: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Return as soon as the CLI has an engine process (vLLM's EngineCore or the resource tracker it starts)."""
    me = psutil.Process(cli.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and cli.poll() is None:
        for child in me.children():
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "multiprocessing" in command or command.startswith("VLLM::"):
                return
        time.sleep(0.002)
    pytest.fail(f"the CLI started no engine process (exit code {cli.poll()})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One CLI killed per run (about 40 s of CPU each on 2 cores); three under `--full` (`make test-full`).

    The window itself (a child started before the parent handed its pid over) is hit on every run by the
    cheap `spawned-unpolled` and `forked-unpolled` cases above.
    """
    if "attempt" in metafunc.fixturenames:
        metafunc.parametrize("attempt", range(3 if metafunc.config.getoption("--full") else 1))


@pytest.mark.engine
def test_kill_9_of_the_cli_as_its_first_engine_process_appears_leaves_no_process_behind(attempt: int) -> None:
    tag = uuid.uuid4().hex
    cli = subprocess.Popen(
        [sys.executable, "-m", "cli", "solve", "What is 2 + 2?", "--budget", "8"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), ORPHAN_TEST_TAG=tag),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first_engine_child(cli, timeout_s=180)
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=10)
        deadline = time.monotonic() + 30
        while (survivors := tagged(tag)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [process.pid for process in survivors] == []
    finally:
        cli.kill()
        for process in tagged(tag):
            process.kill()
