"""`reasoner serve` refuses bad options with one line and exit code 2, before starting an engine."""

from __future__ import annotations

import socket

import pytest

from tests.cli.cli_support import run_cli


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--budget", "0"], "invalid budget"),
        (["--max-concurrency", "0"], "--max-concurrency must be at least 1"),
        (["--max-queue", "-1"], "must not be negative"),
        (["--port", "abc"], "invalid int value"),
    ],
)
def test_bad_serve_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run_cli(capsys, "serve", *argv)
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1


def test_a_busy_port_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run_cli(capsys, "serve", "--port", str(taken.getsockname()[1]))
    assert code == 2 and "cannot listen on 127.0.0.1" in err and err.count("\n") == 1


def test_serving_an_unreachable_endpoint_exits_3_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    code, _, err = run_cli(capsys, "serve", "--endpoint", "http://127.0.0.1:9/v1", "--port", str(free_port))
    assert code == 3
    assert err.count("\n") == 1 and "127.0.0.1:9" in err


def test_an_endpoint_with_engine_args_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "serve", "--endpoint", "http://127.0.0.1:9/v1", "--engine-arg", "max_model_len=512")
    assert code == 2 and "endpoint=" in err and err.count("\n") == 1
