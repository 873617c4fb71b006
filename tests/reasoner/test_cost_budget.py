"""`Usage.cost` and `Budget(cost=...)` on the scripted backend: the ledger prices and caps every request."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, CostExhausted, Reasoner, Solution
from reasoner.cost import CostModel
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend, ScriptedToken
from tests.reasoner.test_cost import LLAMA31_8B, QWEN25_05B

COST_MODEL = CostModel.from_config(QWEN25_05B, "H200")
LARGE_COST_MODEL = CostModel.from_config(LLAMA31_8B, "H200")
LONG_ANSWER = " ".join(["step"] * 200) + "\n\nFinal answer: 5"
STRATEGIES: dict[str, dict[str, Any]] = {
    "direct": {},
    "elastic": {},
    "self_consistency": {"n": 4},
    "parallel": {},
}


def priced_reasoner(backend: ScriptedBackend) -> Reasoner:
    return Reasoner(backend=backend, profile="smollm2", cost_model=COST_MODEL)


def request_costs(backend: ScriptedBackend) -> int:
    """The cost model applied to what the backend itself says each request took."""
    return sum(
        COST_MODEL.eflops(len(request.prompt_token_ids), request.cached_prompt_tokens, request.generated_tokens)
        for request in backend.requests
    )


async def solve_on(backend: ScriptedBackend, budget: Budget, strategy: str) -> Solution:
    async with priced_reasoner(backend) as reasoner:
        return await reasoner.asolve("What is 2 + 3?", budget, strategy, **STRATEGIES[strategy])


def test_usage_cost_is_the_cost_model_over_every_request_prefix_hits_included() -> None:
    backend = ScriptedBackend(LONG_ANSWER, delay_s=0.0005)
    solution = asyncio.run(solve_on(backend, Budget(tokens=400), "self_consistency"))
    assert len(backend.requests) == 4
    assert any(request.cached_prompt_tokens for request in backend.requests)
    assert solution.usage.cost == request_costs(backend)
    assert solution.usage.cost < sum(
        COST_MODEL.eflops(len(request.prompt_token_ids), 0, request.generated_tokens) for request in backend.requests
    )


def test_the_cost_cap_cuts_a_request_like_a_token_budget() -> None:
    backend, probe = ScriptedBackend(LONG_ANSWER), ScriptedBackend(LONG_ANSWER)
    asyncio.run(solve_on(probe, Budget(tokens=4), "direct"))
    length = len(probe.requests[0].prompt_token_ids)
    cap = COST_MODEL.eflops(length, 0, 10)
    solution = asyncio.run(solve_on(backend, Budget(tokens=1000, cost=cap), "direct"))
    assert backend.requests[0].sampling.max_tokens == 10
    assert solution.usage.generated_tokens == 10
    assert solution.usage.cost is not None and solution.usage.cost <= cap


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    tokens=st.integers(40, 600),
    cost=st.floats(2e11, 2e13),
)
def test_a_cost_budget_is_never_exceeded(strategy: str, tokens: int, cost: float) -> None:
    backend = ScriptedBackend(LONG_ANSWER, delay_s=0.0002)
    budget = Budget(tokens=tokens, cost=cost)
    try:
        solution = asyncio.run(solve_on(backend, budget, strategy))
    except CostExhausted:
        assert all(request.generated_tokens == 0 for request in backend.requests)
        return
    assert solution.usage.cost is not None
    assert solution.usage.cost <= cost
    assert solution.usage.cost == request_costs(backend)
    assert solution.usage.generated_tokens <= tokens


@settings(max_examples=15, deadline=None)
@given(costs=st.lists(st.floats(3e11, 5e12), min_size=2, max_size=6))
def test_concurrent_solves_each_keep_their_own_cost_cap(costs: list[float]) -> None:
    backend = ScriptedBackend(LONG_ANSWER, delay_s=0.0002)

    async def solve_all() -> list[Solution]:
        async with priced_reasoner(backend) as reasoner:
            budgets = [Budget(tokens=500, cost=cost) for cost in costs]
            return await reasoner.asolve_many(["What is 2 + 3?"] * len(costs), budgets, "self_consistency", n=3)

    solutions = asyncio.run(solve_all())
    for solution, cost in zip(solutions, costs, strict=True):
        assert solution.usage.cost is not None and 0 < solution.usage.cost <= cost
    assert sum(solution.usage.cost or 0 for solution in solutions) == request_costs(backend)


def test_a_shared_batch_cost_budget_is_split_between_the_prompts() -> None:
    backend = ScriptedBackend(LONG_ANSWER)

    async def solve_all() -> list[Solution]:
        async with priced_reasoner(backend) as reasoner:
            return await reasoner.asolve_many(["a?", "b?", "c?"], Budget(tokens=900, cost=3e12), "direct")

    solutions = asyncio.run(solve_all())
    assert [solution.budget.cost for solution in solutions] == pytest.approx([1e12] * 3)
    assert sum(solution.usage.cost or 0 for solution in solutions) <= 3e12


def test_a_cost_cap_below_one_token_is_a_budget_error() -> None:
    with pytest.raises(CostExhausted, match="cannot pay one token"):
        asyncio.run(solve_on(ScriptedBackend(LONG_ANSWER), Budget(tokens=100, cost=1.0), "direct"))


def test_without_a_cost_model_cost_is_none_and_a_cost_budget_is_refused() -> None:
    with Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2") as reasoner:
        assert reasoner.solve("What is 2 + 3?", 16).usage.cost is None
        with pytest.raises(BudgetError, match="needs a cost model"):
            reasoner.solve("What is 2 + 3?", Budget(tokens=16, cost=1e12))


def entropic(answer: str, probability: float) -> list[ScriptedToken]:
    """Sixty words, each written at `probability` (the rest on one alternative), then the answer."""
    word = ScriptedToken(" step", {" step": math.log(probability), " alt": math.log(1 - probability)})
    return [*[word] * 60, ScriptedToken("\n\nFinal answer: "), ScriptedToken(answer)]


# Across two priced models: the small one unsure (entropy 0.69) and split in its votes, the large
# one sure, so entropy_switch hands over and back and cascade escalates on some samples.
TWO_MODEL_STRATEGIES: dict[str, dict[str, Any]] = {
    "entropy_switch": {"threshold": 0.4, "window": 3, "min_segment": 4},
    "cascade": {"n": 2},
    "self_consistency": {"n": 3},
    "direct": {},
}
two_model_solves = st.lists(
    st.tuples(
        st.sampled_from(sorted(TWO_MODEL_STRATEGIES)),
        st.sampled_from(["small", "large"]),
        st.integers(40, 400),
        st.floats(10.5, 13.5).map(lambda exponent: 10.0**exponent),  # below a token of either model to ample
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None)
@given(solves=two_model_solves)
def test_concurrent_solves_over_two_priced_models_never_exceed_their_caps(
    solves: list[tuple[str, str, int, float]],
) -> None:
    answers = itertools.cycle(["4", "7", "4", "9"])
    small = ScriptedBackend(lambda prompt: entropic(next(answers), 0.5), delay_s=0.0002)
    large = ScriptedBackend(entropic("5", 0.99), delay_s=0.0002)
    large.tokenizer_ = small.tokenizer_  # one tokenizer, as entropy_switch requires
    costs = {"small": COST_MODEL, "large": LARGE_COST_MODEL}
    backends = {"small": small, "large": large}

    async def solve_all() -> list[Solution | BaseException]:
        models = {name: ModelSpec(backend=backends[name], profile="smollm2", cost_model=costs[name]) for name in costs}
        async with Reasoner(models=models) as reasoner:
            return await asyncio.gather(
                *(
                    reasoner.asolve(
                        "What is 2 + 3?",
                        Budget(tokens=tokens, cost=cost),
                        strategy,
                        model=model,
                        **TWO_MODEL_STRATEGIES[strategy],
                    )
                    for strategy, model, tokens, cost in solves
                ),
                return_exceptions=True,
            )

    results = asyncio.run(solve_all())
    for (_, _, tokens, cost), result in zip(solves, results, strict=True):
        if isinstance(result, BaseException):
            assert isinstance(result, CostExhausted), result
            continue
        usage = result.usage
        assert usage.cost is not None and usage.cost <= cost and usage.generated_tokens <= tokens
        ran = {data["request_id"] for _, data in result.trace.nodes(data=True) if "request_id" in data}
        for name, counts in usage.by_model.items():
            requests = [request for request in backends[name].requests if request.request_id in ran]
            assert counts.cost == sum(
                costs[name].eflops(
                    len(request.prompt_token_ids), request.cached_prompt_tokens, request.generated_tokens
                )
                for request in requests
            )
        assert sum(counts.cost or 0 for counts in usage.by_model.values()) == usage.cost
