"""Attacks on the sandbox: each must leave the host untouched and never pass."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from evals import grade_code
from evals.sandbox import SandboxLimits, run_sandboxed

SECRET_NAME = "REASONER_TEST_FAKE_SECRET"
SECRET_VALUE = "s3cr3t-token-for-the-sandbox-test"


def attack(body: str, timeout_s: float = 5.0) -> tuple[str, str]:
    """Grade a function whose body attacks the host; it would pass only if the attack worked."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    completion = f"def attack():\n    import os, sys\n{indented}\n    return 'done'\n"
    problem = {
        "prompt": "",
        "test": "def check(candidate):\n    assert candidate() == 'done'\n",
        "entry_point": "attack",
    }
    verdict = grade_code(completion, problem, timeout_s=timeout_s)
    assert not verdict.passed
    return verdict.status, verdict.detail


def leftover_sandbox_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "reasoner-sandbox-" in os.readlink(entry / "cwd"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_an_infinite_loop_is_stopped_at_the_time_limit() -> None:
    started = time.monotonic()
    status, _ = attack("while True:\n    pass", timeout_s=1.0)
    assert status == "timeout"
    assert time.monotonic() - started < 5
    assert leftover_sandbox_processes() == []


def test_a_fork_bomb_forks_nothing() -> None:
    status, detail = attack("while True:\n    os.fork()")
    assert (status, detail) == ("error", "PermissionError: blocked by the sandbox: os.fork")
    assert leftover_sandbox_processes() == []


@pytest.mark.parametrize(
    "spawn",
    [
        "import subprocess\nsubprocess.run(['sleep', '60'])",
        "os.system('sleep 60')",
        "os.posix_spawn('/bin/sleep', ['sleep', '60'], {})",
        "del sys.modules['posix']\nimport posix\nposix.fork()",
    ],
)
def test_starting_other_programs_is_refused(spawn: str) -> None:
    status, detail = attack(spawn)
    assert status == "error"
    assert "blocked by the sandbox" in detail
    assert leftover_sandbox_processes() == []


def test_a_huge_allocation_fails_inside_the_sandbox() -> None:
    status, detail = attack("hoard = bytearray(64 * 2**30)")
    assert (status, detail) == ("error", "MemoryError")


@pytest.mark.parametrize(
    "kill",
    [
        "import signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
        "import signal\nsignal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)",
    ],
)
def test_killing_the_parent_fails_and_the_grader_lives(kill: str) -> None:
    status, _ = attack(kill)
    assert status == "error"
    os.kill(os.getpid(), 0)


@pytest.mark.parametrize("target", ["absolute", "relative", "symlink"])
def test_writing_outside_the_working_directory_is_refused(tmp_path: Path, target: str) -> None:
    outside = tmp_path / "escaped.txt"
    bodies = {
        "absolute": f"open({str(outside)!r}, 'w').write('x')",
        "relative": "open('../../escaped.txt', 'w').write('x')",
        "symlink": f"os.symlink({str(tmp_path)!r}, 'link')\nopen('link/escaped.txt', 'w').write('x')",
    }
    status, detail = attack(bodies[target])
    assert status == "error"
    assert "blocked by the sandbox: write" in detail
    assert not outside.exists()


def test_the_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    run = run_sandboxed(f"import os\nprint(sorted(os.environ))\nassert {SECRET_NAME!r} in os.environ")
    assert run.outcome == "raised"
    assert SECRET_NAME not in run.output
    assert os.environ[SECRET_NAME] == SECRET_VALUE


def test_the_parents_environment_cannot_be_read_through_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    status, detail = attack("secret = open(f'/proc/{os.getppid()}/environ', 'rb').read()\nprint(secret)")
    assert status == "error"
    assert "blocked by the sandbox: read" in detail
    assert SECRET_VALUE not in detail


def test_files_outside_the_standard_library_cannot_be_read() -> None:
    status, detail = attack(f"open({str(Path(__file__))!r}).read()")
    assert (status, detail.split(":")[0]) == ("error", "PermissionError")


def test_the_network_is_unreachable() -> None:
    status, detail = attack("import socket\nsocket.socket().connect(('127.0.0.1', 22))")
    assert status == "error"
    assert "blocked by the sandbox: socket" in detail


@pytest.mark.parametrize("leave", ["os._exit(0)", "sys.exit(0)", "exit()", "raise SystemExit"])
def test_leaving_early_is_never_a_pass(leave: str) -> None:
    status, _ = attack(leave)
    assert status in ("crashed", "error")


def test_printing_the_success_report_by_hand_is_not_a_pass() -> None:
    forged = "for fd in range(3, 64):\n    try:\n        os.write(fd, b'0' * 32 + b' {\"outcome\": \"returned\"}')\n"
    status, _ = attack(forged + "    except OSError:\n        pass\nos._exit(0)")
    assert status == "crashed"


def test_output_floods_are_capped() -> None:
    run = run_sandboxed("while True:\n    print('x' * 4096)", SandboxLimits(wall_s=5.0, output_bytes=1000))
    assert run.outcome == "raised"
    assert run.exception_type == "OSError"
    assert len(run.output) <= 1000


def test_the_working_directory_is_writable_and_fresh() -> None:
    first = run_sandboxed("import os\nassert os.listdir('.') == ['program.py']\nopen('scratch', 'w').write('x')")
    second = run_sandboxed("import os\nassert os.listdir('.') == ['program.py']")
    assert (first.outcome, second.outcome) == ("returned", "returned")


def test_the_standard_library_still_works() -> None:
    run = run_sandboxed(
        "import hashlib, json, re, collections, itertools, math, heapq, tempfile, threading\nprint('ok')"
    )
    assert (run.outcome, run.output) == ("returned", "ok\n")
