from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evals.records import read_records
from evals.runner import arun_eval, make_plan, parse_budgets
from evals.suites import load_suite
from reasoner import BudgetError, Reasoner, StrategyError, SuiteError
from reasoner.engines.base import Chunk, Prompt, SamplingSpec
from reasoner.errors import InputError
from reasoner.testing import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]

KILLED_RUN = """
import sys

from evals.runner import make_plan, run_eval
from evals.suites import load_suite
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

if __name__ == "__main__":
    reasoner = Reasoner(backend=ScriptedBackend("Final answer: 7", delay_s=0.05), profile="smollm2")
    plan = make_plan("arith", ["direct"], [16, 32], concurrency=4)
    run_eval(reasoner, plan, load_suite("arith", limit=40), sys.argv[1])
"""


def keys_of(path: Path) -> list[str]:
    return [record["key"] for record in read_records(path).records]


def keys_of_if_any(path: Path) -> list[str]:
    return [record["key"] for record in read_records(path, must_exist=False).records]


async def test_one_record_per_problem_strategy_and_budget(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    problems = load_suite("arith", limit=3)
    result = await arun_eval(scripted_reasoner, make_plan("arith", ["direct"], [16, 32], seed=0), problems, out)
    records = read_records(out).records
    assert result.written == 6
    assert len(records) == 6
    assert {(r["problem_id"], r["budget"]) for r in records} == {(p.id, b) for p in problems for b in (16, 32)}
    first = records[0]
    assert first["suite"] == "arith"
    assert first["strategy"] == "direct"
    assert first["seed"] == 0
    assert first["answer"] == "5"
    assert first["reference"] == next(p.reference for p in problems if p.id == first["problem_id"])
    assert first["usage"]["requests"] == 1
    assert first["trace"]["segments"] == {"answer": 1}
    assert first["meta"]["difficulty"] in {1, 2, 3}
    assert first["metrics"]["finish_reason"] == "stop"


async def test_answers_are_graded(tmp_path: Path) -> None:
    problems = load_suite("arith", limit=4)
    backend = ScriptedBackend(lambda prompt: f"Final answer: {problems[0].reference}")
    reasoner = Reasoner(backend=backend, profile="smollm2")
    result = await arun_eval(reasoner, make_plan("arith", ["direct"], [16]), problems, tmp_path / "run.jsonl")
    graded = {r["problem_id"]: r["correct"] for r in read_records(tmp_path / "run.jsonl").records}
    assert graded[problems[0].id] is True
    assert result.correct == sum(graded.values())


async def test_rerun_skips_finished_results(
    scripted_reasoner: Reasoner, scripted: ScriptedBackend, tmp_path: Path
) -> None:
    out = tmp_path / "run.jsonl"
    plan = make_plan("arith", ["direct"], [16])
    await arun_eval(scripted_reasoner, plan, load_suite("arith", limit=3), out)
    asked = len(scripted.requests)
    result = await arun_eval(scripted_reasoner, plan, load_suite("arith", limit=5), out)
    assert (result.skipped, result.written) == (3, 2)
    assert len(scripted.requests) == asked + 2
    assert len(keys_of(out)) == len(set(keys_of(out))) == 5


async def test_a_half_written_record_is_redone_once(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    plan = make_plan("arith", ["direct"], [16])
    await arun_eval(scripted_reasoner, plan, load_suite("arith", limit=3), out)
    header, *lines = out.read_text().splitlines()
    out.write_text("\n".join([header, *lines[:2]]) + "\n" + lines[2][: len(lines[2]) // 2])
    result = await arun_eval(scripted_reasoner, plan, load_suite("arith", limit=3), out)
    assert result.written == 1
    assert sorted(keys_of(out)) == sorted(json.loads(line)["key"] for line in lines)
    assert read_records(out).malformed_lines == []


async def test_engine_death_loses_only_the_results_in_flight(tmp_path: Path) -> None:
    problems = load_suite("arith", limit=6)
    victim = problems[2].prompt
    killed: list[bool] = []

    def respond(prompt: str) -> str:
        if victim in prompt and not killed:
            killed.append(True)
            backend.kill()
        return "Final answer: 1"

    backend = ScriptedBackend(respond)
    reasoner = Reasoner(backend=backend, profile="smollm2")
    out = tmp_path / "run.jsonl"
    plan = make_plan("arith", ["direct"], [16], concurrency=1)
    result = await arun_eval(reasoner, plan, problems, out)
    assert result.written == 5
    assert [failure.key.split("|")[1] for failure in result.failures] == [problems[2].id]
    assert "EngineError" in result.failures[0].error
    assert backend.starts == 2
    retry = await arun_eval(reasoner, plan, problems, out)
    assert (retry.written, retry.skipped, retry.failures) == (1, 5, [])
    assert len(set(keys_of(out))) == 6


class CountingBackend(ScriptedBackend):
    """Tracks how many requests are in flight at once."""

    def __init__(self) -> None:
        super().__init__("Final answer: 1", delay_s=0.005)
        self.active = 0
        self.peak = 0

    async def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            async for chunk in super().generate(request_id, prompt, sampling):
                yield chunk
        finally:
            self.active -= 1


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    backend = CountingBackend()
    reasoner = Reasoner(backend=backend, profile="smollm2")
    plan = make_plan("arith", ["direct"], [16, 32], concurrency=3)
    await arun_eval(reasoner, plan, load_suite("arith", limit=6), tmp_path / "run.jsonl")
    assert backend.peak == 3


async def test_unknown_strategy_fails_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'nope'; known: .*direct"):
        make_plan("arith", ["direct", "nope"], [64])


def test_invalid_options_fail_before_anything_runs() -> None:
    with pytest.raises(StrategyError, match="unknown option 'temprature'"):
        make_plan("arith", ["direct"], [64], {"temprature": 1})


def test_scoped_options_reach_only_their_strategy() -> None:
    plan = make_plan("arith", ["direct"], [64], {"direct.temperature": 0.5, "top_p": 0.9})
    assert plan.options_for("direct") == {"temperature": 0.5, "top_p": 0.9}
    assert plan.options_for("other") == {"top_p": 0.9}
    with pytest.raises(StrategyError, match="not in the run: elastic"):
        make_plan("arith", ["direct"], [64], {"elastic.thinking_share": 0.5})


@pytest.mark.parametrize(("text", "message"), [("", "empty"), (" , ", "empty"), ("64,abc", "'abc'"), ("0", "'0'")])
def test_bad_budget_lists_are_refused(text: str, message: str) -> None:
    with pytest.raises(BudgetError, match=message):
        parse_budgets(text)


def test_budgets_parse_in_order_without_repeats() -> None:
    assert parse_budgets("256, 64,256") == (256, 64)


async def test_budget_too_small_for_the_model_fails_before_writing(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    with pytest.raises(BudgetError, match="below the 4 tokens"):
        await arun_eval(scripted_reasoner, make_plan("arith", ["direct"], [64, 2]), load_suite("arith", limit=2), out)
    assert not out.exists()


async def test_no_problems_is_an_error(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no problems"):
        await arun_eval(scripted_reasoner, make_plan("arith", ["direct"], [64]), [], tmp_path / "run.jsonl")


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    out = tmp_path / "run.jsonl"
    child = subprocess.Popen([sys.executable, str(script), str(out)], cwd=REPO)
    # Generous: on a loaded 2-core CI machine a 60 s wait ended with only 9 records written.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None and len(keys_of_if_any(out)) < 10:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = out.read_text()
    finished_before = keys_of(out)
    assert 10 <= len(finished_before) < 80, "the run was not killed mid-way"
    rerun = subprocess.run([sys.executable, str(script), str(out)], cwd=REPO, timeout=240)
    assert rerun.returncode == 0
    after = keys_of(out)
    assert len(after) == len(set(after)) == 80
    assert set(finished_before) <= set(after)
    assert out.read_text().startswith(before[: before.rfind("\n") + 1])
    assert read_records(out).malformed_lines == []


@pytest.mark.engine
async def test_real_engine_run_writes_a_record_per_problem(engine_reasoner: Reasoner, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    problems = load_suite("arith", limit=4, difficulty=1)
    result = await arun_eval(engine_reasoner, make_plan("arith", ["direct"], [48]), problems, out)
    records = read_records(out).records
    assert result.written == len(records) == 4
    assert result.failures == []
    for record in records:
        usage = record["usage"]
        assert usage["requests"] == 1
        assert 0 < usage["generated_tokens"] <= 48
        assert usage["prompt_tokens"] > 0
        assert record["trace"]["tokens"]["answer"] == usage["generated_tokens"]
        assert record["model"] != "scripted"


async def test_a_rerun_on_another_model_does_not_skip_the_first_models_results(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    problems = load_suite("arith", limit=2)
    plan = make_plan("arith", ["direct"], [16])
    first = Reasoner("model-a", backend=ScriptedBackend("Final answer: 5"), profile="smollm2")
    second = Reasoner("model-b", backend=ScriptedBackend("Final answer: 5"), profile="smollm2")
    assert (await arun_eval(first, plan, problems, out)).written == 2
    assert (await arun_eval(second, plan, problems, out)).written == 2
    assert (await arun_eval(second, plan, problems, out)).skipped == 2
    assert sorted(record["model"] for record in read_records(out).records) == [
        "model-a",
        "model-a",
        "model-b",
        "model-b",
    ]


@pytest.mark.engine
async def test_real_engine_code_is_graded_in_the_jail(engine_reasoner: Reasoner, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    problems = load_suite("humaneval", limit=3)
    result = await arun_eval(engine_reasoner, make_plan("humaneval", ["direct"], [96]), problems, out)
    records = read_records(out).records
    assert result.written == len(records) == 3
    assert result.failures == []
    assert all(record["isolation"] == "jail" for record in records if record["text"].strip())
    assert all(isinstance(record["correct"], bool) for record in records)


async def test_code_records_say_which_isolation_ran_the_code(tmp_path: Path) -> None:
    problems = load_suite("humaneval", limit=2)
    answers = {
        problem.prompt: f"```python\n{problem.code_problem['prompt']}    return None\n```" for problem in problems
    }
    reasoner = Reasoner(backend=ScriptedBackend(lambda prompt: next(a for p, a in answers.items() if p in prompt)))
    plan = make_plan("humaneval", ["direct"], [64], sandbox="jail")
    await arun_eval(reasoner, plan, problems, tmp_path / "run.jsonl")
    records = read_records(tmp_path / "run.jsonl").records
    assert [(record["isolation"], record["correct"]) for record in records] == [("jail", False)] * 2


@pytest.mark.parametrize("sandbox", ["docker", "process"])
def test_an_unknown_or_removed_sandbox_is_refused_in_the_plan(sandbox: str) -> None:
    with pytest.raises(InputError, match=f"sandbox must be one of jail, got '{sandbox}'"):
        make_plan("humaneval", ["direct"], [64], sandbox=sandbox)  # type: ignore[arg-type]
