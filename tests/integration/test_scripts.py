"""`solve()` from a plain script: no `__main__` guard needed, and no orphan engine processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.engine

SCRIPT = """\
from reasoner import solve
solution = solve("What is 2 + 2?", budget=32)
print("ANSWERED", solution.usage.generated_tokens, flush=True)
"""

SLOW_SCRIPT = """\
from reasoner import Reasoner
reasoner = Reasoner()
reasoner.start()
print("STARTED", flush=True)
reasoner.solve("Count from 1 to 5000, one number per line.", budget=3000)
print("FINISHED", flush=True)
"""


def start_script(path: Path, source: str) -> subprocess.Popen[str]:
    """Run `source` as a plain script in a fresh interpreter, output captured."""
    path.write_text(source)
    return subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(
            {key: value for key, value in os.environ.items() if key != "VLLM_LOGGING_LEVEL"}, PYTHONUNBUFFERED="1"
        ),
    )


def wait_gone(pids: list[int], timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            pid for pid in alive if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        time.sleep(0.5)
    return alive


def test_a_script_without_main_guard_solves_once_and_leaves_no_engine(tmp_path: Path) -> None:
    process = start_script(tmp_path / "plain.py", SCRIPT)
    children: set[int] = set()
    while process.poll() is None:
        children.update(child.pid for child in psutil.Process(process.pid).children(recursive=True))
        time.sleep(0.5)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    assert stdout.count("ANSWERED") == 1
    assert "Traceback" not in stderr + stdout
    assert "EngineDeadError" not in stderr + stdout
    assert not wait_gone(sorted(children))


def test_ctrl_c_mid_solve_leaves_no_engine_processes(tmp_path: Path) -> None:
    process = start_script(tmp_path / "slow.py", SLOW_SCRIPT)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "STARTED", process.stderr.read() if process.stderr else ""
    children = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    assert children
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert "FINISHED" not in process.stdout.read()
    assert not wait_gone(children)
