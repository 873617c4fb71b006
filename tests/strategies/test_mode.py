from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reasoner import Budget, ModelError, Reasoner, Solution, StrategyError, get_strategy
from reasoner.testing import ScriptedBackend
from strategies.mode import mode_thinking_budget
from strategies.mode_calibration import calibrate_mode, calibration_path, load_high_thinking_tokens

LONG_THOUGHT = " ".join(f"step{index}" for index in range(300))
ANSWER_MARK = "Final answer:"


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REASONER_HOME", str(tmp_path))
    return tmp_path


def thinker(thought: str = LONG_THOUGHT) -> ScriptedBackend:
    return ScriptedBackend(lambda prompt: " 7" if prompt.endswith(ANSWER_MARK) else thought)


def solve(backend: ScriptedBackend, budget: Budget | int, profile: str = "smollm2", **options: Any) -> Solution:
    reasoner = Reasoner(backend=backend, profile=profile)
    return asyncio.run(reasoner.asolve("What is 3 + 4?", budget, "mode", **options))


def test_high_mode_may_think_up_to_the_whole_thinking_share() -> None:
    solution = solve(thinker(), 200, mode="high")
    assert solution.metrics["thinking_budget"] == 150
    assert solution.metrics["thinking_tokens"] == 150
    assert solution.metrics["mode"] == "high"


def test_uncalibrated_medium_and_low_get_half_and_a_quarter_of_the_thinking_share() -> None:
    assert solve(thinker(), 200, mode="medium").metrics["thinking_tokens"] == 75
    assert solve(thinker(), 200, mode="low").metrics["thinking_tokens"] == 38


def test_low_mode_targets_a_quarter_of_the_given_high_length() -> None:
    solution = solve(thinker(), 200, mode="low", high_thinking_tokens=40)
    assert solution.metrics["thinking_budget"] == 10
    assert solution.metrics["thinking_tokens"] == 10
    assert solution.answer == "7"


def test_calibrated_high_length_sets_the_medium_budget() -> None:
    calibrating = Reasoner(backend=thinker(" ".join(["hmm"] * 19) + " </think>"), profile="smollm2")
    calibration = calibrate_mode(calibrating, ["a", "b", "c"], thinking_budget=64, answer_budget=8)
    calibrating.close()
    assert calibration.high_thinking_tokens == 20
    assert load_high_thinking_tokens("scripted") == 20
    assert solve(thinker(), 200, mode="medium").metrics["thinking_budget"] == 10


def test_calibration_keeps_other_entries_of_the_profile_file() -> None:
    path = calibration_path("scripted")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"difficulty": {"slope": 1}}))
    calibrating = Reasoner(backend=thinker("hmm </think>"), profile="smollm2")
    calibrate_mode(calibrating, ["a"], thinking_budget=16, answer_budget=8)
    calibrating.close()
    assert json.loads(path.read_text())["difficulty"] == {"slope": 1}


def test_corrupt_calibration_file_is_a_model_error() -> None:
    path = calibration_path("scripted")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="calibrate_mode"):
        solve(thinker(), 200, mode="low")


def test_mode_budget_never_exceeds_the_thinking_share() -> None:
    assert mode_thinking_budget("medium", 30, high_thinking_tokens=500) == 15
    assert mode_thinking_budget("low", 0, high_thinking_tokens=40) == 0


def test_off_answers_without_a_thinking_block() -> None:
    backend = thinker()
    solution = solve(backend, 50, mode="off")
    (request,) = backend.requests
    assert not request.prompt_text.rstrip().endswith("<think>")
    assert solution.metrics["thinking_tokens"] == 0
    assert solution.metrics["answer_tokens"] == solution.usage.generated_tokens


def test_off_uses_qwen3s_native_thinking_switch() -> None:
    backend = thinker()
    solve(backend, 50, profile="qwen3", mode="off")
    assert "<|enable_thinking=False|>" in backend.requests[0].prompt_text


def test_thinking_modes_reach_the_native_effort_control() -> None:
    backend = thinker()
    solve(backend, 200, profile="gpt_oss", mode="low")
    assert "<|reasoning_effort=low|>" in backend.requests[0].prompt_text


def test_unknown_mode_is_a_strategy_error_listing_the_four() -> None:
    with pytest.raises(StrategyError, match="'high', 'medium', 'low' or 'off'"):
        solve(thinker(), 200, mode="extreme")


@pytest.mark.engine
def test_low_mode_thinks_less_than_high_mode_on_the_engine(engine_reasoner: Reasoner) -> None:
    questions = [
        "Compute 23 * 17. Multiply step by step, showing each partial product, then add them.",
        "A train travels 45 km per hour for 3 hours and then 60 km per hour for 2 hours. How far does it go?",
        "List the first eight prime numbers, then add them up.",
    ]
    budget = Budget(tokens=256, thinking=192, answer=64)

    async def both() -> list[list[Solution]]:
        # Together: one run of decode steps on the CPU engine for both modes, not one each.
        return await asyncio.gather(
            *(
                engine_reasoner.asolve_many(questions, budget, "mode", budget_per_prompt=True, mode=mode)
                for mode in ("high", "low")
            )
        )

    high, low = asyncio.run(both())
    high_thinking = [int(solution.metrics["thinking_tokens"] or 0) for solution in high]
    low_thinking = [int(solution.metrics["thinking_tokens"] or 0) for solution in low]
    assert all(tokens <= 48 for tokens in low_thinking)
    assert sum(low_thinking) < sum(high_thinking)
    assert all(solution.usage.generated_tokens <= budget.tokens for solution in high + low)


def test_medium_is_half_of_each_prompts_own_estimated_high_length() -> None:
    def thinks_by_question(prompt: str) -> str:
        if prompt.endswith(ANSWER_MARK):
            return " 7"
        words = 40 if "long question" in prompt else 8
        return " ".join(["hmm"] * (words - 1)) + " </think>"

    short, long_question = "2+2?", "This long question " + "has many words " * 12 + "and asks 2+2?"
    calibrating = Reasoner(backend=ScriptedBackend(thinks_by_question), profile="smollm2")
    calibration = calibrate_mode(calibrating, [short, long_question], thinking_budget=64, answer_budget=8)
    calibrating.close()
    assert calibration.length_slope is not None and calibration.length_slope > 0
    reasoner = Reasoner(backend=thinker(), profile="smollm2")
    budgets = {}
    for question in (short, long_question):
        solution = asyncio.run(reasoner.asolve(question, 200, "mode", mode="medium"))
        assert solution.metrics["high_length_source"] == "per_prompt"
        budgets[question] = solution.metrics["thinking_budget"]
        assert budgets[question] == round(int(solution.metrics["expected_high_tokens"] or 0) * 0.5)
    assert budgets[short] == 4
    assert budgets[long_question] == 20


@pytest.mark.parametrize("mode", ["high", "off"])
def test_high_thinking_tokens_outside_medium_and_low_is_refused_naming_it(mode: str) -> None:
    with pytest.raises(
        StrategyError,
        match=f"option 'high_thinking_tokens' applies only with mode='medium' or 'low', not mode='{mode}'",
    ):
        get_strategy("mode").from_options({"mode": mode, "high_thinking_tokens": 40})
