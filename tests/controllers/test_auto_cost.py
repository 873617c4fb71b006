"""`auto` allocating in cost: learned in eFLOPs where records carry cost, and fitting `Budget(cost=...)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records_support import record

from controllers.policy import Choice, Policy
from controllers.policy_learning import learn_policy
from reasoner import Budget, BudgetError, Reasoner
from reasoner.cost import CostModel
from reasoner.testing import ScriptedBackend
from tests.reasoner.test_cost import QWEN25_05B

COST_MODEL = CostModel.from_config(QWEN25_05B, "H200")
ANSWER = " ".join(["step"] * 300) + "\n\nFinal answer: 5"


def priced_record(
    problem: str, strategy: str, budget: int, correct: bool, tokens: int, cost: float | None
) -> dict[str, Any]:
    usage: dict[str, Any] = {"generated_tokens": tokens} | ({} if cost is None else {"cost": cost})
    return record(problem, strategy, budget, correct, tokens, usage=usage)


def records(priced: bool) -> list[dict[str, Any]]:
    """Equally accurate: `direct` writes more tokens, `self_consistency` more prompts (more eFLOPs)."""
    return [
        *(priced_record(f"p{i}", "direct", 512, i < 7, 300, 1e11 if priced else None) for i in range(10)),
        *(priced_record(f"p{i}", "self_consistency", 256, i < 7, 200, 5e11 if priced else None) for i in range(10)),
    ]


@pytest.mark.parametrize(("priced", "strategy"), [(True, "direct"), (False, "self_consistency")])
def test_the_cheapest_within_noise_is_cheapest_in_cost_when_records_carry_cost(priced: bool, strategy: str) -> None:
    policy = learn_policy(records(priced), difficulties={f"arith|p{i}": 0.5 for i in range(10)})
    choice = policy.choices["normal"]
    assert choice.strategy == strategy
    assert choice.mean_cost == (1e11 if priced else None)


def priced_policy(tmp_path: Path) -> str:
    """Every bin: elastic at 1024 tokens measured at 5e12 eFLOPs, or direct at 256 at 3e11."""
    cheap = Choice("direct", 256, accuracy=0.5, problems=10, mean_cost=3e11)
    dear = Choice("elastic", 1024, accuracy=0.8, problems=10, mean_cost=5e12)
    policy = Policy((1 / 3, 2 / 3), dict.fromkeys(("easy", "normal", "hard"), dear), {}, source="hand")
    policy.curves = {name: [cheap, dear] for name in policy.choices}
    path = tmp_path / "policy.json"
    policy.save(path)
    return str(path)


def priced_reasoner(backend: ScriptedBackend) -> Reasoner:
    return Reasoner(backend=backend, profile="smollm2", cost_model=COST_MODEL)


@pytest.mark.parametrize(("cost", "strategy"), [(1e13, "elastic"), (1e12, "direct")])
def test_a_choice_whose_measured_cost_does_not_fit_the_cost_left_gives_way(
    tmp_path: Path, cost: float, strategy: str
) -> None:
    solution = priced_reasoner(ScriptedBackend(ANSWER)).solve(
        "What is 2+3?", Budget(tokens=2000, cost=cost), "auto", estimator="none", policy_file=priced_policy(tmp_path)
    )
    assert solution.metrics["chosen_strategy"] == strategy
    assert solution.usage.cost is not None and solution.usage.cost <= cost


def test_a_cost_budget_below_the_least_answer_is_refused_before_any_token() -> None:
    # 3e10 eFLOPs pay the 22-token prompt and one token (2.6e10), not the least answer's 4 (3.7e10).
    backend = ScriptedBackend(ANSWER)
    with pytest.raises(BudgetError, match="least answer"):
        priced_reasoner(backend).solve("What is 2+3?", Budget(tokens=2000, cost=3e10), "auto")
    assert backend.requests == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cost=st.floats(min_value=1e10, max_value=2e13), estimator=st.sampled_from(["pilot", "probe", "none"]))
def test_auto_never_spends_past_a_cost_budget(tmp_path: Path, cost: float, estimator: str) -> None:
    backend = ScriptedBackend(ANSWER)
    budget = Budget(tokens=2000, cost=cost)
    try:
        solution = priced_reasoner(backend).solve(
            "What is 2+3?", budget, "auto", estimator=estimator, policy_file=priced_policy(tmp_path)
        )
    except BudgetError:
        assert backend.requests == []
        return
    assert solution.usage.cost is not None and solution.usage.cost <= cost


def test_a_batch_keeps_its_cost_cap_through_allocation(tmp_path: Path) -> None:
    prompts = [f"What is {index} + 1?" for index in range(4)]
    solutions = priced_reasoner(ScriptedBackend(ANSWER)).solve_many(
        prompts, Budget(tokens=4000, cost=4e12), "auto", policy_file=priced_policy(tmp_path), estimator="none"
    )
    assert all(solution.budget.cost == pytest.approx(1e12) for solution in solutions)
    assert sum(solution.usage.cost or 0 for solution in solutions) <= 4e12


def test_an_estimate_the_cost_left_cannot_pay_beside_the_cheapest_configuration_is_skipped(tmp_path: Path) -> None:
    # The pilot's worst case (3 requests of 72 tokens after the prompt, 1.2e12) and direct's measured
    # 3e11 do not fit 8e11 eFLOPs; direct alone does.
    solution = priced_reasoner(ScriptedBackend(ANSWER)).solve(
        "What is 2+3?", Budget(tokens=2000, cost=8e11), "auto", estimator="pilot", policy_file=priced_policy(tmp_path)
    )
    assert (solution.metrics["estimator"], solution.metrics["estimate_skipped"]) == ("none", True)
    assert solution.usage.generated_by_phase.get("estimation", 0) == 0
    assert solution.metrics["chosen_strategy"] == "direct"


@pytest.mark.parametrize("cap", [4e13, None])
def test_a_batch_estimate_is_charged_its_cost_to_each_solve(tmp_path: Path, cap: float | None) -> None:
    # Unpriced, the charge would leave each solve's cost unknown, and a cost cap would refuse it.
    prompts = [f"What is {index} + 1?" for index in range(3)]
    solutions = priced_reasoner(ScriptedBackend(ANSWER)).solve_many(
        prompts, Budget(tokens=4000, cost=cap), "auto", estimator="pilot", policy_file=priced_policy(tmp_path)
    )
    for solution in solutions:
        assert solution.metrics["estimator"] == "pilot"
        assert solution.usage.generated_by_phase["estimation"] > 0
        assert solution.usage.cost is not None
        assert cap is None or solution.usage.cost <= cap / 3
