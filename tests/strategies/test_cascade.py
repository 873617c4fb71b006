"""`cascade` on two scripted models: the small model's agreement decides whether the large one is asked."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, ModelError, Reasoner, Solution, StrategyError
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend
from tests.priced_models import priced

QUESTION = "What is 2 + 2?"
AGREEING = ["Final answer: 4"]
SPLIT = ["Final answer: 4", "Final answer: 7", "Final answer: 4", "Final answer: 9"]


def cascade_models(
    small_script: list[str], large_script: list[str] | None = None
) -> tuple[Reasoner, ScriptedBackend, ScriptedBackend]:
    small = ScriptedBackend(small_script)
    large = ScriptedBackend(large_script or ["Final answer: 5"])
    reasoner = Reasoner(
        models={"small": {"backend": small, "profile": "smollm2"}, "large": {"backend": large, "profile": "smollm2"}}
    )
    return reasoner, small, large


async def test_an_answer_the_small_model_agrees_on_stands_and_the_large_model_is_never_asked() -> None:
    reasoner, small, large = cascade_models(AGREEING)
    solution = await reasoner.asolve(QUESTION, budget=400, strategy="cascade")
    assert solution.answer == "4" and not large.requests and len(small.requests) == 4
    assert solution.metrics["answered_by"] == "small" and solution.metrics["escalations"] == 0
    assert solution.metrics["vote_share"] == 1.0
    assert list(solution.usage.by_model) == ["small"]


async def test_a_split_vote_escalates_to_the_large_model_whose_answer_stands() -> None:
    reasoner, small, large = cascade_models(SPLIT)
    solution = await reasoner.asolve(QUESTION, budget=400, strategy="cascade")
    assert solution.answer == "5" and len(small.requests) == 4 and len(large.requests) == 4
    assert solution.metrics["answered_by"] == "large" and solution.metrics["escalations"] == 1
    assert solution.metrics["first_vote_share"] == 0.5 and solution.metrics["samples_used"] == 8
    assert {data["model"] for _, data in solution.trace.nodes(data=True)} == {"small", "large"}


async def test_min_agreement_sets_the_vote_share_that_accepts() -> None:
    reasoner, _, large = cascade_models(SPLIT)
    solution = await reasoner.asolve(QUESTION, budget=400, strategy="cascade", min_agreement=0.5)
    assert solution.metrics["answered_by"] == "small" and not large.requests


async def test_the_hint_tells_the_large_model_the_small_answer_only_when_asked() -> None:
    for hint, told in ((False, False), (True, True)):
        reasoner, _, large = cascade_models(SPLIT)
        await reasoner.asolve(QUESTION, budget=400, strategy="cascade", hint=hint)
        assert all(("A smaller model answered 4" in request.prompt_text) == told for request in large.requests)


@settings(max_examples=20, deadline=None)
@given(tokens=st.integers(min_value=16, max_value=300))
def test_the_stages_together_stay_within_the_budget(tokens: int) -> None:
    reasoner, small, large = cascade_models(SPLIT, ["a long answer that runs on and on. Final answer: 5"])
    solution: Solution = asyncio.run(reasoner.asolve(QUESTION, budget=tokens, strategy="cascade"))
    spent = sum(request.generated_tokens for request in (*small.requests, *large.requests))
    assert spent == solution.usage.generated_tokens <= tokens
    # The small model's stage gets at most half: a split vote always leaves the large model its share.
    assert solution.usage.by_model["small"].generated_tokens <= tokens // 2


@settings(max_examples=20, deadline=None)
@given(cap=st.floats(min_value=2e8, max_value=2e9))
def test_under_a_cost_cap_a_split_vote_still_leaves_the_large_model_its_share(cap: float) -> None:
    # Ample tokens, so only the cost binds: the small stage may spend at most half the cost, never all of it.
    wordy = [answer.replace("Final", "a long answer that runs on and on. " * 8 + "Final") for answer in SPLIT]
    small, large = ScriptedBackend(wordy), ScriptedBackend(["Final answer: 5"])
    reasoner = Reasoner(
        models={
            "small": ModelSpec(backend=small, profile="smollm2", cost_model=priced(2)),
            "large": ModelSpec(backend=large, profile="smollm2", cost_model=priced(2)),
        }
    )
    solution = asyncio.run(reasoner.asolve(QUESTION, budget=Budget(tokens=100_000, cost=cap), strategy="cascade"))
    usage = solution.usage
    assert usage.cost is not None and usage.cost <= cap
    assert small.requests and (usage.by_model["small"].cost or 0) <= cap // 2
    if solution.metrics["escalations"] == 1:
        assert large.requests and solution.metrics["answered_by"] == "large"
    else:  # half the cap could not pay the large model one sample after its prompt
        assert not large.requests


async def test_a_cascade_needs_two_models_and_known_names() -> None:
    single = Reasoner(backend=ScriptedBackend(AGREEING), profile="smollm2")
    with pytest.raises(StrategyError, match="cascade needs at least two models"):
        await single.asolve(QUESTION, budget=200, strategy="cascade")
    reasoner, _, _ = cascade_models(AGREEING)
    with pytest.raises(ModelError, match="unknown model 'huge'"):
        await reasoner.asolve(QUESTION, budget=200, strategy="cascade", models=["small", "huge"])
    with pytest.raises(StrategyError, match="hint_text"):
        await reasoner.asolve(QUESTION, budget=200, strategy="cascade", hint_text="{answer}?")
