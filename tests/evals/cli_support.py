"""Running the `reasoner` CLI in-process for tests: exit code, stdout and stderr."""

from __future__ import annotations

import pytest

from evals.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
