from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli import eval_command
from evals.records import read_records
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend
from tests.cli.cli_support import run_cli


@pytest.fixture
def scripted_engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    """`reasoner eval` on the scripted backend instead of the real engine."""
    backend = ScriptedBackend("Final answer: 23")

    def make(model: str | None, **kwargs: object) -> Reasoner:
        return Reasoner(backend=backend, profile="smollm2")

    monkeypatch.setattr(eval_command, "Reasoner", make)
    return backend


def eval_args(out: Path, *extra: str) -> list[str]:
    return ["eval", "--suite", "arith", "--strategies", "direct", "--budgets", "16,32", "--out", str(out), *extra]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--suite", "gsm9k"], "unknown suite 'gsm9k'; known:"),
        (["--suite", "gsm8k", "--data", "/no/such/dir"], "looked for /no/such/dir/gsm8k_test.jsonl"),
        (["--budgets", ","], "budgets list is empty"),
        (["--budgets", "64,lots"], "budget 'lots' is not a positive whole number"),
        (["--strategies", "direct,nope"], "unknown strategy 'nope'"),
        (["--strategies", ","], "strategies list is empty"),
        (["-o", "temprature=1"], "unknown option 'temprature'"),
        (["--limit", "0"], "limit must be at least 1"),
        (["--difficulty", "9"], "difficulty must be 1..5"),
        (["--filter", "operands=9"], "no problems left"),
        (["--filter", "difficulty=2"], "use --difficulty"),
    ],
)
def test_eval_user_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    args = eval_args(tmp_path / "out.jsonl")
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag in args and flag != "-o":
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_an_unwritable_out_path_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, *eval_args(blocker / "out.jsonl"))
    assert code == 2
    assert err.startswith("reasoner: error: cannot write records to")
    assert len(err.strip().splitlines()) == 1


def test_eval_writes_records_and_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scripted_engine: ScriptedBackend
) -> None:
    out = tmp_path / "runs" / "arith.jsonl"
    code, stdout, _ = run_cli(capsys, *eval_args(out, "--limit", "3"))
    assert code == 0
    assert "wrote 6 records" in stdout
    code, stdout, _ = run_cli(capsys, *eval_args(out, "--limit", "4"))
    assert code == 0
    assert "wrote 2 records" in stdout
    assert "(6 already there)" in stdout
    assert len(read_records(out).records) == 8


def test_eval_reports_malformed_suite_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scripted_engine: ScriptedBackend
) -> None:
    data = tmp_path / "gsm8k_test.jsonl"
    good = json.dumps({"question": "What is 20 + 3?", "answer": "#### 23"})
    data.write_text(f"{good}\n{{broken\n{good}\n")
    args = ["eval", "--suite", "gsm8k", "--strategies", "direct", "--budgets", "16"]
    code, stdout, err = run_cli(capsys, *args, "--data", str(tmp_path), "--out", str(tmp_path / "o.jsonl"))
    assert code == 0
    assert "skipped 1 malformed lines" in err
    assert "line 2" in err
    assert "wrote 2 records" in stdout
    assert "accuracy of new records 100.0%" in stdout


def test_failed_results_are_counted_and_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ScriptedBackend("Final answer: 1")

    def respond(prompt: str) -> str:
        backend.kill()
        return "Final answer: 1"

    backend._script = respond
    monkeypatch.setattr(eval_command, "Reasoner", lambda model, **kwargs: Reasoner(backend=backend, profile="smollm2"))
    code, _, err = run_cli(capsys, *eval_args(tmp_path / "o.jsonl", "--limit", "2"))
    assert code == 3
    assert "4 results failed and were not written" in err
    assert "rerun the same command" in err


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def tiny_records() -> list[dict[str, Any]]:
    def rec(strategy: str, problem: str, correct: bool) -> dict[str, Any]:
        return {
            "key": f"{strategy}-{problem}",
            "suite": "arith",
            "problem_id": problem,
            "strategy": strategy,
            "budget": 64,
            "options": {},
            "correct": correct,
            "usage": {"generated_tokens": 10},
            "latency_s": 0.1,
        }

    return [rec("direct", "a", True), rec("direct", "b", False), rec("elastic", "a", True), rec("elastic", "b", True)]


@pytest.mark.parametrize("output_format", ["table", "md", "csv", "json"])
def test_report_prints_every_format(capsys: pytest.CaptureFixture[str], tmp_path: Path, output_format: str) -> None:
    path = tmp_path / "a.jsonl"
    write_records(path, tiny_records())
    code, stdout, _ = run_cli(capsys, "report", str(path), "--format", output_format, "--compare", "elastic,direct")
    assert code == 0
    assert "elastic" in stdout
    assert "50.0%" in stdout or "0.5" in stdout


def test_report_compare_shows_the_paired_difference(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_records(path, tiny_records())
    code, stdout, _ = run_cli(capsys, "report", str(path), "--compare", "elastic,direct")
    assert code == 0
    assert "elastic - direct @ 64: +50.0 pts" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "/no/such.jsonl"], "no records file at /no/such.jsonl"),
        (["report", "{records}", "--compare", "direct"], "--compare takes two strategy names"),
        (["report", "{records}", "--compare", "direct,nope"], "no records for strategy 'nope'"),
        (["report", "{records}", "--format", "xml"], "invalid choice"),
        (["report", "{empty}"], "no records to report"),
    ],
)
def test_report_user_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    records, empty = tmp_path / "a.jsonl", tmp_path / "empty.jsonl"
    write_records(records, tiny_records())
    empty.write_text("{half")
    code, _, err = run_cli(capsys, *[arg.format(records=records, empty=empty) for arg in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_help_documents_eval_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    for command, flag in (("eval", "--budgets"), ("report", "--compare")):
        code, stdout, _ = run_cli(capsys, command, "--help")
        assert code == 0
        assert flag in stdout


def test_eval_runs_a_benchmark_suite_from_the_packaged_data_without_data_flag(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    scripted_engine: ScriptedBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REASONER_DATA", raising=False)
    args = ["eval", "--suite", "gsm8k", "--strategies", "direct", "--budgets", "64", "--limit", "5"]
    code, stdout, _ = run_cli(capsys, *args, "--out", str(tmp_path / "gsm8k.jsonl"))
    assert code == 0
    assert "wrote 5 records" in stdout
    assert {record["suite"] for record in read_records(tmp_path / "gsm8k.jsonl").records} == {"gsm8k"}
