"""The user's files, through the real CLI (a subprocess): what is not ours is refused and left
byte-identical, nothing hangs on a FIFO or a device, and one run writes a records file at a time.

Every command points at an unreachable server (`--endpoint`), so a regression that let one
through fails fast on the connection instead of starting an engine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from controllers.policy import default_policy
from evals.records import HEADER, RecordWriter
from tests.cli.cli_support import run_cli_process

NOWHERE = ["--endpoint", "http://127.0.0.1:9/v1"]
EVAL = ["eval", "--suite", "arith", "--strategies", "direct", "--budgets", "16", "--limit", "2", *NOWHERE]
SETTINGS = b'{"key": "my-api-key-123", "retries": 3}'


def refused(result_err: bytes, message: str) -> None:
    err = result_err.decode("utf-8", "replace")
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("reasoner: error:"), err
    assert message in err, err
    assert "Traceback" not in err


def record(problem: str, **fields: object) -> dict[str, object]:
    return {
        "key": f"arith|{problem}|direct|64|{{}}|smollm2-135m-instruct",
        "suite": "arith",
        "problem_id": problem,
        "strategy": "direct",
        "budget": 64,
        "options": {},
        "model": "smollm2-135m-instruct",
        "correct": True,
        "usage": {"generated_tokens": 10},
        "latency_s": 0.1,
        **fields,
    }


def write_records(path: Path, *records: dict[str, object]) -> Path:
    path.write_text(json.dumps(HEADER) + "\n" + "".join(json.dumps(item) + "\n" for item in records))
    return path


@pytest.mark.parametrize(
    "content",
    [SETTINGS, SETTINGS + b"\n", b'{"key": "x", "text": "a records-looking line of my own"}\n' + SETTINGS],
    ids=["settings-no-newline", "settings", "key-lines"],
)
def test_eval_refuses_a_json_file_of_the_users_and_leaves_it_byte_identical(tmp_path: Path, content: bytes) -> None:
    settings = tmp_path / "settings.json"
    settings.write_bytes(content)
    result = run_cli_process(*EVAL, "--out", str(settings), reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, "is not a records file")
    assert settings.read_bytes() == content


def test_calibrate_refuses_to_overwrite_a_file_that_is_not_a_policy(tmp_path: Path) -> None:
    records = write_records(tmp_path / "records.jsonl", record("p1"))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes\n")
    result = run_cli_process("calibrate", str(records), "--out", str(notes), *NOWHERE, reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, "is a file that is not a policy; it was left unchanged")
    assert notes.read_bytes() == b"my notes\n"


def test_calibrate_may_replace_a_policy_it_wrote(tmp_path: Path) -> None:
    """Only the out check: a policy file passes it (the run then stops at the unreachable server)."""
    records = write_records(tmp_path / "records.jsonl", record("p1"))
    policy = tmp_path / "policy.json"
    default_policy().save(policy)
    result = run_cli_process("calibrate", str(records), "--out", str(policy), *NOWHERE, reasoner_home=tmp_path)
    assert "not a policy" not in result.stderr.decode()
    assert "is not a regular file" not in result.stderr.decode()


@pytest.mark.parametrize("kind", ["folder", "fifo", "missing-folder"])
def test_calibrate_checks_out_before_any_estimator_work(tmp_path: Path, kind: str) -> None:
    records = write_records(tmp_path / "records.jsonl", record("p1"))
    out = tmp_path / "out"
    if kind == "folder":
        out.mkdir()
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out = tmp_path / "no" / "such" / "policy.json"
    started = time.monotonic()
    result = run_cli_process(
        "calibrate", str(records), "--out", str(out), *NOWHERE, reasoner_home=tmp_path, timeout_s=60
    )
    assert result.returncode == 2
    message = {"folder": "is not a regular file", "fifo": "is not a regular file", "missing-folder": "not a writable"}
    refused(result.stderr, message[kind])
    assert time.monotonic() - started < 30
    assert not (tmp_path / "models").exists()


def test_eval_refuses_a_fifo_out_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    result = run_cli_process(*EVAL, "--out", str(fifo), reasoner_home=tmp_path, timeout_s=60)
    assert result.returncode == 2
    refused(result.stderr, "is not a regular file")


@pytest.mark.parametrize("command", ["report", "calibrate"])
@pytest.mark.parametrize("source", ["fifo", "/dev/zero"])
def test_report_and_calibrate_refuse_a_fifo_or_a_device_without_hanging(
    tmp_path: Path, command: str, source: str
) -> None:
    path = tmp_path / "records.jsonl"
    if source == "fifo":
        os.mkfifo(path)
    else:
        path = Path(source)
    extra = ["--out", str(tmp_path / "policy.json"), *NOWHERE] if command == "calibrate" else []
    result = run_cli_process(command, str(path), *extra, reasoner_home=tmp_path, timeout_s=60)
    assert result.returncode == 2
    refused(result.stderr, "is not a regular file")


def test_a_second_eval_on_the_same_out_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    out = write_records(tmp_path / "run.jsonl", record("p1"))
    with RecordWriter(out):
        before = out.read_bytes()
        result = run_cli_process(*EVAL, "--out", str(out), reasoner_home=tmp_path)
        assert out.read_bytes() == before
    assert result.returncode == 2
    refused(result.stderr, "another run is writing records to")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"options": ["a", "b"]}, "has options ['a', 'b'], not an object"),
        ({"metrics": [1, 2]}, "has metrics [1, 2], not an object"),
        ({"budget": 1e400}, "has budget inf, not a positive whole number"),
        ({"correct": "no"}, "has correct 'no', not true or false"),
        ({"latency_s": float("nan")}, "has latency_s nan"),
    ],
)
def test_report_refuses_a_record_with_a_field_of_the_wrong_type(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    path = tmp_path / "records.jsonl"
    lines = [json.dumps(record("p1")), json.dumps(record("p2", **fields)).replace("Infinity", "1e400")]
    path.write_text("\n".join(lines) + "\n")
    result = run_cli_process("report", str(path), reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, message)


def test_report_compare_refuses_records_without_problem_id(tmp_path: Path) -> None:
    first, second = record("p1"), record("p1", strategy="elastic", key="other")
    del first["problem_id"], second["problem_id"]
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    result = run_cli_process("report", str(path), "--compare", "direct,elastic", reasoner_home=tmp_path)
    assert result.returncode == 2
    refused(result.stderr, "has no text field 'problem_id'")
