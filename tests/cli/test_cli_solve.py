from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from cli.main import main
from cli.progress import engine_start_status, start_message
from reasoner import Reasoner
from reasoner.accelerators import get_accelerator
from reasoner.engines.remote import RemoteBackend
from reasoner.testing import ScriptedBackend
from tests.cli.cli_support import run_cli
from tests.lent_engine import Lent


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "   ", "--budget", "64"], "prompt is empty"),
        (["solve", "q", "--budget", "0"], "tokens"),
        (["solve", "q", "--budget", "-3"], "tokens"),
        (["solve", "q", "--budget", "1.5"], "invalid int value"),
        (["solve", "q", "--budget", "2"], "below the 4 tokens"),
        (["solve", "q", "--budget", "64", "--thinking", "60", "--answer", "10"], "exceeds tokens"),
        (["solve", "q", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["solve", "q", "-o", "temprature=1"], "unknown option 'temprature'"),
        (["solve", "q", "-o", "novalue"], "not KEY=VALUE"),
        (["solve", "q", "--model", "/no/such/model"], "does not exist"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_a_folder_that_is_not_a_model_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "solve", "q", "--model", str(tmp_path))
    assert code == 2
    assert "no config.json" in err


def test_help_documents_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("solve", "eval", "report", "calibrate", "serve", "models"):
        assert command in out
        sub_code, sub_out, _ = run_cli(capsys, command, "--help")
        assert sub_code == 0
        assert "usage: reasoner " + command in sub_out


def test_models_lists_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["models"])
    assert code == 0
    assert "smollm2-135m" in capsys.readouterr().out


def test_an_endpoint_that_is_not_a_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "solve", "What is 1 + 1?", "--endpoint", "ftp://example.org")
    assert code == 2
    assert err.count("\n") == 1 and "not an http(s) URL" in err


def test_an_unreachable_endpoint_from_the_environment_exits_3_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONER_ENDPOINT", "http://127.0.0.1:9/v1")
    code, _, err = run_cli(capsys, "solve", "What is 1 + 1?")
    assert code == 3
    assert err.count("\n") == 1 and "127.0.0.1:9" in err


def test_the_engine_start_status_line_shows_the_elapsed_time_on_a_terminal_only() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    with engine_start_status(terminal, start_message(ScriptedBackend([]), "smollm2-135m-instruct")):
        time.sleep(0.3)
    drawn = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "Starting the vLLM engine for smollm2-135m-instruct" in drawn
    assert "0:00:00" in drawn
    piped = Console(file=io.StringIO())
    with engine_start_status(piped, "Starting the vLLM engine for smollm2-135m-instruct"):
        time.sleep(0.1)
    assert piped.file.getvalue() == ""  # type: ignore[attr-defined]


def test_the_status_line_says_servers_are_reached_for_an_endpoint() -> None:
    one = RemoteBackend("http://gpu-box:8000")
    assert start_message(one, "qwen3") == "Connecting to http://gpu-box:8000 for qwen3"
    fleet = RemoteBackend(["http://a:8000", "http://b:8000"])
    assert start_message(fleet, "qwen3") == "Connecting to 2 vLLM servers for qwen3"


@pytest.mark.parametrize(("flag", "verbose"), [([], False), (["-v"], True), (["--verbose"], True)])
def test_verbose_hands_the_engine_its_own_terminal_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: list[str], verbose: bool
) -> None:
    lent = Lent(Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2"))
    monkeypatch.setattr("reasoner.Reasoner", lent)
    code, stdout, _ = run_cli(capsys, "solve", "What is 2+2?", "--budget", "16", *flag)
    assert code == 0 and "4" in stdout
    assert lent.calls == [((None,), {"endpoint": None, "verbose": verbose, "accelerator": get_accelerator("H200")})]
