"""`solve()` from a plain script: no `__main__` guard needed, and no orphan engine processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.terminal import from_a_terminal

pytestmark = pytest.mark.engine

# No `__main__` guard: an engine start that re-ran the main module would answer twice. The
# second solve is forced to its full 3000 tokens, so it is still running when Ctrl-C comes.
SCRIPT = """\
from reasoner import solve
from reasoner.api import default_reasoner
from reasoner.testing import forced_lengths
solution = solve("What is 2 + 2?", budget=32)
print("ANSWERED", solution.usage.generated_tokens, flush=True)
try:
    forced_lengths(default_reasoner()).solve("Count from 1 to 5000, one number per line.", budget=3000)
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
"""


def start_script(path: Path, source: str) -> subprocess.Popen[str]:
    """Run `source` as a plain script in a fresh interpreter, output captured."""
    path.write_text(source)
    return subprocess.Popen(
        from_a_terminal(str(path)),
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


def test_a_script_without_main_guard_solves_once_survives_ctrl_c_mid_solve_and_leaves_no_engine(
    tmp_path: Path,
) -> None:
    process = start_script(tmp_path / "plain.py", SCRIPT)
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    assert line.startswith("ANSWERED"), process.stderr.read()
    children = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    assert children
    time.sleep(1.0)  # the forced solve is running: 3000 tokens take far longer
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert stdout.splitlines() == ["INTERRUPTED"]  # answered once (above), interrupted, never finished
    assert "Traceback" not in stderr + stdout
    assert "EngineDeadError" not in stderr + stdout
    assert not wait_gone(children)
