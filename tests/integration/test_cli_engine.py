"""The real CLI on the real engine: quiet by default, the engine's logs with -v, and no engine
process left after `kill -9` of a running `reasoner eval`."""

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

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The user's environment: no VLLM_LOGGING_LEVEL set by the test session."""
    env = {key: value for key, value in os.environ.items() if key != "VLLM_LOGGING_LEVEL"}
    return dict(env, PYTHONPATH=str(REPO))


def test_a_plain_solve_prints_the_answer_and_usage_and_nothing_else() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "solve", "What is 2+2?", "--budget", "32"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    assert "answer (direct, smollm2-135m-instruct)" in result.stdout
    assert "generated_tokens" in result.stdout
    assert "INFO" not in result.stdout and "Traceback" not in result.stdout


def engine_processes(root: int) -> list[psutil.Process]:
    processes = []
    for process in psutil.Process(root).children(recursive=True):
        try:
            if "VLLM" in process.name() or "VLLM" in " ".join(process.cmdline()):
                processes.append(process)
        except psutil.Error:
            continue
    return processes


def still_running(processes: list[psutil.Process], timeout_s: float) -> list[int]:
    """The pids among `processes` still running (not gone, not a zombie) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    running = [process.pid for process in processes]
    while running and time.monotonic() < deadline:
        time.sleep(0.5)
        running = [pid for pid in running if psutil.pid_exists(pid) and _not_zombie(pid)]
    return running


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kill_9_of_a_verbose_eval_leaves_no_engine_process(tmp_path: Path) -> None:
    out, stderr = tmp_path / "arith.jsonl", tmp_path / "stderr.txt"
    args = ["eval", "--suite", "arith", "--strategies", "direct", "--budgets", "64", "--limit", "200"]
    with stderr.open("w") as stderr_file:
        cli = subprocess.Popen(
            [sys.executable, "-m", "cli", *args, "--out", str(out), "--concurrency", "2", "-v"],
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            cwd=REPO,
            env=cli_env(),
        )
    try:
        deadline = time.monotonic() + 400
        while not (out.is_file() and out.read_text().count("\n") >= 1):
            assert cli.poll() is None and time.monotonic() < deadline, "the eval never wrote a record"
            time.sleep(0.5)
        engine = engine_processes(cli.pid)
        assert engine, "no VLLM::EngineCore / VLLM::Worker process found"
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=30)
        assert still_running(engine, timeout_s=30) == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=30)
    assert "Loading safetensors checkpoint shards" in stderr.read_text()  # -v: the engine's own output shows
