from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reasoner import (
    Budget,
    BudgetError,
    EngineError,
    InputError,
    ModelError,
    Outcome,
    PromptError,
    Reasoner,
    Session,
    Solution,
    Strategy,
    StrategyError,
    UsageError,
    register_strategy,
)
from reasoner.testing import ScriptedBackend


async def test_solve_returns_the_extracted_answer(scripted_reasoner: Reasoner) -> None:
    solution = await scripted_reasoner.asolve("What is 2 + 3?", budget=64)
    assert solution.answer == "5"
    assert solution.strategy == "direct"
    assert solution.usage.requests == 1
    assert 0 < solution.usage.generated_tokens <= 64


async def test_usage_agrees_with_the_trace(scripted_reasoner: Reasoner) -> None:
    solution = await scripted_reasoner.asolve("What is 2 + 3?", budget=64)
    traced = sum(data["tokens"] for _, data in solution.trace.nodes(data=True))
    assert traced == solution.usage.generated_tokens


async def test_solution_round_trips_through_json(scripted_reasoner: Reasoner) -> None:
    solution = await scripted_reasoner.asolve("What is 2 + 3?", budget=64)
    restored = Solution.model_validate(json.loads(solution.model_dump_json()))
    assert restored.answer == solution.answer
    assert restored.usage == solution.usage
    assert dict(restored.trace.nodes(data=True)) == dict(solution.trace.nodes(data=True))


async def test_unknown_strategy_lists_the_known_ones(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="known: .*direct"):
        await scripted_reasoner.asolve("q", budget=64, strategy="nope")


async def test_unknown_option_lists_the_known_ones(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match=r"unknown option 'temprature'.*known options: temperature, top_p"):
        await scripted_reasoner.asolve("q", budget=64, temprature=0.5)


async def test_invalid_option_value_names_the_option(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="temperature=-1"):
        await scripted_reasoner.asolve("q", budget=64, temperature=-1)


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
async def test_empty_prompt_is_refused(scripted_reasoner: Reasoner, prompt: str) -> None:
    with pytest.raises(PromptError, match="empty"):
        await scripted_reasoner.asolve(prompt, budget=64)


@pytest.mark.parametrize("budget", [0, -5, 2.5, "64", None])
async def test_malformed_budget_is_refused(scripted_reasoner: Reasoner, budget: object) -> None:
    with pytest.raises(BudgetError):
        await scripted_reasoner.asolve("q", budget=budget)  # type: ignore[arg-type]


