from __future__ import annotations

import math

import pytest

from reasoner import Budget, BudgetExhausted, EngineError, Generation, Session
from reasoner.profiles import get_profile
from reasoner.testing import ScriptedBackend
from strategies.scoring import FunctionScorer
from strategies.step_paths import ends_path, score_path, writes_answer


def session_for(answer_format: str = "math") -> Session:
    backend = ScriptedBackend("x")
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=100), answer_format)


def step(text: str, finish_reason: str = "stop") -> Generation:
    return Generation("r", 0, (), text=text, finish_reason=finish_reason)  # type: ignore[arg-type]


def test_a_step_that_stops_at_the_delimiter_continues_its_path() -> None:
    assert not ends_path(session_for(), step("First, 3 + 4 = 7.\n\n"))


def test_a_step_the_model_ends_or_that_writes_an_answer_ends_its_path() -> None:
    session = session_for()
    assert ends_path(session, step("So it is 7."))  # the model stopped without a delimiter
    assert ends_path(session, step("Final answer: 7\n\n"))
    assert ends_path(session, step("\\boxed{7}", finish_reason="length"))
    assert not ends_path(session, step("3 + 4", finish_reason="length"))


def test_a_code_answer_is_a_closed_fence() -> None:
    assert writes_answer("code", "```python\nx = 1\n```")
    assert not writes_answer("code", "```python\nx = 1\n")


def scorer(value: object) -> FunctionScorer:
    def fn(question: str, response: str) -> float:
        if isinstance(value, BaseException):
            raise value
        return value  # type: ignore[return-value]

    return FunctionScorer(fn, name="fixed")


async def test_a_path_scores_what_the_scorer_says() -> None:
    assert await score_path(scorer(0.25), session_for(), "q", [1], [2], "path", 0) == 0.25


@pytest.mark.parametrize("value", [RuntimeError("boom"), 1.5, math.nan, "high"])
async def test_a_failing_or_out_of_range_scorer_gives_none(value: object) -> None:
    assert await score_path(scorer(value), session_for(), "q", [1], [2], "path", 0) is None


@pytest.mark.parametrize("error", [BudgetExhausted("spent"), EngineError("dead")])
async def test_a_refused_budget_or_a_dead_engine_propagates(error: Exception) -> None:
    with pytest.raises(type(error)):
        await score_path(scorer(error), session_for(), "q", [1], [2], "path", 0)
