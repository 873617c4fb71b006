from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli

from controllers.policy import load_policy


def graded_records() -> list[dict[str, Any]]:
    """Four problems of the embedded model: p0-p1 right with 64 tokens of direct, p2-p3 never."""
    return [
        {
            "key": f"arith|p{index}|{strategy}|{budget}|{{}}",
            "suite": "arith",
            "problem_id": f"p{index}",
            "strategy": strategy,
            "budget": budget,
            "options": {},
            "model": "smollm2-135m-instruct",
            "correct": index < 2,
            "usage": {"generated_tokens": budget // 4},
        }
        for index in range(4)
        for strategy, budget in (("direct", 64), ("elastic", 256))
    ]


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in records))
    return path


def test_calibrate_writes_a_policy_auto_can_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    records = write_records(tmp_path / "records.jsonl", graded_records())
    out = tmp_path / "policy.json"
    code, stdout, _ = run_cli(capsys, "calibrate", str(records), "--out", str(out))
    assert code == 0
    assert "easy: direct at 64 tokens" in stdout
    assert load_policy(out).choices["easy"].strategy == "direct"


@pytest.mark.parametrize(
    ("records", "extra", "message"),
    [
        ([], [], "no records in"),
        ([{"key": "k", "problem_id": "p"}], [], "lacks the field 'strategy'"),
        (graded_records(), ["--model", "Qwen/Qwen3-1.7B"], "not Qwen/Qwen3-1.7B"),
        (graded_records(), ["--min-accuracy", "2"], "--min-accuracy must be between 0 and 1"),
    ],
)
def test_calibrate_refuses_unusable_input_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, records: list[dict[str, Any]], extra: list[str], message: str
) -> None:
    path = write_records(tmp_path / "records.jsonl", records)
    code, _, stderr = run_cli(capsys, "calibrate", str(path), "--out", str(tmp_path / "p.json"), *extra)
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_calibrate_accepts_another_models_records_when_forced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_records(tmp_path / "records.jsonl", graded_records())
    out = tmp_path / "p.json"
    code, _, _ = run_cli(capsys, "calibrate", str(path), "--out", str(out), "--model", "other", "--force")
    assert code == 0
    assert out.exists()


def test_calibrate_on_a_missing_records_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, stderr = run_cli(capsys, "calibrate", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "p.json"))
    assert code == 2
    assert "no records file" in stderr
