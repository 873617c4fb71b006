"""Bad input to the real CLI (a subprocess): exit 2, one line on stderr, and no model
provisioned or engine started first (`REASONER_HOME` stays without models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli_support import run_cli_process

EVAL = ["eval", "--suite", "arith", "--strategies", "direct", "--budgets", "16", "--limit", "2"]


def refused(result_err: bytes, message: str) -> None:
    err = result_err.decode("utf-8", "replace")
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("reasoner: error:")
    assert message in err
    assert "Traceback" not in err


def test_a_prompt_that_is_not_utf8_is_refused_before_any_model_work(tmp_path: Path) -> None:
    result = run_cli_process("solve", b"\xff\xfe What is 2+2?", reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, "not valid UTF-8")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "q", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["solve", "q", "-o", "temprature=1"], "unknown option 'temprature'"),
        (["solve", "   "], "prompt is empty"),
    ],
)
def test_solve_input_is_checked_before_the_model_is_provisioned(tmp_path: Path, argv: list[str], message: str) -> None:
    result = run_cli_process(*argv, reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, message)
    assert not (tmp_path / "models").exists()


def test_eval_refuses_an_out_file_that_is_not_records_and_leaves_it_byte_identical(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    content = b"my notes\nsecond line, no newline at the end"
    notes.write_bytes(content)
    result = run_cli_process(*EVAL, "--out", str(notes), reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, "is not a records file")
    assert notes.read_bytes() == content
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "binary file"),
        (json.dumps({"question": "x", "answer": "#### 1"}).encode("latin-1") + b"\n\xe9t\xe9\n", "not UTF-8 text"),
    ],
)
def test_eval_refuses_a_data_file_that_is_not_utf8_jsonl(tmp_path: Path, content: bytes, message: str) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(content)
    args = ["eval", "--suite", "gsm8k", "--strategies", "direct", "--budgets", "16", "--data", str(data)]
    result = run_cli_process(*args, "--out", str(tmp_path / "out.jsonl"), reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, message)
    assert not (tmp_path / "out.jsonl").exists()


NOWHERE = ["--endpoint", "http://127.0.0.1:9/v1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "q", "--strategy", "auto", "-o", "policy_file={binary}"], "is not UTF-8 text"),
        ([*EVAL, "--strategies", "auto", "-o", "policy_file={binary}", "--out", "{out}"], "is not UTF-8 text"),
        (["solve", "q", "--endpoint", "http://[::1/v1"], "endpoint 'http://[::1/v1' is not a valid URL"),
        ([*EVAL, "--endpoint", "http://[::1/v1", "--out", "{out}"], "is not a valid URL"),
        ([*EVAL, "--budgets", "\u00b2", "--out", "{out}"], "budget '\u00b2' is not a positive whole number"),
        (["serve", "--shutdown-timeout", "nan"], "--shutdown-timeout must be a number of seconds"),
        (["serve", "--shutdown-timeout", "inf"], "--shutdown-timeout must be a number of seconds"),
        (["serve", "--port", "70000"], "--port must be 1-65535, got 70000"),
        (["serve", "--budget", "1000", "--max-budget", "10"], "--budget 1000 is more than --max-budget 10"),
    ],
)
def test_hostile_flags_exit_2_in_one_line_before_any_model_work(tmp_path: Path, argv: list[str], message: str) -> None:
    binary = tmp_path / "policy.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    args = [arg.format(binary=binary, out=tmp_path / "out.jsonl") for arg in argv]
    result = run_cli_process(*args, reasoner_home=tmp_path, timeout_s=60)
    assert result.returncode == 2
    refused(result.stderr, message)
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("home", "message"),
    [("{file}", "is not a folder"), ("{file}/sub", "is not a folder"), ("/proc/self/reasoner", "is under /proc")],
)
def test_a_reasoner_home_that_cannot_hold_files_is_refused(tmp_path: Path, home: str, message: str) -> None:
    file = tmp_path / "home-file"
    file.write_bytes(b"mine")
    for argv in (["solve", "q"], ["models"]):
        result = run_cli_process(*argv, reasoner_home=Path(home.format(file=file)), timeout_s=60)
        assert result.returncode == 2
        refused(result.stderr, message)
    assert file.read_bytes() == b"mine"