async def test_budget_below_the_least_answer_is_refused(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(BudgetError, match="below the 4 tokens"):
        await scripted_reasoner.asolve("q", budget=3)


async def test_answer_budget_below_the_least_answer_is_refused(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(BudgetError, match="answer budget of 2"):
        await scripted_reasoner.asolve("q", budget=Budget(tokens=64, answer=2))


async def test_prompt_longer_than_the_context_window_is_refused() -> None:
    reasoner = Reasoner(backend=ScriptedBackend("ok", max_model_len=16), profile="smollm2")
    with pytest.raises(PromptError, match="context window"):
        await reasoner.asolve("word " * 40, budget=8)


async def test_solve_many_splits_a_shared_budget(scripted_reasoner: Reasoner) -> None:
    solutions = await scripted_reasoner.asolve_many(["a?", "b?", "c?"], budget=Budget(tokens=30))
    assert [solution.budget.tokens for solution in solutions] == [10, 10, 10]
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 30


async def test_solve_many_can_give_each_prompt_the_whole_budget(scripted_reasoner: Reasoner) -> None:
    solutions = await scripted_reasoner.asolve_many(["a?", "b?"], budget=40, budget_per_prompt=True)
    assert [solution.budget.tokens for solution in solutions] == [40, 40]


async def test_solve_many_refuses_a_budget_too_small_for_the_batch(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(BudgetError, match="cannot give each of 5 prompts"):
        await scripted_reasoner.asolve_many(["q"] * 5, budget=4)


async def test_sync_solve_works_inside_a_running_event_loop(scripted: ScriptedBackend) -> None:
    with Reasoner(backend=scripted, profile="smollm2") as reasoner:
        solution = reasoner.solve("What is 2 + 3?", budget=32)
    assert solution.answer == "5"


async def test_blocking_close_inside_the_engines_own_loop_is_refused_not_a_hang(scripted: ScriptedBackend) -> None:
    reasoner = Reasoner(backend=scripted, profile="smollm2")
    await reasoner.astart()
    with pytest.raises(UsageError, match="aclose"):
        reasoner.close()
    assert scripted.started
    await reasoner.aclose()
    assert not scripted.started


def test_async_use_after_sync_use_runs_on_the_owning_loop(scripted: ScriptedBackend) -> None:
    with Reasoner(backend=scripted, profile="smollm2") as reasoner:
        first = reasoner.solve("q", budget=32)
        second = asyncio.run(reasoner.asolve("q", budget=32))
    assert first.answer == second.answer == "5"


async def test_engine_death_is_an_engine_error_and_the_next_call_restarts() -> None:
    backend = ScriptedBackend(" ".join(["word"] * 200), delay_s=0.001)
    reasoner = Reasoner(backend=backend, profile="smollm2")

    async def kill_soon() -> None:
        await asyncio.sleep(0.02)
        backend.kill()

    killer = asyncio.ensure_future(kill_soon())
    with pytest.raises(EngineError, match="died"):
        await reasoner.asolve("q", budget=150)
    await killer
    solution = await reasoner.asolve("q", budget=16)
    assert solution.usage.generated_tokens == 16
    assert backend.starts == 2


def test_missing_model_path_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Reasoner(str(tmp_path / "nowhere"))


def test_folder_that_is_not_a_model_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="no config.json"):
        Reasoner(str(tmp_path))


def test_unknown_hub_model_offline_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not a local folder"):
        Reasoner("no-such-org/no-such-model")


def test_unknown_hub_model_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="no-such-org/no-such-model"):
        Reasoner("no-such-org/no-such-model")


@pytest.mark.parametrize("prompt", ["caf\udce9 2 + 3?", "\ud800 lone high surrogate", b"bytes 2 + 3"])
async def test_a_prompt_that_is_not_utf8_text_is_a_prompt_error(scripted_reasoner: Reasoner, prompt: object) -> None:
    with pytest.raises(PromptError, match="UTF-8|must be a string"):
        await scripted_reasoner.asolve(prompt, budget=64)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", [123, 1.5, ["smollm2"]])
def test_a_model_that_is_not_a_string_is_a_model_error(model: object) -> None:
    with pytest.raises(ModelError, match="must be a Hugging Face id or a local folder"):
        Reasoner(model)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="must be a Hugging Face id"):
        Reasoner(model, backend=ScriptedBackend())  # type: ignore[arg-type]


@register_strategy
class _TwoStepsPastTheDeadline(Strategy):
    """Test-only: answers once, then waits past the deadline and asks for a second request."""

    name = "test_two_steps_past_deadline"

    async def run(self, session: Session, prompt: str) -> Outcome:
        await session.generate(prompt, max_tokens=16, phase="answer", kind="answer")
        await asyncio.sleep(session.budget.deadline_s or 0)
        second = await session.generate(prompt, max_tokens=16, phase="answer", kind="answer")
        return Outcome(text=second.text, answer=None)


async def test_a_deadline_that_stops_a_strategy_still_gives_the_answer_found_so_far() -> None:
    reasoner = Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2")
    solution = await reasoner.asolve("q", Budget(tokens=64, deadline_s=0.05), "test_two_steps_past_deadline")
    assert solution.answer == "5"
    assert solution.metrics["deadline_reached"] is True
    assert solution.usage.requests == 1


def test_engine_args_that_are_not_a_dict_are_refused_before_any_model_work() -> None:
    with pytest.raises(InputError, match="engine_args must be a dict"):
        Reasoner("/no/such/model", engine_args=["tensor_parallel_size=2"])  # type: ignore[arg-type]
