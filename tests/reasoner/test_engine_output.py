"""While an engine starts, the processes it spawns write to a log file; this process's own
Python output still reaches the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STARTS_A_NOISY_CHILD = """
import logging, subprocess, sys
from reasoner.engines.engine_output import engine_output_to_log

with engine_output_to_log("test") as log:
    logging.getLogger("vllm.triton_utils.importing").warning("VLLM IMPORT NOTICE")
    subprocess.run([sys.executable, "-c", "import sys; print('CHILD OUT'); print('CHILD ERR', file=sys.stderr)"])
    print("PARENT STATUS", file=sys.stderr, flush=True)
print("LOG", log, flush=True)
"""


def run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTS_A_NOISY_CHILD],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), REASONER_HOME=str(tmp_path)),
        timeout=60,
    )


def test_spawned_processes_write_to_the_log_and_not_the_terminal(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CHILD" not in result.stdout + result.stderr
    assert "VLLM IMPORT NOTICE" not in result.stdout + result.stderr
    log = Path(result.stdout.split("LOG ", 1)[1].strip())
    assert log.parent == tmp_path / "logs"
    for line in ("CHILD OUT", "CHILD ERR", "VLLM IMPORT NOTICE"):
        assert line in log.read_text()


def test_this_process_keeps_writing_to_the_terminal_while_the_engine_starts(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.stderr.strip() == "PARENT STATUS"


def test_only_the_newest_logs_are_kept(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for index in range(15):
        old = logs / f"engine-old-{index:02d}.log"
        old.write_text("x")
        os.utime(old, (index, index))
    run(tmp_path)
    kept = sorted(path.name for path in logs.glob("engine-*.log"))
    assert len(kept) == 10
    assert "engine-old-00.log" not in kept
