"""The real CLI on the real engine: the plain solve's output, the engine's own output kept in its log
file, and no engine process left after `kill -9` of a running `reasoner eval`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cli.main import main
from reasoner import Reasoner
from reasoner.engines.engine_output import engine_log_dir
from tests.lent_engine import Lent

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The user's environment: no VLLM_LOGGING_LEVEL set by the test session."""
    env = {key: value for key, value in os.environ.items() if key != "VLLM_LOGGING_LEVEL"}
    return dict(env, PYTHONPATH=str(REPO))


def test_a_plain_solve_prints_the_answer_and_usage_and_nothing_else(
    engine_reasoner: Reasoner, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process, on the session's engine: the engine's own output staying off the terminal is the eval
    # test's below, which starts an engine of its own.
    lent = Lent(engine_reasoner)
    monkeypatch.setattr("reasoner.Reasoner", lent)
    assert main(["solve", "What is 2+2?", "--budget", "32"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "answer (direct, smollm2-135m-instruct)" in captured.out
    assert "generated_tokens" in captured.out
    assert "INFO" not in captured.out and "Traceback" not in captured.out
    assert lent.calls[0][1]["verbose"] is False


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


def test_kill_9_of_an_eval_leaves_no_engine_process_and_its_engine_wrote_only_to_its_log(tmp_path: Path) -> None:
    out, stderr = tmp_path / "arith.jsonl", tmp_path / "stderr.txt"
    args = ["eval", "--suite", "arith", "--strategies", "direct", "--budgets", "64", "--limit", "200"]
    started = time.time()
    with stderr.open("w") as stderr_file:
        cli = subprocess.Popen(
            [sys.executable, "-m", "cli", *args, "--out", str(out), "--concurrency", "2"],
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            cwd=REPO,
            env=cli_env(),
        )
    try:
        deadline = time.monotonic() + 400
        while not (out.is_file() and out.read_text().count("\n") >= 2):  # the marker line, then a record
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
    # Quiet by default: the engine's own output went to a fresh log under REASONER_HOME/logs, not the terminal.
    assert "Loading safetensors checkpoint shards" not in stderr.read_text()
    fresh_logs = [log for log in engine_log_dir().glob("engine-*.log") if log.stat().st_mtime >= started]
    assert any("Loading safetensors checkpoint shards" in log.read_text(errors="replace") for log in fresh_logs)
