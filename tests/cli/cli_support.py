"""Running the `reasoner` CLI for tests, in-process or as a real subprocess: exit code, stdout, stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_process(
    *argv: str | bytes, reasoner_home: Path, timeout_s: float = 120, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """The real `reasoner` CLI in a fresh interpreter, `REASONER_HOME` set to `reasoner_home`."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        capture_output=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), REASONER_HOME=str(reasoner_home), **env),
        timeout=timeout_s,
    )
