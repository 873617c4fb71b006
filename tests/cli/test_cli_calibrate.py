from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.calibrate_command import problem_prompts
from controllers.policy import load_policy
from evals.suites import load_suite
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend
from tests.cli.cli_support import run_cli
from tests.lent_engine import Lent


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


@pytest.mark.parametrize(
    ("records", "extra", "message"),
    [
        ([], [], "no records in"),
        ([{"key": "k", "problem_id": "p"}], [], "lacks the field 'strategy'"),
        (graded_records(), ["--model", "Qwen/Qwen3-1.7B"], "not Qwen/Qwen3-1.7B"),
        (graded_records(), ["--min-accuracy", "2"], "--min-accuracy must be between 0 and 1"),
        (graded_records(), [], "problem id 'p0' is not an id of suite 'arith'"),
        (
            graded_records(),
            ["--model", "small=org/small", "--model", "large=org/large"],
            "smollm2-135m-instruct, which no --model NAME=MODEL names",
        ),
        (graded_records(), ["--model", "small=smollm2", "--model", "large=org/large"], "no records of model(s) large"),
        (
            graded_records() + [item | {"model": "org/large"} for item in graded_records()],
            ["--model", "small=smollm2", "--model", "large=org/large"],
            "carries no usage.cost; routing compares models in cost",
        ),
        (
            graded_records(),
            ["--model", "small=smollm2", "--model", "large=x", "--endpoint", "http://127.0.0.1:9/v1"],
            "--endpoint runs one model",
        ),
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


def test_calibrate_on_a_missing_records_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, stderr = run_cli(capsys, "calibrate", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "p.json"))
    assert code == 2
    assert "no records file" in stderr


def test_procedural_prompts_come_back_from_their_ids() -> None:
    problems = list(load_suite("arith", limit=6, seed=3))
    records = [{"suite": "arith", "problem_id": problem.id} for problem in problems]
    prompts = problem_prompts(records)
    assert prompts == {f"arith|{problem.id}": problem.prompt for problem in problems}


def arith_records(count: int) -> list[dict[str, Any]]:
    """Records of real arith problems: the first half solved by direct at 64 tokens, all by elastic at 256."""
    problems = list(load_suite("arith", limit=count, seed=0, difficulty=1))
    return [
        {
            "key": f"arith|{problem.id}|{strategy}|{budget}|{{}}",
            "suite": "arith",
            "problem_id": problem.id,
            "strategy": strategy,
            "budget": budget,
            "options": {},
            "model": "smollm2-135m-instruct",
            "correct": strategy == "elastic" or index < count // 2,
            "usage": {"generated_tokens": budget // 4},
        }
        for index, problem in enumerate(problems)
        for strategy, budget in (("direct", 64), ("elastic", 256))
    ]


@pytest.mark.engine
def test_calibrate_runs_the_estimator_on_every_problem_and_auto_loads_its_policy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, engine_reasoner: Reasoner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cli.calibrate_command.Reasoner", Lent(engine_reasoner))
    records = write_records(tmp_path / "records.jsonl", arith_records(6))
    out = tmp_path / "policy.json"
    code, stdout, stderr = run_cli(capsys, "calibrate", str(records), "--out", str(out), "--estimator", "probe")
    assert code == 0, stderr
    assert "estimator probe" in stdout
    assert "probe accuracy on the calibration problems" in stdout
    policy = load_policy(out)
    assert policy.estimator is not None and policy.estimator.name == "probe"
    assert policy.estimator.probe is not None


def test_calibrate_learns_a_routing_policy_from_records_of_two_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On direct at 64 tokens the small model solves half the problems, the large one all of them at 10x
    # the cost. The scripted pilot scores every problem alike, so all fall in the normal bin, which goes
    # to large (1.0 vs 0.5); the empty bins get the cheapest configuration measured, on small.
    lent = Lent(Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2"))
    monkeypatch.setattr("cli.calibrate_command.Reasoner", lent)
    small = [
        item | {"usage": {"generated_tokens": 16, "cost": 1e11}}
        for item in arith_records(6)
        if item["strategy"] == "direct"
    ]
    large = [
        item | {"model": "org/large", "correct": True, "usage": {"generated_tokens": 16, "cost": 1e12}}
        for item in small
    ]
    records = write_records(tmp_path / "records.jsonl", small + large)
    out = tmp_path / "route.json"
    argv = ["--model", "small=smollm2", "--model", "large=org/large", "--estimator", "pilot"]
    code, stdout, stderr = run_cli(capsys, "calibrate", str(records), "--out", str(out), *argv)
    assert code == 0, stderr
    assert [list(kwargs["models"]) for _, kwargs in lent.calls] == [["small"]]  # the estimator runs on the default
    policy = load_policy(out)
    assert {name: choice.model for name, choice in policy.choices.items()} == {
        "easy": "small",
        "normal": "large",
        "hard": "small",
    }
    assert policy.model == "small"
    assert all(choice.mean_cost is not None for choice in policy.choices.values())
    assert " on " in stdout and "eFLOPs" in stdout
