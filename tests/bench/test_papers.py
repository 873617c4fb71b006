"""The routing row of bench/papers.py (bench/paper_model_rows.py) on scripted models: its not-run line,
its arithmetic, and a whole run of it."""

from __future__ import annotations

import pytest

from bench.paper_model_rows import ROUTELLM_FIGURE, route_vs_large, routing_comparison
from bench.paper_tally import Tally, tally
from evals.suites import Problem
from reasoner import Reasoner
from reasoner.cost import CostModel
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend
from tests.reasoner.test_cost import LLAMA31_8B, QWEN25_05B

STEPS = " ".join(["step"] * 10)


def problems(prefix: str, count: int = 6) -> list[Problem]:
    return [Problem(f"{prefix}{index}", "arith", f"What is 2+{index}-{index}+3?", "5") for index in range(count)]


def two_models(small_answer: str, large_answer: str) -> tuple[Reasoner, ScriptedBackend, ScriptedBackend]:
    small = ScriptedBackend(f"{STEPS}\n\nFinal answer: {small_answer}")
    large = ScriptedBackend(f"{STEPS}\n\nFinal answer: {large_answer}")
    models = {
        "small": ModelSpec(backend=small, profile="smollm2", cost_model=CostModel.from_config(QWEN25_05B, "H200")),
        "large": ModelSpec(backend=large, profile="smollm2", cost_model=CostModel.from_config(LLAMA31_8B, "H200")),
    }
    return Reasoner(models=models), small, large


async def test_the_routing_row_is_not_run_on_one_model_and_says_how_to_run_it() -> None:
    backend = ScriptedBackend("Final answer: 5")
    row = await route_vs_large(Reasoner(backend=backend, profile="smollm2"), problems("c"), problems("p"), [64])
    assert row.measured == "not run: needs --model small=M --model large=M"
    assert (row.paper, row.paper_figure) == ("RouteLLM", ROUTELLM_FIGURE) and not backend.requests


def test_the_routing_row_reports_accuracy_kept_cost_cut_and_prompts_on_the_large_model() -> None:
    routed = Tally(correct=6, problems=10, tokens=900, cost=3e12)
    alone = Tally(correct=8, problems=10, tokens=700, cost=1e13)
    assert routing_comparison(routed, alone, 4, "large") == (
        "accuracy 60% vs 80% (75% of it kept), cost 3e+12 vs 1e+13 eFLOPs (70% less); 4/10 prompts routed to large"
    )
    dearer = Tally(correct=6, problems=10, tokens=900, cost=3.5e13)
    assert "cost 3.5e+13 vs 1e+13 eFLOPs (3.50x as much)" in routing_comparison(dearer, alone, 4, "large")


@pytest.mark.parametrize(("routed_cost", "alone_cost"), [(None, 1e13), (3e12, None)])
def test_an_unpriced_side_makes_the_cost_unpriced_not_zero(routed_cost: float | None, alone_cost: float | None) -> None:
    routed = Tally(correct=1, problems=2, tokens=10, cost=routed_cost)
    alone = Tally(correct=0, problems=2, tokens=10, cost=alone_cost)
    assert routing_comparison(routed, alone, 0, "large") == (
        "accuracy 50% vs 0% (retention n/a), cost unpriced; 0/2 prompts routed to large"
    )


@pytest.mark.parametrize(("small_answer", "on_large"), [("4", "6/6"), ("5", "0/6")])
async def test_a_learned_policy_routes_to_the_large_model_only_where_the_small_one_fails(
    small_answer: str, on_large: str
) -> None:
    reasoner, _, _ = two_models(small_answer, "5")
    row = await route_vs_large(reasoner, problems("c"), problems("p"), [32, 64])
    assert row.measured.startswith("accuracy 100% vs 100% (100% of it kept), cost ")
    assert row.measured.endswith(f"; {on_large} prompts routed to large") and "eFLOPs" in row.measured


@pytest.mark.parametrize("priced", [True, False])
async def test_a_tally_sums_the_solves_cost_and_is_unpriced_when_any_solve_is(priced: bool) -> None:
    reasoner, _, _ = two_models("5", "5")
    if not priced:
        reasoner.models["large"].cost_model = None
    asked = problems("p", 2)
    solutions = [
        await reasoner.asolve(asked[0].prompt, 64, model="small"),
        await reasoner.asolve(asked[1].prompt, 64, model="large"),
    ]
    costs = [solution.usage.cost for solution in solutions]
    assert tally(asked, solutions).cost == (sum(cost or 0 for cost in costs) if priced else None)
    assert costs[0] and (costs[1] is None) is not priced
